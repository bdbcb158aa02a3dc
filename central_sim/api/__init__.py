"""HTTP routers of the simulator: auth, the /v1 contract, the /_sim control API, health."""
