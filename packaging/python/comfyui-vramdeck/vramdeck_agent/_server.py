"""The agent's socket server: one thread, one selector, a bounded number of connections.

The agent lives inside the user's WebUI, so it must never eat the host's threads or file
descriptors, whatever a client does: at most MAX_CONNECTIONS at once (the one idle longest
makes room for a newcomer), a line must arrive whole within LINE_S and a silent connection is
closed after IDLE_S, and an error from accept() (EMFILE when the host ran out of descriptors)
pauses accepting briefly instead of ending the server.

On the loopback transport anyone on the machine can connect. A connection from another user
(the OS says who owns the other end, see _peer) is closed before a byte is read; any other must
finish the handshake (see _auth) within AUTH_S before a request is read. When every place is
taken, the oldest connection that has not yet sent a valid opening line makes room first: one
that has (vramdeck, mid-handshake) is never evicted for a newcomer.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import struct
import threading
import time
from typing import Callable, Deque, Dict, Optional, Tuple

from ._auth import DONE, MORE, REFUSED, Handshake
from . import _peer

log = logging.getLogger("vramdeck_agent")

MAX_CONNECTIONS = 16
IDLE_S = 5.0
LINE_S = 5.0
AUTH_S = 2.0
MAX_OUTPUT_BYTES = 256 * 1024
ACCEPT_PAUSE_S = 0.5
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class _Connection:
    def __init__(self, sock: socket.socket, cid: int) -> None:
        self.sock = sock
        self.cid = cid
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.last_activity = time.monotonic()
        self.line_started: Optional[float] = None
        self.owed = 0  # replies still to come from the free queue
        self.closing = False
        self.connected = self.last_activity
        self.handshake: Optional[Handshake] = None  # set until a loopback peer has proved itself
        self.opened = False  # its first handshake line was valid: strangers cannot evict it
        self.step_added = 0  # the loop's step it came in: it is read at least once before eviction

    def evictable(self) -> bool:
        return self.owed == 0 and not self.inbuf and not self.outbuf


def same_user(conn: socket.socket) -> bool:
    """Peer-credential check: only our own user may talk to us."""
    import os

    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):
        return True  # no SO_PEERCRED (macOS): the private directory is the guard
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


class Server:
    """Serves `listener`. `handle(line, reply)` answers one request line: it calls
    `reply(message_bytes)` now or later (from any thread), exactly once."""

    def __init__(self, listener: socket.socket,
                 handle: Callable[[bytes, Callable[[bytes], None]], None],
                 refuse_other_user: bytes, too_long: bytes, max_line: int,
                 secret: Optional[bytes] = None) -> None:
        self._listener = listener
        self._secret = secret
        self._handle = handle
        self._refusal = refuse_other_user
        self._too_long = too_long
        self._max_line = max_line
        self._sel = selectors.DefaultSelector()
        self._conns: Dict[int, _Connection] = {}
        self._next_id = 0
        self._posted: Deque[Tuple[int, bytes]] = collections.deque()
        self._posted_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopped = threading.Event()
        self._accepting = False
        self._paused_until = 0.0
        self._last_resource_warning = 0.0
        self.accept_errors = 0
        self.other_users_refused = 0
        self._steps = 0

    # -- called from other threads -----------------------------------------------------------
    def stop(self) -> None:
        self._stopped.set()
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already a byte waiting, or closing down

    def _post(self, cid: int, message: bytes) -> None:
        with self._posted_lock:
            self._posted.append((cid, message))
        self._wake()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self._stopped.is_set():
                return  # stopped before its thread began (a host quitting at once)
            try:
                self._listener.setblocking(False)
                self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
                self._set_accepting(True)
            except (OSError, ValueError):  # a socket closed under it while it began
                if self._stopped.is_set():
                    return
                raise
            while not self._stopped.is_set():
                try:
                    self._step()
                except Exception:  # a bug here must not end the agent
                    log.exception("vramdeck agent: server loop error")
                    time.sleep(0.05)
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _step(self) -> None:
        now = time.monotonic()
        self._steps += 1
        if not self._accepting and now >= self._paused_until and self._room_possible():
            self._set_accepting(True)
        # Connections are read before newcomers are accepted, so an opening line that has
        # arrived protects its connection before anyone could be evicted for a newcomer.
        events = sorted(self._sel.select(self._next_timeout(now)),
                        key=lambda event: event[0].data == "listener")
        for key, mask in events:
            if key.data == "listener":
                self._accept()
            elif key.data == "wake":
                self._drain_wake()
            else:
                conn = self._conns.get(key.data)
                if conn is None:
                    continue
                if mask & selectors.EVENT_READ:
                    self._read(conn)
                if mask & selectors.EVENT_WRITE and conn.cid in self._conns:
                    self._flush(conn)
        self._expire(time.monotonic())

    def _next_timeout(self, now: float) -> float:
        deadlines = [self._paused_until] if not self._accepting else []
        for c in self._conns.values():
            if c.handshake is not None:
                deadlines.append(c.connected + AUTH_S)
            elif c.line_started is not None and c.owed == 0:
                deadlines.append(c.line_started + LINE_S)
            elif c.evictable():
                deadlines.append(c.last_activity + IDLE_S)
        if not deadlines:
            return 1.0
        return max(0.0, min(deadlines) - now)

    def _set_accepting(self, on: bool) -> None:
        if on == self._accepting:
            return
        if on:
            self._sel.register(self._listener, selectors.EVENT_READ, "listener")
        else:
            self._sel.unregister(self._listener)
        self._accepting = on

    def _accept(self) -> None:
        while True:
            if len(self._conns) >= MAX_CONNECTIONS and not self._evict_one():
                self._set_accepting(False)  # back on when a connection closes
                return
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if self._stopped.is_set():
                    return
                self.accept_errors += 1
                if e.errno in _RESOURCE_ERRORS:
                    now = time.monotonic()
                    if now - self._last_resource_warning > 60.0:
                        self._last_resource_warning = now
                        log.warning("vramdeck agent: cannot accept a connection (%s); "
                                    "pausing briefly", e.strerror)
                    self._paused_until = now + ACCEPT_PAUSE_S
                    self._set_accepting(False)
                    return
                log.warning("vramdeck agent: accept failed: %s", e)
                return
            self._add(sock)

    def _candidate(self) -> Optional[_Connection]:
        """Who makes room for a newcomer: the oldest stranger (no valid opening line yet) that
        has had a turn to be read; while strangers are only too new for that, nobody (they go
        first at the next turn); with no strangers, the connection idle longest among those
        that proved themselves."""
        strangers = [c for c in self._conns.values() if c.handshake is not None and not c.opened]
        ready = [c for c in strangers if c.step_added < self._steps]
        if ready:
            return min(ready, key=lambda c: c.connected)
        if strangers:
            return None
        idle = [c for c in self._conns.values() if c.evictable() and c.handshake is None]
        return min(idle, key=lambda c: c.last_activity) if idle else None

    def _room_possible(self) -> bool:
        return len(self._conns) < MAX_CONNECTIONS or self._candidate() is not None

    def _evict_one(self) -> bool:
        candidate = self._candidate()
        if candidate is None:
            return False
        self._close(candidate)
        return True

    def _add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if self._secret is not None:
            verdict = _peer.owner(sock)
            if verdict in (_peer.OTHER, _peer.GONE):
                # Another user's process, or one that hung up: closed before a byte is read
                # or a nonce is spent.
                self.other_users_refused += verdict == _peer.OTHER
                try:
                    sock.close()
                except OSError:
                    pass
                return
        self._next_id += 1
        conn = _Connection(sock, self._next_id)
        conn.step_added = self._steps
        self._conns[conn.cid] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn.cid)
        if self._secret is not None:
            conn.handshake = Handshake(self._secret)  # no peer credentials over TCP
        elif not same_user(sock):
            self._queue(conn, self._refusal)
            conn.closing = True
            self._flush(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not chunk:
            self._close(conn)
            return
        if conn.closing:
            return  # said what it had to say; ignore further input
        now = time.monotonic()
        conn.last_activity = now
        if not conn.inbuf:
            conn.line_started = now
        conn.inbuf += chunk
        self._process_lines(conn)

    def _process_lines(self, conn: _Connection) -> None:
        """Answers complete lines in order; while a free is owed, later lines wait for it."""
        while not conn.closing and conn.owed == 0:
            end = conn.inbuf.find(b"\n")
            if end < 0:
                break
            line = bytes(conn.inbuf[:end])
            del conn.inbuf[:end + 1]
            conn.line_started = time.monotonic() if conn.inbuf else None
            if len(line) > self._max_line:
                self._refuse(conn)
                return
            if conn.handshake is not None:
                self._shake(conn, line)
            elif line.strip():
                self._dispatch(conn, line)
        # Whatever is left must still fit in one line (a free in flight holds the rest back).
        if not conn.closing and len(conn.inbuf) > self._max_line + 1:
            self._refuse(conn)

    def _shake(self, conn: _Connection, line: bytes) -> None:
        assert conn.handshake is not None
        answer, outcome = conn.handshake.step(line)
        if outcome == MORE:
            conn.opened = True
        if outcome == DONE:
            conn.handshake = None
        elif outcome == REFUSED:
            conn.inbuf.clear()
            conn.line_started = None
            conn.closing = True
        self._queue(conn, answer)
        self._flush(conn)

    def _refuse(self, conn: _Connection) -> None:
        conn.inbuf.clear()
        conn.line_started = None
        conn.closing = True
        self._queue(conn, self._too_long)
        self._flush(conn)

    def _dispatch(self, conn: _Connection, line: bytes) -> None:
        conn.owed += 1
        cid = conn.cid
        lock = threading.Lock()
        state = {"now": True, "message": None}

        def reply(message: bytes) -> None:
            with lock:
                if state["now"]:
                    state["message"] = message
                    return
            self._post(cid, message)

        self._handle(line, reply)
        with lock:
            state["now"] = False
            message = state["message"]
        if message is not None:
            self._deliver(cid, message)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return
        with self._posted_lock:
            posted, self._posted = self._posted, collections.deque()
        for cid, message in posted:
            self._deliver(cid, message)

    def _deliver(self, cid: int, message: bytes) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return  # the client left before its answer was ready
        conn.owed = max(0, conn.owed - 1)
        conn.last_activity = time.monotonic()
        self._queue(conn, message)
        self._flush(conn)
        if conn.cid in self._conns and conn.owed == 0:
            self._process_lines(conn)

    def _queue(self, conn: _Connection, message: bytes) -> None:
        if len(conn.outbuf) + len(message) > MAX_OUTPUT_BYTES:
            self._close(conn)  # a client that asks and never reads
            return
        conn.outbuf += message

    def _flush(self, conn: _Connection) -> None:
        if conn.cid not in self._conns:
            return
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            del conn.outbuf[:sent]
        if conn.closing and not conn.outbuf:
            self._close(conn)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self._sel.modify(conn.sock, events, conn.cid)

    def _expire(self, now: float) -> None:
        for conn in list(self._conns.values()):
            if conn.handshake is not None and now - conn.connected > AUTH_S:
                self._close(conn)
            elif conn.owed == 0 and conn.line_started is not None and \
                    now - conn.line_started > LINE_S:
                self._close(conn)
            elif conn.evictable() and now - conn.last_activity > IDLE_S:
                self._close(conn)

    def _close(self, conn: _Connection) -> None:
        if self._conns.pop(conn.cid, None) is None:
            return
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        if not self._accepting and time.monotonic() >= self._paused_until:
            self._set_accepting(True)
