// The digest preview: as the reader types topics, fetch the papers those topics would bring
// (an HTML fragment rendered by the server) once typing pauses. Without JavaScript the form's
// "Preview" button posts the form and the page comes back with the same fragment.
(function () {
  "use strict";
  var box = document.querySelector("[data-preview-url]");
  if (!box) return;
  var form = box.dataset.previewForm ? document.getElementById(box.dataset.previewForm) : null;
  var topics = form && form.querySelector("textarea[name=topics]");
  if (!topics) return;
  var DELAY_MS = 400;
  var timer = null;
  var inFlight = null;
  var shown = topics.value;

  function load(force) {
    var typed = topics.value;
    if (typed === shown && !force) return;
    shown = typed;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    var query = new URLSearchParams({ topics: typed });
    var limit = form.querySelector("[name=papers_per_digest]");
    if (limit) query.set("limit", limit.value);
    box.setAttribute("aria-busy", "true");
    fetch(box.dataset.previewUrl + "?" + query.toString(), {
      signal: inFlight.signal,
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    })
      .then(function (response) { return response.text(); }) // a 429 has its own message
      .then(function (html) {
        // Papers ticked before the topics changed stay ticked if they are still shown.
        var ticked = {};
        box.querySelectorAll("input[name=like]:checked").forEach(function (tick) {
          ticked[tick.value] = true;
        });
        box.innerHTML = html;
        box.querySelectorAll("input[name=like]").forEach(function (tick) {
          if (ticked[tick.value]) tick.checked = true;
        });
        box.removeAttribute("aria-busy");
      })
      .catch(function () { box.removeAttribute("aria-busy"); });
  }

  topics.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(load, DELAY_MS);
  });
  var count = form.querySelector("[name=papers_per_digest]");
  if (count) {
    count.addEventListener("change", function () { load(true); });
  }
  var button = form.querySelector("button[name=action][value=preview]");
  if (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      clearTimeout(timer);
      load(true);
      box.scrollIntoView({ behavior: "smooth", block: "start" });
    });
  }
})();
