"""The HTTP API: routes, auth and the error shape (see app.py)."""
