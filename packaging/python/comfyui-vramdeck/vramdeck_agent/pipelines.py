"""An unload hook for WebUIs that keep diffusers-style pipelines in a dict (Wan2.x, TurboDiffusion,
most Gradio apps):

    import vramdeck_agent
    from vramdeck_agent.pipelines import PipelineUnload

    PIPES = {}                      # the WebUI's loaded pipelines, by name

    def get_pipe(name):             # the WebUI's loader: builds or brings back a pipeline
        if name not in PIPES:
            PIPES[name] = load_pipeline(name)
        return PIPES[name].to("cuda")

    vramdeck_agent.start(unload=PipelineUnload(PIPES, mode="cpu", busy=lambda: GENERATING),
                         label="Wan2.2 I2V A14B (two 14B experts)")

`mode="cpu"` moves every pipeline to system RAM (`pipe.to("cpu")`): the next generation's
`.to("cuda")` brings it back in seconds, without reading the disk. `mode="drop"` removes them
from the dict: the next generation loads them from disk, and system RAM is freed too. Either
way the agent then empties PyTorch's cache, which is what hands the memory to the driver.
`busy` says a generation is running: the unload then waits for it to end (moving a pipeline
while it denoises would break the generation).
"""

from __future__ import annotations

from typing import Callable, MutableMapping, Optional

from ._later import AfterBusy

POLL_S = 0.2


class PipelineUnload:
    """The unload hook (a callable) for the pipelines in `pipelines`."""

    def __init__(self, pipelines: MutableMapping, mode: str = "cpu",
                 busy: Optional[Callable[[], bool]] = None) -> None:
        if mode not in ("cpu", "drop"):
            raise ValueError(f"mode must be 'cpu' or 'drop', not {mode!r}")
        self.pipelines = pipelines
        self.mode = mode
        self.busy = busy or (lambda: False)
        self.__qualname__ = f"PipelineUnload({mode})"  # how the agent names this hook
        # One wait for the running generation, however often an unload is asked for; the
        # agent's own cache release has run by then, so the memory is handed back after.
        self._after = AfterBusy(lambda: self.busy(), self._release_all,
                                "the pipelines unload when the running generation ends",
                                after=self._empty_cache, poll_s=POLL_S,
                                name="vramdeck-pipeline-unload")

    def says(self) -> str:
        """What this hook does, for `start(unload_says=...)`."""
        if self.mode == "cpu":
            return ("the pipelines move to system RAM (pipe.to('cpu')); the next generation "
                    "brings them back without reading the disk")
        return "the pipelines are dropped; the next generation loads them from disk"

    def release(self) -> int:
        """Releases every pipeline now; returns how many."""
        names = list(self.pipelines.keys())
        for name in names:
            if self.mode == "cpu":
                self.pipelines[name].to("cpu")
            else:
                self.pipelines.pop(name, None)
        return len(names)

    def _release_all(self) -> bool:
        self.release()
        return True

    @staticmethod
    def _empty_cache() -> None:
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass

    def __call__(self):
        return self._after()
