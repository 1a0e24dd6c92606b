"""The per-user socket directory, created and checked so that another local user cannot steer it.

The fallback lives in /tmp, where anyone can create names first. So every level below a trusted
base is created here with mkdir(0700) and then opened with O_NOFOLLOW: a planted symlink, a file,
a directory of another user or one others can enter is refused, never chmod-ed or entered.
Once a level is verified as ours and private, nobody else can rename or replace anything inside
it, so the socket can then be bound by path.

On Windows the directory is `%LOCALAPPDATA%\\vramdeck\\agents`: the user's profile, whose access
list admits only the user (and the machine's administrators), and every new level inherits it.
A level that is a link or junction (a reparse point) is refused there too.
"""

from __future__ import annotations

import os
import stat
from typing import List, Tuple


class UnsafeDirectory(PermissionError):
    """A level of the agent directory is not a private directory of this user."""


def levels() -> Tuple[str, List[str]]:
    """The trusted base and the levels below it that must be private (same rule as vramdeck).

    `$VRAMDECK_AGENT_DIR` (one level, the user chose it), else `$XDG_RUNTIME_DIR/vramdeck/agents`,
    else `/tmp/vramdeck-<uid>/agents`.
    """
    override = os.environ.get("VRAMDECK_AGENT_DIR")
    if override:
        full = os.path.abspath(override)
        return os.path.dirname(full), [os.path.basename(full)]
    if os.name == "nt":
        local = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"),
                                                               "AppData", "Local")
        return local, ["vramdeck", "agents"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return runtime, ["vramdeck", "agents"]
    return "/tmp", [f"vramdeck-{os.getuid()}", "agents"]


def agent_dir() -> str:
    """The directory where agents put their sockets."""
    base, below = levels()
    return os.path.join(base, *below)


def ensure_private(base: str, below: List[str]) -> str:
    """Creates each level below `base` (0700) or checks the existing one; returns the path.

    Raises UnsafeDirectory with a sentence for the user when a level is a symlink, not a
    directory, owned by someone else, or open to others.
    """
    if os.name == "nt":
        return _ensure_private_windows(base, below)
    uid = os.getuid()
    path = base
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in below:
            path = os.path.join(path, name)
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                dir_fd=fd)
            except OSError as e:
                raise UnsafeDirectory(
                    f"{path} is not a plain directory ({e.strerror}): it may have been planted "
                    f"by another user; remove it or set VRAMDECK_AGENT_DIR") from None
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            if st.st_uid != uid:
                raise UnsafeDirectory(
                    f"{path} belongs to uid {st.st_uid}, not to this user (uid {uid}): another "
                    f"user may have created it to intercept vramdeck; remove it or set "
                    f"VRAMDECK_AGENT_DIR")
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                raise UnsafeDirectory(
                    f"{path} has mode {mode:o}, which lets other users in; run "
                    f"`chmod 700 {path}` or remove it")
    finally:
        os.close(fd)
    return path


_REPARSE_POINT = 0x400  # FILE_ATTRIBUTE_REPARSE_POINT


def _ensure_private_windows(base: str, below: List[str]) -> str:
    """Windows: create the levels (they inherit the profile's access list); refuse a level
    that is not a plain directory, links and junctions included."""
    path = base
    for name in below:
        path = os.path.join(path, name)
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or \
                getattr(st, "st_file_attributes", 0) & _REPARSE_POINT:
            raise UnsafeDirectory(
                f"{path} is not a plain directory (a file, link or junction): it may have been "
                f"planted; remove it or set VRAMDECK_AGENT_DIR")
    return path
