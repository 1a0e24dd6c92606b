"""The loopback transport (Windows, or VRAMDECK_AGENT_TRANSPORT=tcp): the endpoint file, the
handshake, and what any local user can do to a port on 127.0.0.1 — ask without proving, forge a
proof, talk garbage, stay silent, flood. Plain CPython, no torch; runs wherever CPython does."""

import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "comfyui-vramdeck"))

from vramdeck_agent import Agent, _auth, _server  # noqa: E402
from vramdeck_agent.testing import FakeAllocator  # noqa: E402


@pytest.fixture
def agent(tmp_path, monkeypatch):
    monkeypatch.setenv("VRAMDECK_AGENT_TRANSPORT", "tcp")
    a = Agent([], "x", FakeAllocator(), str(tmp_path / "agents"))
    a._bind()
    threading.Thread(target=a._serve, daemon=True).start()
    yield a
    a.stop()


def endpoint(agent):
    with open(agent.path) as f:
        return json.load(f)


def connect(agent, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", agent.port), timeout=timeout)
    return s, s.makefile("rb")


def send(sock, reader, message):
    sock.sendall(json.dumps(message).encode() + b"\n")
    line = reader.readline()
    return json.loads(line) if line else None


def authenticate(agent, secret_hex=None):
    """The client's side, as vramdeck does it; returns the connection ready for requests."""
    secret = bytes.fromhex(secret_hex or endpoint(agent)["secret"])
    sock, reader = connect(agent)
    mine = secrets.token_bytes(32)
    reply = send(sock, reader, {"v": 1, "id": 0, "op": "auth", "nonce": mine.hex()})
    theirs = bytes.fromhex(reply["auth"]["nonce"])
    expected = hmac.new(secret, _auth.AGENT_LABEL + mine + theirs, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(reply["auth"]["proof"], expected), "the agent proves itself"
    proof = hmac.new(secret, _auth.CLIENT_LABEL + theirs + mine, hashlib.sha256).hexdigest()
    return sock, reader, send(sock, reader, {"v": 1, "id": 0, "op": "auth", "proof": proof})


def test_the_endpoint_file_names_a_loopback_port_and_is_private(agent):
    assert agent.path.endswith(f"{os.getpid()}.json")
    data = endpoint(agent)
    assert data["host"] == "127.0.0.1" and data["port"] == agent.port
    assert data["pid"] == os.getpid() and len(bytes.fromhex(data["secret"])) == 32
    assert stat.S_IMODE(os.stat(agent.path).st_mode) == 0o600
    assert not [n for n in os.listdir(os.path.dirname(agent.path)) if n.endswith(".tmp")]
    assert agent._sock.getsockname()[0] == "127.0.0.1"


def test_the_owner_proves_itself_and_is_served(agent):
    sock, reader, accepted = authenticate(agent)
    with sock:
        assert accepted == {"v": 1, "id": 0, "ok": True, "auth": {"accepted": True}}
        hello = send(sock, reader, {"v": 1, "id": 1, "op": "hello"})
        assert hello["ok"] and hello["agent"]["pid"] == os.getpid()
        freed = send(sock, reader, {"v": 1, "id": 2, "op": "free", "level": "cache"})
        assert freed["ok"] and freed["freed"]["level"] == "cache"


@pytest.mark.parametrize("first", [
    {"v": 1, "id": 1, "op": "hello"},                            # asks without proving
    {"v": 1, "id": 1, "op": "free", "level": "unload"},          # a stranger's unload
    {"v": 1, "id": 0, "op": "auth", "nonce": "00"},              # a short nonce
    {"v": True, "id": 0, "op": "auth", "nonce": "0" * 64},       # not the version
    "garbage",
])
def test_anything_but_the_handshake_is_refused_and_the_connection_closed(agent, first):
    sock, reader = connect(agent)
    with sock:
        raw = first.encode() + b"\n" if isinstance(first, str) else json.dumps(first).encode() + b"\n"
        sock.sendall(raw)
        reply = json.loads(reader.readline())
        assert not reply["ok"] and "agent" not in reply and "freed" not in reply
        assert reader.readline() == b""  # closed


def test_a_forged_proof_is_refused(agent):
    sock, reader = connect(agent)
    with sock:
        send(sock, reader, {"v": 1, "id": 0, "op": "auth", "nonce": "1" * 64})
        reply = send(sock, reader, {"v": 1, "id": 0, "op": "auth", "proof": "2" * 64})
        assert not reply["ok"] and "proof does not match" in reply["error"]
        assert reader.readline() == b""


def test_a_proof_made_with_another_secret_is_refused(agent):
    with pytest.raises(AssertionError, match="proves itself"):
        authenticate(agent, secret_hex=secrets.token_hex(32))


def test_a_silent_stranger_is_closed_at_the_handshake_deadline(agent, monkeypatch):
    monkeypatch.setattr(_server, "AUTH_S", 0.3)
    sock, reader = connect(agent)
    with sock:
        started = time.monotonic()
        assert reader.readline() == b""
        assert time.monotonic() - started < 3.0


def test_a_stranger_flood_never_takes_the_owners_place(agent):
    flood = []
    try:
        for _ in range(200):
            try:
                flood.append(socket.create_connection(("127.0.0.1", agent.port), timeout=0.2))
            except OSError:
                pass
        time.sleep(0.3)
        for _ in range(5):
            sock, reader, accepted = authenticate(agent)
            with sock:
                assert accepted["ok"]
                assert send(sock, reader, {"v": 1, "id": 1, "op": "hello"})["ok"]
        # An owner who has proved itself keeps its place while strangers keep coming.
        sock, reader, _ = authenticate(agent)
        with sock:
            for _ in range(40):
                flood.append(socket.create_connection(("127.0.0.1", agent.port), timeout=0.2))
            assert send(sock, reader, {"v": 1, "id": 2, "op": "hello"})["ok"]
    finally:
        for s in flood:
            s.close()
    assert len(agent._server._conns) <= _server.MAX_CONNECTIONS


def test_stop_removes_the_endpoint_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VRAMDECK_AGENT_TRANSPORT", "tcp")
    a = Agent([], "x", FakeAllocator(), str(tmp_path / "agents"))
    a._bind()
    assert os.path.exists(a.path)
    a.stop()
    assert not os.path.exists(a.path)


def test_the_windows_tcp_table_names_the_connections_owner():
    # MIB_TCPTABLE_OWNER_PID as GetExtendedTcpTable writes it: a count, then six DWORDs a row,
    # addresses and ports in network order (ports in the low 16 bits).
    import struct
    from vramdeck_agent import _peer

    def row(local, remote, pid, state=5):
        (la, lp), (ra, rp) = local, remote
        return struct.pack("<6I", state, struct.unpack("<I", socket.inet_aton(la))[0],
                           socket.htons(lp), struct.unpack("<I", socket.inet_aton(ra))[0],
                           socket.htons(rp), pid)

    client, agent_end = ("127.0.0.1", 55300), ("127.0.0.1", 45135)
    rows = [row(("0.0.0.0", 2024), ("0.0.0.0", 0), 4, state=2),
            row(agent_end, client, 1200),  # the agent's own end of it
            row(client, agent_end, 7788)]  # the client's end: its owner
    table = struct.pack("<I", len(rows)) + b"".join(rows)
    assert _peer.owner_pid_in(table, client, agent_end) == 7788
    assert _peer.owner_pid_in(table, ("127.0.0.1", 1), agent_end) is None
    # A count larger than the rows written is not read past the buffer.
    assert _peer.owner_pid_in(struct.pack("<I", 1000) + rows[2], client, agent_end) == 7788
    assert _peer.owner_pid_in(b"\x01", client, agent_end) is None


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0 or
                    not os.path.exists("/usr/bin/python3"),
                    reason="needs root to connect as a second user")
def test_another_users_connection_is_closed_before_a_byte_is_read(agent):
    # The third attack review: another local user's connections took the agent's places.
    import subprocess

    port = endpoint(agent)["port"]
    opening = json.dumps({"v": 1, "id": 0, "op": "auth", "nonce": "ab" * 32})
    code = ("import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
            "s.settimeout(3); s.sendall(sys.argv[2].encode()+b'\\n');"
            "print(repr(s.recv(4096)))")
    out = subprocess.run(["/usr/bin/python3", "-c", code, str(port), opening], user=65534,
                         group=65534, capture_output=True, text=True, timeout=20)
    # Closed unread: no nonce came back (b'' at EOF, or a reset).
    assert out.stdout.strip() in ("b''", "") or "ConnectionReset" in out.stderr, out
    assert "nonce" not in out.stdout
    assert agent._server.other_users_refused >= 1
    # Our own user still gets through the handshake.
    sock, _reader, accepted = authenticate(agent)
    with sock:
        assert accepted["ok"]
