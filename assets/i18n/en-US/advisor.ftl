adv-hover-catalogue-peak = Catalogue peak: { $size }
adv-hover-measured-on = Measured on: { $what }
adv-hover-source = Source: { $what }
adv-hover-settings = Settings: { $what }
adv-hover-time = Time: { $seconds } s
adv-hover-phases = Phases:
adv-hover-sizes = Measured sizes:
adv-hover-batched = Model: { $base } + { $per } per frame processed at once
adv-hover-measured-here = Measured on this machine: { $size } (used instead of the catalogue)
adv-run-at-size = { $name } at size { $size }
adv-what-fits-on = What fits on { $gpu } now
adv-rule = { $free } free. Each job needs its peak + { $margin } % of it + { $allowance } MiB.
adv-margin = margin, % of peak
adv-margin-hover = Catalogue peaks are once-a-second samples that miss short spikes and fragmentation: each job keeps this share of its peak, plus 512 MiB (about one CUDA context), free.
adv-recording = Recording { $name }: peak so far { $peak }
adv-done = Done: keep this peak
adv-cancel = Cancel
adv-measured-here-suffix = { $name } (measured here)
adv-instead = instead: { $what }
adv-running-now = I'm running { $name } now
adv-running-now-hover = Records this run's peak on this machine; it then wins over the catalogue
adv-own-presets = Your own presets
adv-edit = Edit
adv-edit-hover = Edit { $name }
adv-remove = Remove
adv-remove-hover = Remove { $name }
adv-form-name = Name
adv-form-peak = Peak MiB
adv-form-measured-on = Measured on
adv-add = Add preset
adv-add-hover = A preset with the same name is replaced
adv-import = Import presets...
adv-export = Export my presets...
adv-err-name = Give the preset a name.
adv-err-peak = Peak must be a whole number of MiB, not { $given }.
adv-err-peak-zero = Peak must be more than 0 MiB.
adv-not-stated = not stated
adv-added-by-you = added by you
fit-fits = fits
fit-tight = tight
fit-wont = will not fit
adv-needs = needs { $needs } (peak { $peak } + { $margin } % + { $allowance } MiB)
adv-fits-at-once = { $needs } · { $count } at once
adv-fits-one = { $needs } · one at a time
adv-tight = { $needs }: runs only if nothing spikes
adv-wont = peak { $peak } is more than the { $free } free
adv-largest-size = largest safe size { $size } ({ $subjects })
adv-largest-batch =
    { $count ->
        [one] largest safe batch: 1 frame at once
       *[other] largest safe batch: { $count } frames at once
    }
adv-batch-tight = 1 frame at a time, without margin
adv-batch-none = not even 1 frame at a time fits
adv-no-sizes = no measured sizes
adv-smallest-too-big = even the smallest measured size ({ $size }) has a { $peak } MiB peak
adv-not-extrapolated = larger sizes may fit, but { $size } is the largest measured: not extrapolated
adv-use = use { $name }
adv-advice-and-fits = { $advice } ({ $name } fits)
adv-close-others = close other programs using the GPU, or free cached VRAM
adv-template-size = { $name } size { $size }
adv-template-batch =
    { $count ->
        [one] { $name } 1 frame at once
       *[other] { $name } { $count } frames at once
    }
calibration-damaged = Calibration file { $path } is damaged ({ $reason }); using catalogue values.
preset-batch-too-big = preset { $id } allows batches up to { $batch }; at most { $max }
preset-list-too-long = preset { $id } lists { $count } sizes, phases or subjects; at most { $max }
preset-file-too-many = { $origin }: { $count } presets; a presets file holds at most { $max }
preset-file-line = { $origin } line { $line }: { $error }
presets-file-ignored = Your presets file was ignored: { $error }
adv-recording-since = measured from { $since } ({ $base } in use then: the lowest reading of the 5 minutes before the click)
adv-far-below = The peak, { $peak }, is less than half of the { $expected } the catalogue expects: did the job run before the last 5 minutes, or not at all? Saved, it would win over the catalogue.
adv-save-anyway = Save anyway
adv-discard = Discard
fit-basis-now = Free now
fit-basis-after-free = After Free VRAM
fit-basis-idle = Idle card
fit-basis-hover = Now: the least free memory of the last 10 s (a running job does not make verdicts flip). After Free VRAM: plus the caches the agents on this GPU would give back. Idle card: the whole card, nothing running.
adv-what-fits-after-free = What fits on { $gpu } after Free VRAM
adv-what-fits-idle = What fits on { $gpu } when idle
adv-save-changes = Save changes
adv-removed = Removed { $name }.
adv-undo = Undo
