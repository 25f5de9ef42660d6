"""The hub's HTTP API (FastAPI): routers per resource, auth in `auth.py`."""
