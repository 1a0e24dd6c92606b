rel-marker-freed = freed { $size }
rel-marker-free = free VRAM
rel-level-here-cache = empty cache here
rel-level-here-unload = unload here
rel-help-cache = Empty cache: returns memory no tensor uses (gc + torch.cuda.empty_cache; idle onnxruntime GPU sessions are rebuilt, which returns their arenas). Models stay loaded; safe while a job runs.
rel-help-unload = Unload models: the agents' unload hooks run, then the cache is emptied; the next run loads the models again. ComfyUI unloads between prompts (after the running one) and keeps its node cache, so models come back from RAM, not disk.
rel-empty-cache = empty cache
rel-unload-models = unload models
rel-waiting = waiting...
rel-freeing = freeing...
rel-no-agent-comfy = No agent running. For ComfyUI, install the vramdeck node (custom_nodes/comfyui-vramdeck, see README) to empty its cache too; other WebUIs: import vramdeck_agent; vramdeck_agent.start()
rel-no-agent = No agent running. ComfyUI: install the vramdeck node (custom_nodes/comfyui-vramdeck); other WebUIs: import vramdeck_agent; vramdeck_agent.start()
rel-agent-labelled = { $label } · { $process } (pid { $pid })
rel-agent = { $process } (pid { $pid })
rel-no-unload-hook = (no unload hook: cache only)
rel-free-only-says = Free only pid { $pid }: { $words }
rel-free-only = Free only pid { $pid }
rel-free = Free
rel-level-says = { $level }: { $words }
rel-comfy-address-hover = ComfyUI's address on this machine (loopback only). Without a port, 8188 and ComfyUI Desktop's 8000 are tried.
rel-checking = checking...
rel-running-at = running at { $at }
rel-torch-reserved = torch reserved { $size }
rel-through-node = Through the vramdeck node inside ComfyUI
rel-comfy-no-cache = ComfyUI's HTTP API cannot empty the cache without unloading every model: add the vramdeck node to ComfyUI, or choose unload models
rel-dynamic-vram = Dynamic VRAM (comfy-aimdo) on
rel-dynamic-vram-hover = ComfyUI keeps idle models' weights in aimdo's own VRAM buffer and hands that VRAM back by itself when another process needs it (unless started with --disable-nvml-pressure). Empty cache does not touch that buffer; unload models does.
rel-with-node = with the vramdeck node: empty cache and unload
rel-without-node = no vramdeck node: unload models only (over HTTP); install the node to empty the cache too
rel-torch-holds = torch holds { $size }
rel-no-torch = no torch
rel-models-loaded =
    { $count ->
        [0] no model loaded
        [one] 1 model loaded
       *[other] { $count } models loaded
    }
rel-models-loaded-size =
    { $count ->
        [one] 1 model loaded ({ $size })
       *[other] { $count } models loaded ({ $size })
    }
comfy-kind-cpu = runs on the CPU (no VRAM)
comfy-kind-mps = runs on Apple MPS (shared memory, no VRAM)
free-nothing-no-agent = Nothing to free: no vramdeck agent is running. Add `vramdeck_agent.start()` to your WebUI.
free-nothing-no-agent-no-comfy = Nothing to free: no vramdeck agent is running and ComfyUI did not answer. Add `vramdeck_agent.start()` to your WebUI.
free-waiting = Waiting: { $reasons }
free-released = Released { $amount } in { $ms } ms
free-released-reported = Released { $amount } (reported) in { $ms } ms
free-failed = Free VRAM failed
free-nothing-released = Nothing was released ({ $ms } ms)
free-reported-by-agents = reported by agents: { $amount }
free-no-nvml = no NVML measurement (demo mode or no NVIDIA driver)
free-nvml-used = NVML used { $before } to { $after } MiB ({ $delta } MiB)
free-hook-failed = { $target }: unload hook failed: { $error }
free-comfy-after-prompt = ComfyUI will unload its models after the current prompt
free-onnx-rebuilt =
    rebuilt { $count ->
            [one] { $n } onnxruntime session
           *[other] { $n } onnxruntime sessions
        } (their arenas went back)
free-onnx-left = left { $names }
free-gave-up = stopped waiting after { $minutes } min: { $reasons } (it still will, when the running job ends)
free-comfy-target = ComfyUI at { $address }
err-directory = agent directory { $path }: { $reason }
err-gone = { $target } is gone (its process has exited)
err-no-such-agent = no vramdeck agent runs in pid { $pid }
err-connect = cannot connect to { $target }: { $reason }
err-timeout = { $target } did not answer within { $seconds } s (hung or busy)
err-impostor = { $target }: its socket is served by pid { $pid }, not by the process it is named after; refusing it
err-other-user = { $target } belongs to another user (uid { $uid }); refusing to talk to it
err-malformed = { $target } sent a malformed reply: { $reason }
err-refused = { $target } refused: { $message }
err-not-loopback = { $address } is not a loopback address; vramdeck only talks to this machine
err-nothing-listens = nothing listens there (is { $app } running? tried port { $ports })
err-app-at = { $app } at { $address }
err-connection-closed = connection closed before a reply (did the process crash?)
err-unproven = { $target }: whatever listens on its port { $port } cannot prove it holds the agent's secret (the agent may have exited and another program taken the port); refusing to talk to it
free-why-no-torch = released nothing: torch is not loaded in that process ({ $reason })
free-why-no-torch-plain = released nothing: torch is not loaded in that process
free-why-all-in-use = released nothing: all { $size } torch holds is in live tensors (try "Unload models")
free-why-cache-empty = released nothing: its cache was already empty
rel-title-here = Release cached VRAM on this machine ({ $host })
rel-free-is-on-top = "Free VRAM" at the top of the window frees them all (Ctrl+Shift+F); "Free" below frees one.
app-nothing-loaded = nothing loaded
app-no-cache-level = left alone: { $app } has no cache to empty, only its models ("Unload models" frees them)
ollama-after-request = Ollama unloads { $models } when the request using it ends
a1111-after-job = the WebUI unloads its checkpoint when { $job } ends
a1111-job = { $job } ({ $n } of { $count })
a1111-torch = checkpoint and torch cache
a1111-not-api = { $route } is not the WebUI API's JSON (is it started with --api?): { $error }
rel-app-holds = { $what } { $vram } VRAM + { $host } RAM
rel-app-busy = generating: { $job }
rel-app-free-hover = Unloads its models over its own API; a running generation finishes first
rel-app-no-cache = It has no cache to empty: choose "Unload models" to free it
rel-marker-room = made room: { $size }
room-off = Off
room-caches = Empty their caches
room-models = Caches, then idle models
room-title = When an app asks for room before a job
room-hover = An app asks with vramdeck_agent.need(bytes) before its job; vramdeck frees the other apps (never the asking one, never a running job) and answers it with what it did. Ask me: a question appears in the window each time.
room-nobody = nobody gave anything back
room-policy-off = { $what } asked for room, but making room is switched off in vramdeck
room-made = made room for { $what } ({ $needed } needed): freed { $freed } · { $who }
room-short = could not make room for { $what }: { $needed } needed, { $short } still missing after freeing { $freed } · { $who }
rel-oom = out of memory: { $message }
rel-free-others = Free the others
rel-free-others-hover = Frees every other app at the chosen level (never this one); then run the job again in the app
rel-app-holds-vram = { $what } { $vram } VRAM
room-keep = Never free for others:
room-keep-hover = An app selected here is never freed when another asks for room (Free VRAM still frees it when you ask)
room-ask = Ask me
room-declined = { $what } asked for room; you chose not to free the others this time
room-ask-title = { $who } asks for { $needed } of free VRAM before its job ({ $free } free now)
room-ask-question = Free the other apps for it? A running job is never cut.
room-ask-not-now = Not now
room-ask-waits = It waits for your answer (up to its own time limit).
room-free-unknown = not known
room-ask-more = { $count } more waiting after this one
room-ask-caches = Free their caches
room-ask-models = Free caches and idle models
room-no-amount = { $what } asked for room without an amount or a preset
room-unknown-preset = { $what } asked for room for the preset “{ $preset }”, which vramdeck does not know (add it under What fits, or ask with bytes)
room-already = { $what } has room already: { $needed } needed, { $free } free
room-when-asks = When { $app } asks:
room-as-above = as above ({ $policy })
room-when-asks-hover = What vramdeck does when this app asks for room; "as above" follows the choice above
room-larger-than-gpu = { $what } asked for { $needed }, more than its whole GPU ({ $card }): nothing was freed, since no one giving way could make that fit. Choose a smaller setting (a lighter model, a lower resolution, quantisation) or let the app offload
room-limit-free-unknown = its free memory could not be read, so only caches were emptied
room-limit-gpu-unknown = it is on none of this machine's GPUs yet, so only caches were emptied
room-limit-one-gpu = only apps on its GPU { $index } were asked
room-cooldown = { $last } (answered again from { $seconds } s ago: vramdeck makes room for one app at most once every { $cooldown } s)
