"""Load profiles (Locust) and the benchmark (wrk) for the store API.

Nothing importable from this package pulls in Locust except `loadtests.locustfile`, which only
the `locust` process loads: Locust monkey-patches the interpreter with gevent.
"""
