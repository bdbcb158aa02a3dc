"""Real processes for the harness: free ports, child processes with their logs, readiness waits,
the command lines of every part of the system, and the environments they run in.

One place for launching and waiting, used by `bin/run_local.py`, `python -m loadtests`,
`python -m chaos` and the integration, contract and chaos tests. It never imports `tests/`.
"""
