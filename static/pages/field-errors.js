// A field the server marked invalid stops looking invalid once the reader has corrected it:
// the red border and its error line go as soon as the browser finds the value acceptable
// (an email field: a well-formed address; other fields: any edit), and come back if not.
(function () {
  "use strict";
  document.querySelectorAll("[aria-invalid=true]").forEach(function (field) {
    var errors = document.getElementById(field.id + "_error");
    field.addEventListener("input", function () {
      var fixed = field.value.trim() !== "" && field.checkValidity();
      field.setAttribute("aria-invalid", fixed ? "false" : "true");
      if (errors) errors.hidden = fixed;
    });
  });
})();
