cli-about-vramdeck = Desktop GPU VRAM monitor and safe-settings advisor for AI WebUIs (ComfyUI, Wan2.1 video, FaceFusion)
cli-arg-vramdeck-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-arg-vramdeck-file = Open this log in the window: an nvidia-smi / vramdeck CSV log in the plots, or a console log's out-of-memory analysis
cli-arg-vramdeck-open = The same as FILE
cli-about-log = Print readings as CSV, in the format of `nvidia-smi --query-gpu=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu --format=csv`
cli-arg-log-interval-ms = Milliseconds between readings, 100 to 5000 (nvidia-smi's -lms)
cli-arg-log-count = Stop after this many readings; 0 runs until interrupted
cli-arg-log-output = Append to this file instead of printing (the header is written only to a new file)
cli-arg-log-processes = Log one row per process holding VRAM instead of one per GPU
cli-arg-log-no-header = Leave out the header line
cli-arg-log-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-about-bench = Measure sampling, history and plotting costs on this machine
cli-arg-bench-sample-calls = Calls of the GPU read per round (at least 1)
cli-arg-bench-with-nvidia-smi = Also time one `nvidia-smi --query-gpu` subprocess per reading (the seed scripts' way)
cli-arg-bench-cadence-samples = Readings taken 100 ms apart for the "at 10 Hz" figures (at least 1)
cli-arg-bench-offscreen = Instead: render the window's frames with no display through the GPU's EGL device and report CPU per frame and memory with the GL driver loaded
cli-arg-bench-frames = With --offscreen: frames to draw, one per sampling interval
cli-arg-bench-frame-ms = With --offscreen: milliseconds between frames (the window draws once per reading)
cli-arg-bench-software = With --offscreen: draw with Mesa's software renderer (llvmpipe) even beside a GPU
cli-arg-bench-hours = With --offscreen: hours of history behind the live readings
cli-arg-bench-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-about-agents = List running vramdeck agents (and ComfyUI) with the memory they hold
cli-arg-agents-comfyui = ComfyUI's address on this machine (loopback only; without a port, 8188 and ComfyUI Desktop's 8000 are tried); "none" to leave ComfyUI alone
cli-about-free = Release cached VRAM in cooperating processes and show what came back
cli-arg-free-pid = Only the agent of this process id (default: every agent, and ComfyUI if running)
cli-arg-free-level = `cache`: empty PyTorch's cache; `unload`: also unload models
cli-arg-free-comfyui = ComfyUI's address on this machine (loopback only; without a port, 8188 and ComfyUI Desktop's 8000 are tried); "none" to leave ComfyUI alone
cli-arg-free-wait = How long to wait, in seconds, for a release ComfyUI defers until its running prompt ends (it unloads between prompts, never inside one)
cli-arg-free-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-about-advise = Say which workload presets fit in the GPU's free VRAM now
cli-arg-advise-gpu = GPU index
cli-arg-advise-workload = Only this preset (id or name, e.g. ddcolor or "Wan2.1 T2V 14B 480p (quantised)")
cli-arg-advise-margin = Safety margin, percent of each workload's peak (0-100), on top of a fixed 512 MiB
cli-arg-advise-free-mib = What-if: plan for this much free VRAM (MiB) instead of reading the GPU
cli-arg-advise-total-mib = What-if: a card with this much VRAM (MiB)
cli-arg-advise-templates = Print the low / medium / high templates for 8, 12, 24, 48 and 80 GB cards instead
cli-arg-advise-gib = Print memory in GiB instead of MiB
cli-arg-advise-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-about-analyze = List the CUDA out-of-memory events in a log and what to change, or summarise a CSV log
cli-arg-analyze-log = The log: a console log (ComfyUI, a WebUI, any PyTorch traceback, onnxruntime) for its out-of-memory events, or an nvidia-smi / vramdeck CSV log for a per-GPU summary; `-` reads standard input
cli-arg-analyze-json = Print JSON (schema `vramdeck.analyze/1`, described in README) instead of text
cli-about-diagnose = Watch every GPU for a while and say why it is busy but slow: GPU-bound, starved by the CPU side, throttled, streaming over PCIe, or held by the video encoder
cli-arg-diagnose-seconds = How long to watch, seconds (2 to 600)
cli-arg-diagnose-gpu = Only this GPU index
cli-arg-diagnose-json = Print JSON (schema `vramdeck.diagnose/1`, described in README) instead of text
cli-arg-diagnose-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-about-serve = Serve this box's GPUs to Prometheus (/metrics, dcgm-exporter's names) and to vramdeck windows elsewhere (/api/v1), on 127.0.0.1:9401 unless told otherwise
cli-arg-serve-listen = Address and port to listen on. Anything but loopback exposes the box to the network: every request then needs the token; put TLS in front (README: reverse proxy or SSH)
cli-arg-serve-interval-ms = Milliseconds between readings, 100 to 5000
cli-arg-serve-token-file = The token file (made, 0600, on first start)
cli-arg-serve-no-token = No token at all: /metrics only (the JSON API and every action are off). Refused unless listening on loopback
cli-arg-serve-metrics-without-token = Let /metrics be read without the token on loopback (Prometheus convention), so a scraper needs no credentials; everyone on this machine can then read the metrics. The JSON API keeps needing the token. Refused off loopback
cli-arg-serve-allow-hosts = Another name this server answers to (repeatable): the public name a reverse proxy forwards in the Host header. Requests for any other name get 421, which keeps DNS-rebinding web pages out. IP addresses, localhost and this box's hostname are always answered
cli-arg-serve-readonly = Turn every action (Free VRAM) off; readings and metrics only
cli-arg-serve-name = The name this box goes by in metrics and on the desktop's cards (default: hostname)
cli-arg-serve-comfyui = Where ComfyUI listens on this box (loopback only); "none" to leave it alone
cli-arg-serve-print-token = Print the token (to set up a client) and exit
cli-arg-serve-demo = Use simulated demo GPUs even when an NVIDIA GPU is present
cli-arg-vramdeck-lang = The language of the window and of what commands print: en or zh-CN (default: the system's)
cli-heading-usage = Usage:
cli-heading-options = Options
cli-heading-commands = Commands
cli-heading-arguments = Arguments
cli-help = Print help
cli-version = Print version
cli-after-help =
    Examples:
      vramdeck                     open the window
      vramdeck --demo              the window with simulated GPUs
      vramdeck gpu-log.csv         the window showing a CSV log (or a console log's OOM analysis)
      vramdeck advise              what fits in free VRAM now, in the terminal
cli-window-note = Without a subcommand, vramdeck opens its window (with a log, when one is named).
out-warning = warning: { $what }
adv-templates-intro = Templates for an otherwise empty card, among the settings that fit with the { $margin } % margin: low is the lightest (fastest, least detail), medium the middle one, high the heaviest.
adv-card-gb = { $gib } GB card:
adv-nothing-fits = nothing fits
adv-what-if-card = what-if card
out-demo-simulated = vramdeck: demo mode, this GPU is simulated ({ $reason })
out-no-gpu = no GPU { $index } (found { $count })
adv-header = GPU { $index } ({ $name }): { $free } free of { $total }; each job needs its peak + { $margin } % + { $allowance } MiB
adv-no-preset = no preset named { $name }; try `vramdeck advise` for the list
adv-measured-here-catalogue = (measured here; catalogue { $size })
agents-in = agents in { $dir }:
agents-none = none running
agents-reserved = torch reserved
agents-allocated = allocated
agents-levels = levels
agents-pending = pending: { $what }
agents-inside = inside { $app }
agents-on-port = on port { $port }
agents-models-loaded =
    { $count ->
            [one] { $n } model
           *[other] { $n } models
        } loaded
agents-removed-stale = removed what a gone agent left: { $path }
agents-problem = problem: { $what }
agents-comfy-vram = VRAM free { $free } of { $total }, torch reserved { $reserved }
agents-comfy-device = ComfyUI at { $address }: { $name } — { $memory }
agents-comfy-agent = its vramdeck agent is pid { $pid } above: freed through it (cache and unload)
agents-comfy-no-agent = no vramdeck agent inside: only `--level unload` can free it (over HTTP)
free-still-waiting = … still waiting ({ $seconds } s; up to { $wait } s with --wait)
free-target-released = { $target }: released { $amount }
free-not-reported = (not reported)
free-none-released = no target released memory
err-prefix = vramdeck: { $error }
err-window-system = could not open a window: the window system failed ({ $reason }). On a minimal system install xkb-data and libxkbcommon-x11-0; without a display, `vramdeck log` prints readings as CSV.
err-window = could not open a window: { $error }. Is a display available (DISPLAY / WAYLAND_DISPLAY)? Without one, `vramdeck log` prints readings as CSV.
err-cannot-open = cannot open { $path }: { $error }
err-no-config-dir = No config directory found; settings will not be saved.
err-remote-host = vramdeck: remote host { $address }: { $error }
log-cannot-open-for-writing = cannot open { $path } for writing: { $error }
log-other-kind = { $path } already holds another kind of log (its first line is not `{ $header }`); choose another file
log-demo-simulated = vramdeck: demo mode, these readings are simulated ({ $reason })
log-writing-failed = writing { $path } failed: { $error }
cli-arg-vramdeck-hidden = Start hidden in the tray (how the session starts vramdeck); shown when there is no tray.
cli-arg-agents-ollama = Ollama's address on this machine (loopback only; without a port, 11434); "none" to leave Ollama alone
cli-arg-agents-a1111 = Stable Diffusion WebUI's or Forge's address, started with --api (loopback only; without a port, 7860); "none" to leave it alone
cli-arg-free-ollama = Ollama's address on this machine (loopback only; without a port, 11434); "none" to leave Ollama alone
cli-arg-free-a1111 = Stable Diffusion WebUI's or Forge's address, started with --api (loopback only; without a port, 7860); "none" to leave it alone
cli-arg-serve-ollama = Where Ollama listens (loopback only; "none": leave it alone)
cli-arg-serve-a1111 = Where Stable Diffusion WebUI / Forge listens with --api (loopback only; "none": leave it alone)
agents-app-busy = generating: { $job }
agents-app-holds = { $what }: { $vram } in VRAM, { $host } in host memory
cli-arg-serve-make-room = When an app on this box asks for room before a job (vramdeck_agent.need): off, caches (empty the other apps' caches) or models (then their idle models too); ask needs the window
agents-oom = out of memory: { $message } (torch allocated { $allocated }, reserved { $reserved }; { $free } free)
cli-arg-serve-make-room-keep = An app never freed to make room for another ("Ollama", "ComfyUI", an agent's label); repeat for several
serve-ask-needs-window = --make-room ask needs the window to ask in; serve has none: choose caches or models
serve-room-for-form = --make-room-for takes APP=POLICY, POLICY one of off, caches, models (e.g. ComfyUI=models)
cli-arg-serve-make-room-for = What is done when one app asks, instead of --make-room: APP=off|caches|models; repeat for several
cli-arg-agents-engines = The other engines: "auto" (llama.cpp server, llama-swap, LM Studio, vLLM, SGLang, InvokeAI and SwarmUI at their default ports), "none", or a list such as "vllm=127.0.0.1:8001,llama-server=localhost:8081"
cli-arg-free-engines = The other engines: "auto" (each at its default ports), "none", or a list such as "vllm=127.0.0.1:8001,llama-server=localhost:8081"
cli-arg-serve-engines = The other engines: "auto" (each at its default ports), "none", or "vllm=127.0.0.1:8001,llama-server=localhost:8081"
cli-arg-serve-no-hand-back = Leave engines put to sleep to make room (vLLM, SGLang) asleep when the job that asked has ended, instead of waking them
