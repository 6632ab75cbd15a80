// The sign-up form's time zone starts at UTC: put the browser's own zone first and pick it. A
// zone the list does not name (an older alias such as Asia/Calcutta) is added: the server
// accepts aliases.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var select = document.getElementById("id_time_zone");
    if (!zone || !select || select.value !== "UTC" || zone === "UTC") return;
    var option = null;
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) {
        option = select.options[i];
        break;
      }
    }
    if (!option) {
      if (zone.indexOf("/") < 0 || zone.indexOf("Etc/") === 0) return;
      option = new Option(zone.replace(/_/g, " "), zone);
    }
    select.insertBefore(option, select.options[0]);
    select.value = zone;
  } catch (error) {}
})();
