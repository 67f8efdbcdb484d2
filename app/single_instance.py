"""One window per user session: a second ``tensorbridge FILE...`` hands its files to the running window.

The running window listens on a local socket (:class:`PySide6.QtNetwork.QLocalServer`) whose name holds
the user, the display and a hash of the user's config and runtime folders, so two desktop sessions (or a
test with a temporary XDG home) never talk to each other. A launch first tries :func:`hand_off`: when a
window answers, it has the files (as absolute paths) and the launch exits 0. Otherwise the launch
becomes the window and calls :func:`listen`. A socket left by a crashed window answers nobody; ``listen``
removes it and listens again.

The message is one line of JSON, ``{"files": [...], "trust": false}``; the window answers ``ok``.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import tempfile
from collections.abc import Callable

__all__ = ["server_name", "hand_off", "listen"]

CONNECT_MS = 1000
REPLY_MS = 5000


def server_name() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment: the uid still separates users
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    home = os.path.expanduser("~")
    key = "\0".join([os.environ.get("XDG_RUNTIME_DIR", ""),
                     os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), home,
                     os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY", "")])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    safe_user = "".join(c if c.isalnum() else "_" for c in user)[:32]
    return f"tensorbridge-{safe_user}-{digest}"


def hand_off(files: list[str], *, trust: bool = False, name: str | None = None) -> bool:
    """Give ``files`` to a running window; True when it took them (the caller then exits 0)."""
    name = name or server_name()
    if os.name == "posix" and not os.path.exists(os.path.join(tempfile.gettempdir(), name)):
        return False  # no socket file (Qt keeps it in the temp folder): no window, and no QtNetwork import
    from PySide6.QtNetwork import QLocalSocket

    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(CONNECT_MS):
        return False
    msg = json.dumps({"files": [os.path.abspath(os.path.expanduser(f)) for f in files], "trust": trust})
    sock.write((msg + "\n").encode("utf-8"))
    if not sock.waitForBytesWritten(CONNECT_MS):
        return False
    reply = b""
    while b"\n" not in reply and sock.waitForReadyRead(REPLY_MS):
        reply += bytes(sock.readAll().data())
    sock.disconnectFromServer()
    return reply.strip() == b"ok"


def listen(on_files: Callable[[list[str], bool], None], parent=None, name: str | None = None):
    """Start the window's server; ``on_files(files, trust)`` runs on the GUI thread for each launch that
    hands over. Returns the server, or None when another window took the name first."""
    from PySide6.QtNetwork import QLocalServer

    name = name or server_name()
    server = QLocalServer(parent)
    server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
    if not server.listen(name):
        # nobody answered hand_off, so whatever holds the name is a crashed window's socket
        QLocalServer.removeServer(name)
        if not server.listen(name):
            return None

    def connection() -> None:
        while server.hasPendingConnections():
            sock = server.nextPendingConnection()
            buf = bytearray()

            def ready(sock=sock, buf=buf) -> None:
                buf.extend(bytes(sock.readAll().data()))
                if b"\n" not in buf:
                    return
                try:
                    msg = json.loads(bytes(buf).split(b"\n", 1)[0])
                    files = [str(f) for f in msg.get("files", [])]
                    trust = bool(msg.get("trust", False))
                except (ValueError, AttributeError):
                    sock.disconnectFromServer()
                    return
                sock.write(b"ok\n")
                sock.flush()
                on_files(files, trust)

            sock.readyRead.connect(ready)
            sock.disconnected.connect(sock.deleteLater)
            if sock.bytesAvailable():
                ready()

    server.newConnection.connect(connection)
    return server
