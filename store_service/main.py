"""`uvicorn store_service.main:app`: the store API (built in `store_service.api.app`)."""

from store_service.api.app import app, create_app

__all__ = ["app", "create_app"]
