"""`python -m store_service.refresh --all | SKU…`: see `store_service.sync.refresh`."""

import sys

from store_service.sync.refresh import main

if __name__ == "__main__":
    sys.exit(main())
