// The sign-up form's time zone starts at UTC; pick the browser's own zone when the list has it.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var select = document.getElementById("id_time_zone");
    if (zone && select && select.value === "UTC") {
      for (var i = 0; i < select.options.length; i++) {
        if (select.options[i].value === zone) {
          select.value = zone;
          break;
        }
      }
    }
  } catch (error) {}
})();
