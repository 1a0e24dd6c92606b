"""The loopback transport's handshake: each side proves it holds the agent's secret.

Any local user can connect to a loopback port, and after an agent exits anyone can listen on
its old port, so a TCP connection says nothing about who is at the other end. The secret lives
in the agent's endpoint file, which only this user can read. Neither side ever sends it: the
client sends a nonce, the agent answers with its own nonce and an HMAC over both, and only once
that checks out does the client send its HMAC. A squatter on the port learns nothing it could
use; a stranger who connects gets one refusal and the connection closes.

    client: {"v":1,"id":0,"op":"auth","nonce":N_c}
    agent:  {"v":1,"id":0,"ok":true,"auth":{"nonce":N_a,"proof":HMAC(s, AGENT_LABEL+N_c+N_a)}}
    client: {"v":1,"id":0,"op":"auth","proof":HMAC(s, CLIENT_LABEL+N_a+N_c)}
    agent:  {"v":1,"id":0,"ok":true,"auth":{"accepted":true}}

Nonces and proofs are 64 lower-case hex digits (32 bytes); the labels keep the two proofs from
ever being the same message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Optional, Tuple

from ._protocol import PROTOCOL_VERSION, encode, error

AGENT_LABEL = b"vramdeck agent proof\n"
CLIENT_LABEL = b"vramdeck client proof\n"
HEX_LEN = 64

MORE, DONE, REFUSED = "more", "done", "refused"


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def proof(secret: bytes, label: bytes, first: bytes, second: bytes) -> str:
    return hmac.new(secret, label + first + second, hashlib.sha256).hexdigest()


def _hex32(value: object) -> Optional[bytes]:
    if not isinstance(value, str) or len(value) != HEX_LEN:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


class Handshake:
    """One connection's side of the handshake, fed one request line at a time."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._client_nonce: Optional[bytes] = None
        self._agent_nonce: Optional[bytes] = None

    def step(self, line: bytes) -> Tuple[bytes, str]:
        """The reply to send and whether the connection is now MORE (go on), DONE or REFUSED."""
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, RecursionError, ValueError):
            request = None
        if not isinstance(request, dict) or request.get("op") != "auth" or \
                request.get("v") != PROTOCOL_VERSION or type(request.get("v")) is not int:
            return self._refuse("authenticate first: this agent answers only after the "
                                "loopback handshake (see PROTOCOL.md)")
        if self._agent_nonce is None:
            client_nonce = _hex32(request.get("nonce"))
            if client_nonce is None:
                return self._refuse("authentication failed: the nonce must be 64 hex digits")
            self._client_nonce = client_nonce
            self._agent_nonce = secrets.token_bytes(32)
            mine = proof(self._secret, AGENT_LABEL, client_nonce, self._agent_nonce)
            return encode({"v": PROTOCOL_VERSION, "id": 0, "ok": True,
                           "auth": {"nonce": self._agent_nonce.hex(), "proof": mine}}), MORE
        theirs = request.get("proof")
        expected = proof(self._secret, CLIENT_LABEL, self._agent_nonce, self._client_nonce)
        if not isinstance(theirs, str) or not hmac.compare_digest(theirs.encode("ascii", "replace"),
                                                                 expected.encode("ascii")):
            return self._refuse("authentication failed: the proof does not match this "
                                "agent's secret")
        return encode({"v": PROTOCOL_VERSION, "id": 0, "ok": True,
                       "auth": {"accepted": True}}), DONE

    @staticmethod
    def _refuse(message: str) -> Tuple[bytes, str]:
        return encode(error(0, message)), REFUSED
