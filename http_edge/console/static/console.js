// The consoles' one script (no inline script: the CSP forbids it).
// - forms with data-confirm ask first (discard); htmx's hx-confirm covers htmx submits.
// - a refused htmx request (a problem document) is shown in the live region #flash (a
//   successful action fills it from the server, out of band).
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
    // htmx asks itself (hx-confirm) for the forms it submits; without htmx, ask here.
    if (form.dataset && form.dataset.confirm && !(window.htmx && form.hasAttribute("hx-confirm"))) {
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

  // A poll is skipped while the tab is hidden, and while the keyboard focus is inside the
  // polled region: swapping it would take the focus (and the button about to be pressed)
  // away from the operator.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var trigger = elt && elt.getAttribute && elt.getAttribute("hx-trigger");
    if (!trigger || trigger.indexOf("every") !== 0) return;
    var focused = document.activeElement;
    if (document.hidden || (focused && focused !== document.body && elt.contains(focused))) {
      event.preventDefault();
    }
  });
})();
