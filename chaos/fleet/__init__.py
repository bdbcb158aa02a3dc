"""A fleet of stores: N store nodes (API + worker, own SQLite file, own identity at central,
own sync queue on one shared RabbitMQ), one central_sim, real traffic to every store, and the
fleet scenarios judged by the consistency checker per store and for central as a whole.

`python -m chaos fleet --stores 8 --report DIR` (see docs/scaling.md)."""
