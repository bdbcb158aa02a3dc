"""Fixtures shared by every test level: real services (RabbitMQ, Toxiproxy) and their helpers."""

pytest_plugins = ["tests.support.services"]
