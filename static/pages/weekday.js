// "Weekly on" only matters for a weekly digest: show it only while Weekly is chosen. Without
// this script the page's CSS (:has) still hides it; the label keeps its "(weekly only)".
(function () {
  "use strict";
  document.querySelectorAll("form").forEach(function (form) {
    var weekday = form.querySelector("select[name=weekday]");
    if (!weekday || !form.querySelector("input[name=frequency]")) return;
    var field = weekday.closest(".field");
    var label = form.querySelector('label[for="' + weekday.id + '"]');
    if (label) label.textContent = "Weekly on"; // no need for "(weekly only)" any more
    function update() {
      var chosen = form.querySelector("input[name=frequency]:checked");
      field.hidden = !chosen || chosen.value !== "weekly";
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "frequency") update();
    });
    update();
  });
})();
