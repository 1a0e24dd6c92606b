hosts-connecting = connecting…
hosts-no-reading = no reading for { $seconds } s
hosts-live =
    { $count ->
        [one] live · 1 GPU
       *[other] live · { $count } GPUs
    }
hosts-refused = refused: { $why }
hosts-retry = { $error } · trying again in { $seconds } s
hosts-title = Remote hosts
hosts-intro = Watch a GPU box beside this machine's GPUs: a box running `vramdeck serve` (http://box:9401 and its token: `vramdeck serve --print-token` there), or any box with the NVIDIA driver over SSH (ssh user@box: your keys and ~/.ssh/config).
hosts-none = No remote host yet.
hosts-remove = Remove
hosts-address = Address
hosts-token = Token
hosts-token-hint = vramdeck serve --print-token (on the box)
hosts-add = Add host
hosts-plain-http = Plain http:// sends readings unencrypted; see README for TLS.
hosts-list-hover = Hosts... lists every remote host
hosts-release-on = Release cached VRAM on { $host }
hosts-ssh-watch-only = Not from here: a host over SSH can only be watched.
hosts-address-hint = http://gpu-box:9401  or  ssh user@gpu-box
hosts-free-on = Free VRAM on { $host } ({ $level })
hosts-free-hover = The box's vramdeck serve asks its own agents and ComfyUI, as this machine's button does here
hosts-working = Working: { $summary }
remote-too-large = the host's answer is larger than { $limit } bytes, more than a real box sends
remote-schema = the host speaks { $theirs }, this vramdeck reads { $ours }: update the older one
remote-no-schema = no vramdeck schema
remote-demo-gpus = { $host } runs demo GPUs ({ $source })
remote-asking = Asking the host…
remote-waiting-reading = waiting for a reading
remote-not-ssh = { $target } is not an SSH destination (user@host or a Host from ~/.ssh/config)
remote-not-url = { $address } is not a URL of a vramdeck serve
remote-bad-address = { $address }: use http://host:9401 (vramdeck serve) or ssh user@host (nvidia-smi over SSH)
remote-over-ssh = over SSH: nvidia-smi's readings, no process list
remote-smi-stopped = nvidia-smi on the host stopped
hosts-already-listed = { $address } is already in the list
remote-refused-renames = the host named its GPUs anew in { $count } readings in a row, which no real box does: its readings are not shown or stored. Remove it and add it again once it is fixed
remote-too-many-gpus = the host named more than { $max } GPUs (a real box has at most 16): only the first { $max } are read
remote-new-gpus-dropped = the host has named { $total } different GPUs since it was added: { $new } new ones are not shown
remote-ssh-ended = ssh ended ({ $status }) without a reading
remote-err-timeout = no answer in time: the box may be asleep, busy or out of reach
remote-err-no-host = no machine of that name was found (check the address)
remote-err-connect = could not connect: nothing answers at that address and port
remote-err-refused = connection refused: is `vramdeck serve` running on that port?
remote-err-dropped = the connection was cut before the answer came
