"""Where the agent listens: a Unix socket `<pid>.sock`, or, where Python has no AF_UNIX
(Windows) or `VRAMDECK_AGENT_TRANSPORT=tcp` asks for it, a loopback TCP port named with its
secret in `<pid>.json`.

Both files live in the same private per-user directory (see _dirs). The endpoint file is written
whole under a temporary name that nobody else can have created (O_EXCL, 0600) and then renamed,
so vramdeck never reads half of one.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from typing import Tuple

ENDPOINT_FORMAT = "vramdeck-agent-endpoint"


def use_loopback() -> bool:
    if os.environ.get("VRAMDECK_AGENT_TRANSPORT", "").lower() == "tcp":
        return True
    return os.name == "nt" or not hasattr(socket, "AF_UNIX")


def listen_unix(path: str) -> socket.socket:
    try:
        os.unlink(path)  # left by an earlier process with our pid
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


def listen_loopback() -> Tuple[socket.socket, int]:
    """A listener on 127.0.0.1 at a port the OS picks. On Windows nobody may bind the same
    port beside it (SO_EXCLUSIVEADDRUSE), which Windows otherwise allows with SO_REUSEADDR."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
        if exclusive is not None:
            sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        sock.bind(("127.0.0.1", 0))
        # A long queue: under a connection flood from another user, each is refused in
        # microseconds, and vramdeck's own connection waits in the queue instead of being dropped.
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock, sock.getsockname()[1]


def write_endpoint(path: str, pid: int, port: int, secret: bytes) -> None:
    body = json.dumps({"format": ENDPOINT_FORMAT, "version": 1, "pid": pid,
                       "transport": "tcp", "host": "127.0.0.1", "port": port,
                       "secret": secret.hex()}).encode("ascii")
    temporary = f"{path}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | \
        getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
