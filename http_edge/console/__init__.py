"""The HTML consoles' shared edge (the store's `/console`, central_sim's `/_sim/console`).

- `session.py`: the signed session cookie (itsdangerous) with its CSRF token.
- `edge.py`: `ConsoleEdge`, one per app: the Jinja2 templates (autoescaped), the route class
  that gives every console response its security headers and turns every refusal into a
  problem document (HTML for a page, JSON for htmx), the static files, and the login form's
  plumbing.
- `static/`: the stylesheet, the one script (`console.js`) and htmx, vendored from the npm
  registry (`static/vendor/htmx/VERSION`): no build step, no CDN, works offline.

Nothing here is on the store's update path: console routes are ordinary routes after the API's,
and no middleware is added (docs/console.md).
"""
