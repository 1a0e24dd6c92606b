"""Frees run one at a time on their own thread, coalesced and spaced out.

gc.collect() holds the GIL, so a client sending frees in a loop would starve the host's own
Python threads. Requests that arrive while a free runs, or during the pause after it, share the
next run; the pause is ten times the last free's duration (1 s to 5 s), so frees never take
more than about a tenth of the host's time, however often they are asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, List, Tuple

log = logging.getLogger("vramdeck_agent")

MIN_GAP_S = 1.0
MAX_GAP_S = 5.0
GAP_FACTOR = 10.0

Deliver = Callable[[dict, int], None]


class FreeQueue:
    """Runs `do_free(level)` for queued requests; each request's `deliver(result, shared_by)`
    is called on this queue's thread with the result of the run that served it."""

    def __init__(self, do_free: Callable[[str], dict]) -> None:
        self._do_free = do_free
        self._cond = threading.Condition()
        self._pending: List[Tuple[str, Deliver]] = []
        self._not_before = 0.0
        self._stopped = False
        self.runs = 0
        threading.Thread(target=self._run, daemon=True, name="vramdeck-agent-free").start()

    def submit(self, level: str, deliver: Deliver) -> None:
        with self._cond:
            self._pending.append((level, deliver))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _next_batch(self) -> List[Tuple[str, Deliver]]:
        with self._cond:
            while True:
                if self._stopped:
                    return []
                if self._pending:
                    wait = self._not_before - time.monotonic()
                    if wait <= 0:
                        batch, self._pending = self._pending, []
                        return batch
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                return
            # An unload does everything a cache release does: one run serves both kinds.
            level = "unload" if any(level == "unload" for level, _ in batch) else "cache"
            started = time.monotonic()
            try:
                result = self._do_free(level)
            except Exception as e:  # the agent's own code failed: say so, keep serving
                log.exception("vramdeck agent: free failed")
                result = {"error": f"free failed inside the agent: {type(e).__name__}: {e}"}
            took = time.monotonic() - started
            self.runs += 1
            with self._cond:
                gap = min(MAX_GAP_S, max(MIN_GAP_S, GAP_FACTOR * took))
                self._not_before = time.monotonic() + gap
            for _, deliver in batch:
                try:
                    deliver(result, len(batch))
                except Exception:
                    log.exception("vramdeck agent: could not hand back a free result")
