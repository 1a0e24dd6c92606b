"""A stand-in for PyTorch's CUDA caching allocator, for tests on machines without a GPU.

It behaves like the real one where vramdeck can see it: freeing a tensor lowers `allocated`
but not `reserved`; `empty_cache()` returns the reserved-but-unallocated memory.
"""

from __future__ import annotations

import threading


class FakeAllocator:
    available = True
    device = "cuda:0 (fake)"
    torch_version = "fake"

    def __init__(self) -> None:
        self.allocated = 0
        self.reserved = 0
        self.empty_cache_calls = 0
        self._lock = threading.Lock()

    def allocate(self, nbytes: int) -> None:
        with self._lock:
            self.allocated += nbytes
            self.reserved = max(self.reserved, self.allocated)

    def release_tensor(self, nbytes: int) -> None:
        """Like `del tensor`: the bytes stay reserved in the cache."""
        with self._lock:
            self.allocated = max(0, self.allocated - nbytes)

    def memory(self) -> dict:
        with self._lock:
            return {"allocated": self.allocated, "reserved": self.reserved}

    def empty_cache(self) -> None:
        with self._lock:
            self.empty_cache_calls += 1
            self.reserved = self.allocated

    def ipc_collect(self) -> None:
        pass

    #: The fake card's size; what it has free is what this process does not reserve, less
    #: `others` (what other processes hold).
    total = 24 * 1024**3
    others = 0

    def free_bytes(self) -> int:
        with self._lock:
            return max(0, self.total - self.reserved - self.others)

    def total_bytes(self) -> int:
        return self.total
