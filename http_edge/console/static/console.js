// The consoles' one script (no inline script: the CSP forbids it).
// - forms with data-confirm ask first (discard); htmx's hx-confirm covers htmx submits.
// - a refused htmx request (a problem document) is shown in the live region #flash.
// - polling pauses while the tab is hidden.
(function () {
  "use strict";

  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;  // text, never HTML
    box.className = "flash " + (kind || "info");
    box.hidden = !text;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !form.hasAttribute("hx-confirm")) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }
  }, true);

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = "Request refused (HTTP " + xhr.status + ")";
    try {
      var problem = JSON.parse(xhr.responseText);
      message = problem.title + ": " + (problem.detail || "");
    } catch (ignored) { /* not a problem document */ }
    if (xhr.status === 401) message += " (sign in again)";
    flash(message, "error");
  });

  document.addEventListener("htmx:sendError", function () {
    flash("The console cannot reach the server; it keeps trying.", "error");
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.successful && elt && elt.dataset && elt.dataset.done) {
      flash(elt.dataset.done, "ok");
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("hx-trigger") &&
        elt.getAttribute("hx-trigger").indexOf("every") === 0) {
      event.preventDefault();  // a hidden tab does not poll
    }
  });
})();
