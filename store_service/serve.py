"""`python -m store_service.serve [--host H] [--port 8001]`: see `store_service.api.serve`."""

from store_service.api.serve import main

if __name__ == "__main__":
    main()
