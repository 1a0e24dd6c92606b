# The engines that give VRAM back over their own HTTP API (src/release/engines/).
err-unrecognised = { $target }: another program answers there ({ $route } is not this engine's)
engine-after-job = { $app } frees its memory once its work has ended ({ $job })
engine-busy-unknown = left alone: { $app } does not say whether it is answering a request (free it on its own to unload it)
engine-unknown = unknown engine “{ $name }” (known: { $known })
engine-requests = { $count ->
    [one] { $n } request at work
   *[other] { $n } requests at work
}
engine-jobs = { $count ->
    [one] { $n } job at work
   *[other] { $n } jobs at work
}
engine-llama-single = this llama-server runs one model and cannot unload it: stop the process, or start it in router mode (--models-dir) or with --sleep-idle-seconds
engine-models-leaving = { $app } is stopping { $models }
engine-stopped = stopped { $models } (each starts again with its next request)
engine-lmstudio-old = this LM Studio has no unload route in its REST API (before 0.4): update it, or unload in LM Studio
engine-vllm-no-sleep = vLLM gives memory back only in sleep mode: start it with VLLM_SERVER_DEV_MODE=1 and --enable-sleep-mode
engine-vllm-cache = left alone: vLLM keeps its KV cache pool; only sleep gives memory back (choose “Unload models”)
engine-already-asleep = already asleep
engine-vllm-slept = put to sleep: weights kept in host memory, KV cache dropped; woken when the job that asked has ended
engine-sglang-no-saver = SGLang frees nothing without --enable-memory-saver: restart it with that flag
engine-sglang-cache = left alone: SGLang keeps its KV cache pool; only releasing its memory gives it back (choose “Unload models”)
engine-sglang-released = released its weights and KV cache; resumed when the job that asked has ended
engine-invokeai-emptied = emptied its model cache: models load again when a job needs them
engine-swarm-freed = { $count ->
    [one] { $n } backend freed its VRAM
   *[other] { $n } backends freed their VRAM
}
engine-swarm-none = no backend was running
engine-woke = woke { $app } (the job that asked for room has ended)
engine-wake-failed = could not wake { $app }: { $error }
engine-levels-ollama = cache: nothing · unload: every model (loads again on its next request)
engine-levels-a1111 = cache: nothing · unload: the checkpoint (loads again with the next image)
engine-levels-llama-server = cache: nothing · unload: every model of a router (single-model servers cannot unload)
engine-levels-llama-swap = cache: nothing · unload: stops each model's server (starts again on its next request)
engine-levels-lm-studio = cache: nothing · unload: every model instance (only when LM Studio itself is freed)
engine-levels-vllm = cache: nothing · unload: sleep level 1 (woken when the job that asked has ended)
engine-levels-sglang = cache: nothing · unload: release memory occupation (resumed when the job that asked has ended)
engine-levels-invokeai = cache and unload: empties the model cache (models load again when needed)
engine-levels-swarmui = cache and unload: every backend frees its VRAM
holder-unmanaged = unmanaged: close it to free its memory
holder-unmanaged-python = unmanaged: add the vramdeck agent (README) or close it
holder-column = held by
holder-column-hover = The app each process belongs to: an agent, an engine vramdeck can free, or unmanaged
agents-holders = Processes holding GPU memory, and the app each belongs to:
rel-marker-room-for = room for { $who }: { $size } (asleep: { $asleep })
rel-marker-handed-back = handed back to { $apps }
rel-app-asleep = asleep
rel-app-wake = Wake
rel-app-wake-hover = Give it its memory back now (vLLM wake_up, SGLang resume)
room-hand-back = Wake engines put to sleep when the job that asked has ended
room-hand-back-hover = vLLM and SGLang are put to sleep to make room; when the job that asked for the room ends, they are woken. Engines that reload by themselves (Ollama, llama.cpp, LM Studio) are left to reload.
holders-unmanaged-title = Also holding GPU memory, managed by no app vramdeck can free:
err-other-users-process = { $target } is a process of another user (pid { $pid }); refusing to talk to it
