"""The store operator's console at `/console` (docs/console.md): server-rendered pages over the
same runtime, storage reads, sync summary, health checker and operator actions as the JSON API.

- `routes.py`: the pages, the live fragments htmx polls, and the Retry / Discard actions.
- `templates/`: this console's Jinja2 templates (the shared ones are in `http_edge.console`).
"""
