"""The HTTP API: routes, auth and the error shape (see app.py)."""

from __future__ import annotations

import os
import socket

from preserve.errors import BadInput


def listening_socket(host: str, port: int, command: str) -> socket.socket:
    """A socket bound to ``host:port``, or, when the address is taken or not ours, one
    line saying so (BadInput, naming the command) before anything starts."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BadInput(f"{command}: cannot listen on {host}:{port}: {reason.lower()}") from exc
