"""An unload that waits for the host's running job, on one waiting thread however often it is
asked for: a client asking again during a long job joins the wait in progress instead of
starting another thread (58 requests once made 58 threads)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from . import Deferred

log = logging.getLogger("vramdeck_agent")


class AfterBusy:
    """Runs `action` now when the host is not `busy`, else once it is not.

    `action()` returns True when it did its work (False: try again at the next poll, e.g. a
    lock it needs was held). `after()` runs once a deferred action has been done (the agent's
    own cache release ran long before: the hook hands the memory back itself)."""

    def __init__(self, busy: Callable[[], bool], action: Callable[[], bool], reason: str,
                 after: Optional[Callable[[], None]] = None, poll_s: float = 0.2,
                 name: str = "vramdeck-after-busy") -> None:
        self.busy = busy
        self.action = action
        self.after = after
        self.reason = reason
        self.poll_s = poll_s
        self.name = name
        self._lock = threading.Lock()
        self._waiting: Optional[threading.Event] = None
        self.threads_started = 0  # for tests: how many waits were started
        self.__qualname__ = name  # how the agent names a hook

    def __call__(self) -> Optional[Deferred]:
        """None when done now; else a Deferred, shared with any wait already in progress."""
        with self._lock:
            if self._waiting is not None and not self._waiting.is_set():
                return Deferred(self.reason, self._waiting.is_set)
            if not self.busy() and self.action():
                return None
            done = threading.Event()
            self._waiting = done
            self.threads_started += 1
            threading.Thread(target=self._wait, args=(done,), daemon=True,
                             name=self.name).start()
            return Deferred(self.reason, done.is_set)

    def _wait(self, done: threading.Event) -> None:
        try:
            while not (not self.busy() and self.action()):
                time.sleep(self.poll_s)
            if self.after is not None:
                self.after()
        except Exception:  # the host's state broke under us: stop promising, say it in the log
            log.exception("vramdeck agent: a deferred unload failed")
        finally:
            done.set()
