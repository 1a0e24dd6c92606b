"""Who is at the other end of a loopback TCP connection, asked of the operating system before a
byte is read from it, so the agent serves only its own user on the loopback transport (the Unix
socket has SO_PEERCRED for this; TCP has no such option).

- Linux: the kernel's socket table through sock_diag (netlink, NETLINK_SOCK_DIAG), one exact
  lookup of the client's socket by its four-tuple, which carries the owner's uid; where netlink
  is refused, the same row of /proc/net/tcp. Layouts: linux/inet_diag.h and linux/sock_diag.h.
- Windows: the TCP table with owning processes (iphlpapi GetExtendedTcpTable,
  TCP_TABLE_OWNER_PID_CONNECTIONS), then that process's token user compared with ours
  (advapi32 OpenProcessToken, GetTokenInformation(TokenUser), EqualSid).

`owner(sock)` says OTHER only when the owner is known to be someone else: when the system
cannot say, the handshake (see _auth) still guards the agent.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Optional, Tuple

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NO_COOKIE = 0xFFFFFFFF
_ESTABLISHED = 1
_GONE = -1  # the client's end is closed: nobody to serve
# inet_diag_msg: family, state, timer, retrans (4 bytes), the socket id (48), expires, rqueue,
# wqueue (12), then the uid.
_UID_OFFSET = 4 + 48 + 12


def _address_words(ip: str) -> bytes:
    """An IPv4 address as inet_diag_sockid's 16-byte field (network order, zero padded)."""
    return socket.inet_aton(ip) + b"\0" * 12


def _diag_uid(peer: Tuple[str, int], mine: Tuple[str, int]) -> Optional[int]:
    """The uid of the socket whose source is `peer` and destination `mine`, by sock_diag."""
    sockid = struct.pack("!HH", peer[1], mine[1]) + _address_words(peer[0]) + \
        _address_words(mine[0]) + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
    request = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(0.5)
        nl.sendto(header + request, (0, 0))
        answer = nl.recv(8192)
    if len(answer) < 16:
        return None
    length, kind = struct.unpack_from("=IH", answer, 0)
    if kind == _NLMSG_ERROR or length < 16 + _UID_OFFSET + 4:
        return None
    if answer[16 + 1] != _ESTABLISHED:
        return _GONE  # closed already (TIME_WAIT and FIN_WAIT report no owner worth a verdict)
    return struct.unpack_from("=I", answer, 16 + _UID_OFFSET)[0]


def _hex_endpoint(ip: str, port: int) -> str:
    """An IPv4 endpoint as /proc/net/tcp writes it: the address's bytes in host order."""
    return "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(ip))[0], port)


def _proc_uid(peer: Tuple[str, int], mine: Tuple[str, int]) -> Optional[int]:
    """The same lookup through /proc/net/tcp (columns: sl, local, remote, st, ..., uid)."""
    local, remote = _hex_endpoint(*peer), _hex_endpoint(*mine)
    with open("/proc/net/tcp", encoding="ascii", errors="replace") as table:
        next(table, None)
        for row in table:
            fields = row.split()
            if len(fields) > 7 and fields[1] == local and fields[2] == remote:
                return int(fields[7]) if int(fields[3], 16) == _ESTABLISHED else _GONE
    return None


def _linux_owner(sock: socket.socket) -> Optional[str]:
    peer, mine = sock.getpeername()[:2], sock.getsockname()[:2]
    uid = None
    try:
        uid = _diag_uid(peer, mine)
    except (OSError, ValueError, struct.error, AttributeError, IndexError):
        uid = None
    if uid is None:
        try:
            uid = _proc_uid(peer, mine)
        except (OSError, ValueError):
            return None
    if uid is None:
        return None
    if uid == _GONE:
        return GONE
    return MINE if uid == os.getuid() else OTHER


def owner_pid_in(table: bytes, peer: Tuple[str, int], mine: Tuple[str, int]) -> Optional[int]:
    """The owning pid of the connection from `peer` to `mine` in a MIB_TCPTABLE_OWNER_PID
    (a row count, then rows of state, local address, local port, remote address, remote port
    and pid, six DWORDs each; addresses in network order, ports in network order in the low
    16 bits), as GetExtendedTcpTable writes it."""
    if len(table) < 4:
        return None
    count = struct.unpack_from("<I", table, 0)[0]
    count = min(count, (len(table) - 4) // 24)
    want = (struct.unpack("<I", socket.inet_aton(peer[0]))[0], socket.htons(peer[1]),
            struct.unpack("<I", socket.inet_aton(mine[0]))[0], socket.htons(mine[1]))
    for i in range(count):
        _state, la, lp, ra, rp, pid = struct.unpack_from("<6I", table, 4 + 24 * i)
        if (la, lp & 0xFFFF, ra, rp & 0xFFFF) == want:
            return pid
    return None


def _windows_owner(sock: socket.socket) -> Optional[str]:
    import ctypes
    from ctypes import wintypes

    peer, mine = sock.getpeername()[:2], sock.getsockname()[:2]
    iphlpapi = ctypes.WinDLL("iphlpapi")
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
    # Every signature spelled out: a HANDLE is pointer-sized (GetCurrentProcess's -1 overflows
    # ctypes' default int).
    iphlpapi.GetExtendedTcpTable.argtypes = [ctypes.c_void_p, ctypes.POINTER(wintypes.DWORD),
                                             wintypes.BOOL, wintypes.ULONG, ctypes.c_int,
                                             wintypes.ULONG]
    iphlpapi.GetExtendedTcpTable.restype = wintypes.DWORD
    kernel32.GetCurrentProcess.argtypes = []
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    kernel32.CloseHandle.restype = wintypes.BOOL
    advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD,
                                          ctypes.POINTER(wintypes.HANDLE)]
    advapi32.OpenProcessToken.restype = wintypes.BOOL
    advapi32.GetTokenInformation.argtypes = [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p,
                                             wintypes.DWORD, ctypes.POINTER(wintypes.DWORD)]
    advapi32.GetTokenInformation.restype = wintypes.BOOL
    advapi32.GetLengthSid.argtypes = [ctypes.c_void_p]
    advapi32.GetLengthSid.restype = wintypes.DWORD

    TCP_TABLE_OWNER_PID_CONNECTIONS = 4
    size = wintypes.DWORD(0)
    iphlpapi.GetExtendedTcpTable(None, ctypes.byref(size), False, socket.AF_INET,
                                 TCP_TABLE_OWNER_PID_CONNECTIONS, 0)
    for _ in range(3):  # the table may grow between the two calls
        buffer = ctypes.create_string_buffer(size.value + 4096)
        size = wintypes.DWORD(len(buffer))
        status = iphlpapi.GetExtendedTcpTable(buffer, ctypes.byref(size), False, socket.AF_INET,
                                              TCP_TABLE_OWNER_PID_CONNECTIONS, 0)
        if status == 0:
            break
    else:
        return None
    owner = owner_pid_in(buffer.raw[:size.value], peer, mine)
    if not owner:
        return None  # not listed, or pid 0 (Wine lists every connection so)
    if owner == os.getpid():
        return MINE

    TOKEN_QUERY, TOKEN_USER_CLASS = 0x0008, 1
    PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

    def token_user(process) -> Optional[bytes]:
        token = wintypes.HANDLE()
        if not advapi32.OpenProcessToken(process, TOKEN_QUERY, ctypes.byref(token)):
            return None
        try:
            needed = wintypes.DWORD(0)
            advapi32.GetTokenInformation(token, TOKEN_USER_CLASS, None, 0, ctypes.byref(needed))
            info = ctypes.create_string_buffer(max(needed.value, 1))
            if not advapi32.GetTokenInformation(token, TOKEN_USER_CLASS, info, needed,
                                                ctypes.byref(needed)):
                return None
            sid = ctypes.cast(info, ctypes.POINTER(ctypes.c_void_p))[0]
            length = advapi32.GetLengthSid(ctypes.c_void_p(sid))
            return ctypes.string_at(sid, length)
        finally:
            kernel32.CloseHandle(token)

    mine_sid = token_user(kernel32.GetCurrentProcess())
    other = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, owner)
    if not other:
        return None  # gone, or not ours to open: the handshake decides
    try:
        theirs = token_user(other)
    finally:
        kernel32.CloseHandle(other)
    if mine_sid is None or theirs is None:
        return None
    return OTHER if theirs != mine_sid else MINE


MINE, OTHER, GONE = "mine", "other", "gone"


def _closed_already(sock: socket.socket) -> bool:
    """The client hung up before it was accepted (a flood's connect-and-drop)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def owner(sock: socket.socket) -> Optional[str]:
    """Who is at the other end of `sock`, a loopback TCP connection just accepted (and still
    non-blocking): MINE (this user), OTHER (another user: close it unread), GONE (it hung up
    already), or None when the OS cannot tell (the handshake decides)."""
    try:
        if _closed_already(sock):
            return GONE
        if sock.family != socket.AF_INET:
            return None
        if os.name == "nt":
            return _windows_owner(sock)
        if hasattr(os, "getuid") and os.path.exists("/proc/net/tcp"):
            return _linux_owner(sock)
    except Exception:  # a lookup that fails is no verdict: the handshake still guards
        return None
    return None
