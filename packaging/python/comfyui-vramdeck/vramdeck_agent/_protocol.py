"""Protocol v1 on the agent's side: strict decoding of requests, strict JSON out.

Every malformed request gets an error reply: deep nesting (RecursionError), numbers with
thousands of digits (ValueError), `true` where a version number belongs, ids that JSON cannot
carry back (1e400, NaN) — none of them may reach the host's stderr as a traceback.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
LEVELS = ("cache", "unload")
_MAX_ID = 2 ** 64 - 1


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is a subclass of int and must not pass


def error(rid: Optional[int], message: str) -> dict:
    return {"v": PROTOCOL_VERSION, "id": rid, "ok": False, "error": message}


def encode(message: dict) -> bytes:
    """One line of strict JSON (no NaN or Infinity), newline included."""
    try:
        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        text = json.dumps(error(None, f"the agent could not encode its reply ({e})"),
                          separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def decode(line: bytes) -> Tuple[Optional[dict], Optional[dict]]:
    """Returns (request, None) for a valid request, or (None, error reply)."""
    if len(line) > MAX_MESSAGE_BYTES:
        return None, error(None, f"request line longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        request = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, error(None, "malformed request: not UTF-8")
    except RecursionError:
        return None, error(None, "malformed request: nested too deeply")
    except ValueError as e:  # JSONDecodeError, and ints past Python's digit limit
        return None, error(None, f"malformed request: {e}")
    if not isinstance(request, dict):
        return None, error(None, "malformed request: not a JSON object")
    rid = request.get("id")
    if rid is not None and not (_is_int(rid) and 0 <= rid <= _MAX_ID):
        return None, error(None, "malformed request: id must be an integer from 0 to 2^64-1")
    version = request.get("v")
    if not (_is_int(version) and version == PROTOCOL_VERSION):
        shown = version if _is_int(version) else type(version).__name__
        return None, error(rid, f"unsupported protocol version {shown}; "
                                f"this agent speaks {PROTOCOL_VERSION}")
    op = request.get("op")
    if op not in ("hello", "status", "free", "need_answer"):
        shown = op if isinstance(op, str) and len(op) <= 32 else type(op).__name__
        return None, error(rid, f"unknown op {shown!r}")
    if op == "free":
        level = request.get("level", "cache")
        if level not in LEVELS:
            shown = level if isinstance(level, str) and len(level) <= 32 else type(level).__name__
            return None, error(rid, f"unknown level {shown!r}; expected one of {list(LEVELS)}")
    if op == "need_answer":
        need, granted, message = request.get("need"), request.get("granted"), request.get("message")
        if not (_is_int(need) and 0 <= need <= _MAX_ID) or type(granted) is not bool \
                or not (isinstance(message, str) and len(message) <= 4000):
            return None, error(rid, "malformed need_answer: need (integer), granted (boolean) "
                                    "and message (text up to 4,000 characters) are required")
    return request, None
