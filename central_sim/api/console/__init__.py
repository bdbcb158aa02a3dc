"""The simulator's control panel at `/_sim/console` (docs/console.md): stock, journal tail,
counters, the fault knobs as a form, key rotation, service revocation and the competing writer,
all through `central_sim.operations` (the same use cases as the `/_sim` JSON API).

- `routes.py`: the page, the live fragment htmx polls, the actions.
- `templates/`: this panel's Jinja2 templates (the shared ones are in `http_edge.console`).
"""
