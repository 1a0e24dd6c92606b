//! "Why is my GPU busy but slow?" — over a window of recent samples: how much of the time the
//! GPU ran kernels, the idle gaps between its bursts, and a verdict resting on named numbers:
//! held back by its clocks (power or temperature), streaming over PCIe, saturating the video
//! encoder or decoder, starved by the CPU side, or simply the limit itself.

use crate::telemetry::ClockEvents;
use crate::telemetry::activity::ActivitySample;

/// Utilisation at or above this counts as busy, %.
pub const BUSY_UTIL: f32 = 10.0;
/// Mean utilisation from which the GPU itself is the limit, %.
pub const GPU_BOUND_UTIL: f32 = 85.0;
/// Share of busy samples with a slowing clock event that makes it "throttled".
pub const THROTTLED_SHARE: f32 = 0.3;
/// A throttled GPU runs its SM clock below this share of the maximum while busy.
pub const THROTTLED_CLOCK: f32 = 0.9;
/// PCIe traffic (either direction) that counts as streaming: this share of the link's maximum.
pub const PCIE_SHARE: f32 = 0.25;
/// ... or this many MB/s where the link's maximum is unknown.
pub const PCIE_MBS: f32 = 6_000.0;
/// PCIe traffic at this share of the link's negotiated maximum (or more than any reading seen
/// in the window before) is the link running at its capacity: the copies are the limit,
/// whatever utilisation reads (NVML counts the time a copy runs as busy). A pinned host→device
/// copy on an H200 ran at 96 % of its Gen5 x16 link.
pub const PCIE_SATURATED: f32 = 0.7;
/// A video engine this busy is the bottleneck, %.
pub const ENGINE_BOUND: f32 = 80.0;
/// A host process this busy (% of one core) is feeding the GPU as fast as one thread can.
pub const HOST_BUSY: f32 = 80.0;
/// MB/s out of the GPU (NVML's PCIe TX) that, with one host core busy and the SMs waiting,
/// mark copies into pageable host memory.
pub const HOST_COPY_MBS: f32 = 2_000.0;
/// VRAM this full (share of the card) is where the sysmem fallback starts placing allocations
/// in system memory.
pub const SPILL_VRAM_SHARE: f32 = 0.95;
/// A process's shared GPU memory rising by this much (MiB) while VRAM is full is a spill;
/// pinned host memory at rest stays flat.
pub const SPILL_GROWTH_MIB: f32 = 256.0;
/// ...and the bus carries at least this share of its capacity (the spilled data moves).
pub const SPILL_PCIE_SHARE: f32 = 0.1;

/// The answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Fewer than a handful of samples.
    NotEnoughData,
    /// Nothing runs.
    Idle,
    /// Kernels run nearly all the time: the GPU is the limit.
    GpuBound,
    /// Kernels run nearly all the time and the power cap sets the clock: the GPU is the limit
    /// at the power it may draw.
    GpuBoundAtPowerLimit,
    /// The GPU waits for the CPU side (decode, preprocessing, batch 1).
    CpuStarved,
    /// Clock events hold the SM clock down; the most frequent reason.
    Throttled(&'static str),
    /// The model streams over PCIe: it does not fit in VRAM.
    PcieBound,
    /// NVENC is saturated.
    EncoderBound,
    /// NVDEC is saturated.
    DecoderBound,
    /// Results copied out of the GPU into pageable host memory every step: each copy is
    /// staged through one host core while the GPU waits.
    HostCopies,
    /// Partly busy with no bottleneck in view.
    PartlyBusy,
    /// VRAM is full and the driver places the job's memory in system memory (Windows' CUDA
    /// sysmem fallback): no out-of-memory error, a much slower run.
    SystemMemoryFallback,
}

impl Verdict {
    /// A few words.
    pub fn headline(&self) -> String {
        match self {
            Verdict::NotEnoughData => crate::t!("diag-verdict-not-enough"),
            Verdict::Idle => crate::t!("diag-verdict-idle"),
            Verdict::GpuBound => crate::t!("diag-verdict-gpu-bound"),
            Verdict::GpuBoundAtPowerLimit => crate::t!("diag-verdict-power-limit"),
            Verdict::CpuStarved => crate::t!("diag-verdict-starved"),
            Verdict::Throttled(reason) => crate::t!(
                "diag-verdict-throttled",
                reason = crate::telemetry::ClockEvents::label(reason)
            ),
            Verdict::PcieBound => crate::t!("diag-verdict-pcie"),
            Verdict::EncoderBound => crate::t!("diag-verdict-encoder"),
            Verdict::DecoderBound => crate::t!("diag-verdict-decoder"),
            Verdict::HostCopies => crate::t!("diag-verdict-host-copies"),
            Verdict::PartlyBusy => crate::t!("diag-verdict-partly"),
            Verdict::SystemMemoryFallback => crate::t!("diag-verdict-spill"),
        }
    }

    /// A stable name for scripts (`vramdeck diagnose --json`).
    pub fn id(&self) -> &'static str {
        match self {
            Verdict::NotEnoughData => "not_enough_data",
            Verdict::Idle => "idle",
            Verdict::GpuBound => "gpu_bound",
            Verdict::GpuBoundAtPowerLimit => "gpu_bound_at_power_limit",
            Verdict::CpuStarved => "cpu_starved",
            Verdict::Throttled(_) => "throttled",
            Verdict::PcieBound => "pcie_bound",
            Verdict::EncoderBound => "encoder_bound",
            Verdict::DecoderBound => "decoder_bound",
            Verdict::HostCopies => "transfer_bound_host_copies",
            Verdict::PartlyBusy => "partly_busy",
            Verdict::SystemMemoryFallback => "system_memory_fallback",
        }
    }
}

/// Idle stretches between two bursts of work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gaps {
    /// How many.
    pub count: usize,
    /// Their mean length, seconds.
    pub mean_seconds: f64,
    /// The longest, seconds.
    pub longest_seconds: f64,
    /// Mean time from one burst's start to the next, seconds (the rhythm), with 2+ bursts.
    pub period_seconds: Option<f64>,
}

/// Means over the window of the readings a verdict can rest on (`None`: not reported).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Means {
    /// PCIe into the GPU, MB/s.
    pub pcie_rx_mbs: Option<f32>,
    /// PCIe out of the GPU, MB/s.
    pub pcie_tx_mbs: Option<f32>,
    /// NVENC utilisation, %.
    pub encoder: Option<f32>,
    /// NVDEC utilisation, %.
    pub decoder: Option<f32>,
    /// SM clock while busy, MHz.
    pub sm_clock_mhz: Option<f32>,
    /// The busiest GPU process's CPU use, % of one core.
    pub host_cpu_percent: Option<f32>,
    /// Power while busy, W.
    pub power_w: Option<f32>,
}

impl Means {
    /// One line: "PCIe rx 1,570 / tx 20 MB/s · SM clock 1,305 MHz · ...".
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(rx), Some(tx)) = (self.pcie_rx_mbs, self.pcie_tx_mbs) {
            parts.push(crate::t!("diag-means-pcie", rx = n(rx), tx = n(tx)));
        }
        if let Some(c) = self.sm_clock_mhz {
            parts.push(crate::t!("diag-means-clock", mhz = n(c)));
        }
        if let Some(p) = self.power_w {
            parts.push(crate::t!("diag-means-power", watts = n(p)));
        }
        if let (Some(e), Some(d)) = (self.encoder, self.decoder) {
            parts.push(format!("NVENC {e:.0} % / NVDEC {d:.0} %"));
        }
        if let Some(c) = self.host_cpu_percent {
            parts.push(crate::t!("diag-means-host", percent = format!("{c:.0}")));
        }
        parts.join(" · ")
    }
}

/// A diagnosis of one GPU over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// Seconds covered.
    pub seconds: f64,
    /// Samples read.
    pub samples: usize,
    /// Share of samples with the GPU busy (utilisation ≥ [`BUSY_UTIL`]).
    pub busy_share: f32,
    /// Mean GPU utilisation, %.
    pub mean_util: f32,
    /// Idle gaps between bursts.
    pub gaps: Gaps,
    /// What was measured.
    pub means: Means,
    /// The answer.
    pub verdict: Verdict,
    /// The numbers it rests on.
    pub evidence: Vec<String>,
    /// What to change.
    pub advice: Vec<String>,
}

/// A rounded figure with thousands separators: 11,200.
fn n(x: f32) -> String {
    crate::units::group_thousands(x.max(0.0).round() as u64)
}

/// Mean of the reported (non-NaN) values, if any.
fn mean(values: impl Iterator<Item = f32>) -> Option<f32> {
    let (sum, n) = values
        .filter(|v| !v.is_nan())
        .fold((0.0f64, 0usize), |(s, n), v| (s + v as f64, n + 1));
    (n > 0).then(|| (sum / n as f64) as f32)
}

fn gaps(samples: &[ActivitySample]) -> Gaps {
    let mut bursts: Vec<(f64, f64)> = Vec::new(); // (start, end) of busy runs
    for s in samples.iter().filter(|s| !s.gpu_util.is_nan()) {
        let busy = s.gpu_util >= BUSY_UTIL;
        match bursts.last_mut() {
            Some(last) if busy && last.1.is_nan() => {}
            _ if busy => bursts.push((s.t, f64::NAN)),
            Some(last) if last.1.is_nan() => last.1 = s.t,
            _ => {}
        }
    }
    let lengths: Vec<f64> = bursts
        .windows(2)
        .filter(|w| !w[0].1.is_nan())
        .map(|w| w[1].0 - w[0].1)
        .collect();
    let starts: Vec<f64> = bursts.iter().map(|b| b.0).collect();
    Gaps {
        count: lengths.len(),
        mean_seconds: if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        },
        longest_seconds: lengths.iter().copied().fold(0.0, f64::max),
        period_seconds: (starts.len() >= 2)
            .then(|| (starts[starts.len() - 1] - starts[0]) / (starts.len() - 1) as f64),
    }
}

/// The most frequent slowing reason among `busy` samples, with its share of them.
fn throttling(busy: &[&ActivitySample]) -> Option<(&'static str, f32)> {
    if busy.is_empty() {
        return None;
    }
    [
        ClockEvents::SW_POWER_CAP,
        ClockEvents::SW_THERMAL,
        ClockEvents::HW_THERMAL,
        ClockEvents::HW_SLOWDOWN,
        ClockEvents::HW_POWER_BRAKE,
    ]
    .into_iter()
    .map(|bit| {
        let n = busy.iter().filter(|s| s.clock_events & bit != 0).count();
        (ClockEvents::name_of(bit), n as f32 / busy.len() as f32)
    })
    .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// A job spilling into system memory, as the readings show it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spill {
    /// VRAM used, share of the card, at its fullest.
    pub vram_share: f32,
    /// How far a process's shared GPU memory rose over the window, MiB.
    pub grew_mib: f32,
    /// What it holds at the end, MiB.
    pub shared_mib: f32,
    /// PCIe traffic (the busier direction), share of the link.
    pub pcie_share: Option<f32>,
}

/// VRAM full, a process's shared GPU memory rising, the bus busy: the CUDA sysmem fallback at
/// work. Pinned host memory (ComfyUI pins by default) also counts as shared memory, but it is
/// allocated once and stays flat, so it is not mistaken for a spill. Samples oldest first.
pub fn spill(samples: &[ActivitySample]) -> Option<Spill> {
    let fullest = samples
        .iter()
        .map(|s| s.vram_used_share)
        .filter(|v| !v.is_nan())
        .fold(f32::NAN, f32::max);
    if fullest.is_nan() || fullest < SPILL_VRAM_SHARE {
        return None;
    }
    // The largest rise from a low point to a later high point.
    let mut lowest = f32::NAN;
    let mut grew = 0.0f32;
    let mut last = f32::NAN;
    for s in samples.iter().filter(|s| !s.shared_mib.is_nan()) {
        lowest = lowest.min(s.shared_mib);
        grew = grew.max(s.shared_mib - lowest);
        last = s.shared_mib;
    }
    if grew < SPILL_GROWTH_MIB {
        return None;
    }
    let peak = |f: fn(&ActivitySample) -> f32| mean(samples.iter().map(f));
    let traffic = peak(|s| s.pcie_rx)
        .unwrap_or(0.0)
        .max(peak(|s| s.pcie_tx).unwrap_or(0.0));
    let link = peak(|s| s.pcie_max).filter(|m| *m > 0.0);
    let pcie_share = link.map(|m| traffic / m);
    let busy_bus = match pcie_share {
        Some(share) => share >= SPILL_PCIE_SHARE,
        None => traffic >= PCIE_MBS * SPILL_PCIE_SHARE / PCIE_SHARE,
    };
    busy_bus.then_some(Spill {
        vram_share: fullest,
        grew_mib: grew,
        shared_mib: last,
        pcie_share,
    })
}

/// Diagnoses one GPU from its samples (oldest first).
pub fn diagnose(samples: &[ActivitySample]) -> Diagnosis {
    let seconds = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b.t - a.t,
        _ => 0.0,
    };
    let reported: Vec<&ActivitySample> = samples.iter().filter(|s| !s.gpu_util.is_nan()).collect();
    let busy: Vec<&ActivitySample> = reported
        .iter()
        .copied()
        .filter(|s| s.gpu_util >= BUSY_UTIL)
        .collect();
    let busy_share = if reported.is_empty() {
        0.0
    } else {
        busy.len() as f32 / reported.len() as f32
    };
    let mean_util = mean(reported.iter().map(|s| s.gpu_util)).unwrap_or(0.0);
    let gaps = gaps(samples);
    let mut d = Diagnosis {
        seconds,
        samples: samples.len(),
        busy_share,
        mean_util,
        gaps,
        means: Means::default(),
        verdict: Verdict::NotEnoughData,
        evidence: Vec::new(),
        advice: Vec::new(),
    };
    if reported.len() < 5 {
        return d;
    }
    let peak_util = reported.iter().map(|s| s.gpu_util).fold(0.0, f32::max);
    let host_cpu = mean(samples.iter().map(|s| s.host_cpu));
    let encoder = mean(samples.iter().map(|s| s.encoder));
    let decoder = mean(samples.iter().map(|s| s.decoder));
    let rx = mean(samples.iter().map(|s| s.pcie_rx));
    let tx = mean(samples.iter().map(|s| s.pcie_tx));
    let link = mean(samples.iter().map(|s| s.pcie_max));
    let clock = mean(busy.iter().map(|s| s.sm_clock));
    let clock_max = mean(samples.iter().map(|s| s.sm_clock_max));
    let power = mean(busy.iter().map(|s| s.power));
    let power_limit = mean(samples.iter().map(|s| s.power_limit));
    // A clock event is a cost only when it holds the clock down: at 99 % of the maximum, a
    // power cap that is "active" (seen on an H100 with fp32 matmuls) changes nothing.
    let clock_share = clock.zip(clock_max).map(|(c, m)| c / m);
    // The clock against its maximum and the power against its limit: what a power cap or a
    // throttle rests on.
    let clock_and_power: Vec<String> = [
        clock.zip(clock_max).map(|(c, m)| {
            crate::t!(
                "diag-ev-clock-share",
                mhz = n(c),
                share = format!("{:.0}", c / m * 100.0),
                max = n(m)
            )
        }),
        power.zip(power_limit).map(|(p, l)| {
            crate::t!(
                "diag-ev-power",
                watts = format!("{p:.0}"),
                limit = format!("{l:.0}")
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    d.means = Means {
        pcie_rx_mbs: rx,
        pcie_tx_mbs: tx,
        encoder,
        decoder,
        sm_clock_mhz: clock,
        host_cpu_percent: host_cpu,
        power_w: power,
    };

    // NVML's utilisation is already the share of time a kernel ran.
    let util_line = crate::t!(
        "diag-ev-util",
        util = format!("{mean_util:.0}"),
        seconds = format!("{seconds:.0}"),
        peak = format!("{peak_util:.0}")
    );
    d.evidence.push(util_line);
    if gaps.count > 0 {
        let line = crate::t!(
            "diag-ev-gaps",
            count = gaps.count,
            mean = format!("{:.2}", gaps.mean_seconds),
            longest = format!("{:.2}", gaps.longest_seconds)
        );
        d.evidence.push(match gaps.period_seconds {
            Some(p) => crate::t!(
                "diag-ev-gaps-period",
                gaps = line,
                period = format!("{p:.2}")
            ),
            None => line,
        });
    }

    let pcie_heavy = |mbs: f32| match link {
        Some(max) => mbs >= max * PCIE_SHARE,
        None => mbs >= PCIE_MBS,
    };
    let pcie_peak = rx.unwrap_or(0.0).max(tx.unwrap_or(0.0));
    // The link at its capacity: the copies are the limit, whatever utilisation reads.
    let pcie_saturated = link.is_some_and(|max| max > 0.0 && pcie_peak >= max * PCIE_SATURATED);
    let throttled = throttling(&busy);
    let power_capped_at_full_load = mean_util >= GPU_BOUND_UTIL
        && throttled
            .is_some_and(|(reason, share)| reason == "power cap" && share >= THROTTLED_SHARE)
        && clock_share.is_none_or(|c| c < THROTTLED_CLOCK);

    // A busy host process beside a nearly idle GPU is the extreme of starvation (measured on
    // an H100: small kernels between 25 ms of Python read 1 %), not idleness.
    let host_busy = host_cpu.is_some_and(|c| c >= HOST_BUSY);
    if peak_util < BUSY_UTIL && mean_util < 5.0 && !host_busy && encoder.unwrap_or(0.0) < BUSY_UTIL
    {
        d.verdict = Verdict::Idle;
        d.advice.push(crate::t!("diag-advice-idle"));
    } else if let Some(s) = spill(samples) {
        d.verdict = Verdict::SystemMemoryFallback;
        d.evidence.push(crate::t!(
            "diag-ev-spill-full",
            share = format!("{:.0}", s.vram_share * 100.0)
        ));
        d.evidence.push(crate::t!(
            "diag-ev-spill-shared",
            grew = n(s.grew_mib),
            now = n(s.shared_mib)
        ));
        d.evidence.push(match s.pcie_share {
            Some(share) => crate::t!(
                "diag-ev-pcie-share",
                rx = n(rx.unwrap_or(0.0)),
                tx = n(tx.unwrap_or(0.0)),
                share = format!("{:.0}", share * 100.0),
                max = n(link.unwrap_or(0.0))
            ),
            None => crate::t!(
                "diag-ev-pcie",
                rx = n(rx.unwrap_or(0.0)),
                tx = n(tx.unwrap_or(0.0))
            ),
        });
        d.advice.push(crate::t!("diag-advice-spill-policy"));
        d.advice.push(crate::t!("diag-advice-spill-fit"));
    } else if pcie_saturated {
        d.verdict = Verdict::PcieBound;
        d.evidence.push(crate::t!(
            "diag-ev-pcie-capacity",
            rx = n(rx.unwrap_or(0.0)),
            tx = n(tx.unwrap_or(0.0)),
            share = format!("{:.0}", pcie_peak / link.unwrap_or(1.0) * 100.0),
            max = n(link.unwrap_or(0.0))
        ));
        d.evidence.push(crate::t!(
            "diag-ev-copies-busy",
            util = format!("{mean_util:.0}")
        ));
        d.advice.push(crate::t!("diag-advice-pcie-capacity"));
    } else if power_capped_at_full_load {
        d.verdict = Verdict::GpuBoundAtPowerLimit;
        if let Some((_, share)) = throttled {
            d.evidence.push(crate::t!(
                "diag-ev-power-cap-share",
                share = format!("{:.0}", share * 100.0)
            ));
        }
        d.evidence.extend(clock_and_power);
        d.advice.push(crate::t!("diag-advice-power-limit"));
    } else if let Some((reason, share)) = throttled
        .filter(|(_, s)| *s >= THROTTLED_SHARE)
        .filter(|_| clock_share.is_none_or(|c| c < THROTTLED_CLOCK))
    {
        d.verdict = Verdict::Throttled(reason);
        d.evidence.push(crate::t!(
            "diag-ev-clock-event",
            reason = crate::telemetry::ClockEvents::label(reason),
            share = format!("{:.0}", share * 100.0)
        ));
        d.evidence.extend(clock_and_power);
        d.advice.push(match reason {
            "power cap" => crate::t!("diag-advice-power-cap"),
            "thermal (driver)" | "thermal (hardware)" => crate::t!("diag-advice-thermal"),
            _ => crate::t!("diag-advice-hardware"),
        });
    } else if encoder.is_some_and(|e| e >= ENGINE_BOUND) && mean_util < 90.0 {
        d.verdict = Verdict::EncoderBound;
        d.evidence.push(crate::t!(
            "diag-ev-nvenc",
            engine = format!("{:.0}", encoder.unwrap_or(0.0)),
            util = format!("{mean_util:.0}")
        ));
        d.advice.push(crate::t!("diag-advice-encoder"));
    } else if decoder.is_some_and(|e| e >= ENGINE_BOUND) && mean_util < 90.0 {
        d.verdict = Verdict::DecoderBound;
        d.evidence.push(crate::t!(
            "diag-ev-nvdec",
            engine = format!("{:.0}", decoder.unwrap_or(0.0)),
            util = format!("{mean_util:.0}")
        ));
        d.advice.push(crate::t!("diag-advice-decoder"));
    } else if host_busy
        && tx.is_some_and(|t| t >= HOST_COPY_MBS)
        && tx >= rx
        && mean_util < GPU_BOUND_UTIL
    {
        // Out of the GPU, fast, while one host core is busy and the SMs wait: each copy into
        // pageable memory is staged by the driver through that core (a save or preview loop).
        d.verdict = Verdict::HostCopies;
        d.evidence.push(crate::t!(
            "diag-ev-host-copies",
            tx = n(tx.unwrap_or(0.0)),
            percent = format!("{:.0}", host_cpu.unwrap_or(0.0)),
            util = format!("{mean_util:.0}")
        ));
        d.advice.push(crate::t!("diag-advice-host-copies"));
    } else if pcie_heavy(pcie_peak) && mean_util < 80.0 {
        d.verdict = Verdict::PcieBound;
        d.evidence.push(match link {
            Some(max) => crate::t!(
                "diag-ev-pcie-share",
                rx = n(rx.unwrap_or(0.0)),
                tx = n(tx.unwrap_or(0.0)),
                share = format!("{:.0}", pcie_peak / max * 100.0),
                max = n(max)
            ),
            None => crate::t!(
                "diag-ev-pcie",
                rx = n(rx.unwrap_or(0.0)),
                tx = n(tx.unwrap_or(0.0))
            ),
        });
        d.evidence.push(crate::t!(
            "diag-ev-sms-idle",
            util = format!("{mean_util:.0}")
        ));
        d.advice.push(crate::t!("diag-advice-pcie"));
    } else if mean_util >= GPU_BOUND_UTIL {
        d.verdict = Verdict::GpuBound;
        if let (Some(c), Some(m)) = (clock, clock_max) {
            let note = match throttled.filter(|(_, s)| *s >= THROTTLED_SHARE) {
                Some((reason, _)) => crate::t!(
                    "diag-clock-holds",
                    reason = crate::telemetry::ClockEvents::label(reason)
                ),
                None => crate::t!("diag-not-throttled"),
            };
            d.evidence.push(crate::t!(
                "diag-ev-clock-of",
                mhz = n(c),
                max = n(m),
                note = note
            ));
        }
        d.advice.push(crate::t!("diag-advice-gpu-bound"));
    } else if mean_util < 70.0 && (host_busy || (gaps.count >= 3 && busy_share < 0.8)) {
        d.verdict = Verdict::CpuStarved;
        if let Some(c) = host_cpu {
            d.evidence
                .push(crate::t!("diag-ev-host-used", percent = format!("{c:.0}")));
        }
        d.advice.push(crate::t!("diag-advice-starved"));
    } else {
        d.verdict = Verdict::PartlyBusy;
        if let Some(c) = host_cpu {
            d.evidence.push(crate::t!(
                "diag-ev-host-busiest",
                percent = format!("{c:.0}")
            ));
        }
        d.advice.push(crate::t!("diag-advice-partly"));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, util: f32) -> ActivitySample {
        ActivitySample {
            t,
            gpu_util: util,
            sm_clock: 1_980.0,
            sm_clock_max: 1_980.0,
            clock_events: 0,
            pcie_rx: 100.0,
            pcie_tx: 50.0,
            pcie_max: 63_000.0,
            encoder: 0.0,
            decoder: 0.0,
            host_cpu: 30.0,
            power: 300.0,
            power_limit: 700.0,
            vram_used_share: 0.5,
            shared_mib: f32::NAN,
        }
    }

    fn run(n: usize, f: impl Fn(usize, &mut ActivitySample)) -> Diagnosis {
        let samples: Vec<ActivitySample> = (0..n)
            .map(|i| {
                let mut s = sample(i as f64 * 0.1, 99.0);
                f(i, &mut s);
                s
            })
            .collect();
        diagnose(&samples)
    }

    #[test]
    fn copies_into_pageable_memory_every_step_are_transfer_bound_not_partly_busy() {
        // The reading (an H100 on PCIe 5: 63 GB/s): 15 GB/s out of the GPU, kernels
        // 73 % of the time, one host core at 100 %.
        let d = run(120, |i, s| {
            s.gpu_util = if i % 4 == 0 { 40.0 } else { 84.0 };
            s.pcie_tx = 15_000.0;
            s.pcie_rx = 300.0;
            s.host_cpu = 100.0;
        });
        assert_eq!(d.verdict, Verdict::HostCopies, "{:?}", d.evidence);
        assert!(d.advice[0].contains("pin_memory=True"), "{:?}", d.advice);
        // Pinned: the DMA leaves the host core free, and the verdict is not this one.
        let pinned = run(120, |i, s| {
            s.gpu_util = if i % 4 == 0 { 40.0 } else { 84.0 };
            s.pcie_tx = 15_000.0;
            s.host_cpu = 12.0;
        });
        assert_ne!(pinned.verdict, Verdict::HostCopies);
    }

    #[test]
    fn big_matmuls_back_to_back_are_gpu_bound() {
        let d = run(100, |_, _| {});
        assert_eq!(d.verdict, Verdict::GpuBound);
        assert_eq!(d.busy_share, 1.0);
        assert!(
            d.evidence[0].starts_with("kernels ran 99 % of the time over 10 s"),
            "{:?}",
            d.evidence
        );
    }

    #[test]
    fn bursts_with_gaps_and_a_full_core_are_cpu_starved() {
        let d = run(100, |i, s| {
            s.gpu_util = if i % 8 < 3 { 80.0 } else { 0.0 };
            s.host_cpu = 99.0;
        });
        assert_eq!(d.verdict, Verdict::CpuStarved);
        assert!(d.gaps.count >= 10, "{:?}", d.gaps);
        assert!((d.gaps.period_seconds.unwrap() - 0.8).abs() < 0.05);
        assert!(d.evidence.iter().any(|e| e.contains("99 % of a CPU core")));
    }

    #[test]
    fn smoothed_low_utilisation_with_a_busy_host_thread_is_starved_too() {
        // NVML averages utilisation over up to a second: bursts may read as a steady 35 %.
        let d = run(100, |_, s| {
            s.gpu_util = 35.0;
            s.host_cpu = 100.0;
        });
        assert_eq!(d.verdict, Verdict::CpuStarved);
    }

    #[test]
    fn full_load_at_the_power_cap_is_gpu_bound_at_its_power_limit() {
        // The H200 finding: bf16 matmuls back to back at the power cap were "throttled" —
        // true, but the answer to "why is it slow?" is that the GPU is the limit.
        let d = run(100, |_, s| {
            s.clock_events = ClockEvents::SW_POWER_CAP;
            s.sm_clock = 1_500.0;
            s.power = 700.0;
        });
        assert_eq!(d.verdict, Verdict::GpuBoundAtPowerLimit);
        assert_eq!(d.verdict.id(), "gpu_bound_at_power_limit");
        assert!(
            d.evidence
                .iter()
                .any(|e| e.contains("76 % of its 1,980 MHz"))
        );
        assert!(d.evidence.iter().any(|e| e.contains("limit 700 W")));
    }

    #[test]
    fn a_power_cap_in_most_busy_readings_is_throttling_named_with_its_numbers() {
        let d = run(100, |_, s| {
            s.gpu_util = 60.0;
            s.clock_events = ClockEvents::SW_POWER_CAP;
            s.sm_clock = 1_500.0;
            s.power = 700.0;
        });
        assert_eq!(d.verdict, Verdict::Throttled("power cap"));
        assert!(
            d.evidence
                .iter()
                .any(|e| e.contains("76 % of its 1,980 MHz")),
            "{:?}",
            d.evidence
        );
        assert!(d.evidence.iter().any(|e| e.contains("limit 700 W")));
    }

    #[test]
    fn a_power_cap_that_leaves_the_clock_at_its_maximum_is_not_throttling() {
        // The H100 proof, fp32 matmuls: "power cap" active, SM clock 1,956 of 1,980 MHz.
        let d = run(100, |_, s| {
            s.clock_events = ClockEvents::SW_POWER_CAP;
            s.sm_clock = 1_956.0;
        });
        assert_eq!(d.verdict, Verdict::GpuBound);
        assert!(
            d.evidence
                .iter()
                .any(|e| e.contains("power cap reached, but the clock holds"))
        );
    }

    #[test]
    fn heavy_host_to_device_traffic_with_idle_sms_is_pcie_bound() {
        let d = run(100, |_, s| {
            s.gpu_util = 20.0;
            s.pcie_rx = 20_000.0;
        });
        assert_eq!(d.verdict, Verdict::PcieBound);
        assert!(
            d.evidence.iter().any(|e| e.contains("32 % of the link")),
            "{:?}",
            d.evidence
        );
        // Unknown link: an absolute threshold.
        let d = run(100, |_, s| {
            s.gpu_util = 20.0;
            s.pcie_rx = 7_000.0;
            s.pcie_max = f32::NAN;
        });
        assert_eq!(d.verdict, Verdict::PcieBound);
    }

    #[test]
    fn a_link_at_its_capacity_is_pcie_bound_whatever_utilisation_reads() {
        // The H200 finding: a pinned host-to-device copy at 60.6 GB/s of a 63.0 GB/s Gen5 x16
        // link, utilisation reading 100 % (NVML counts copy time as busy), was "GPU-bound".
        let d = run(100, |_, s| {
            s.gpu_util = 100.0;
            s.pcie_rx = 60_600.0;
            s.pcie_max = 63_016.0;
        });
        assert_eq!(d.verdict, Verdict::PcieBound);
        assert!(
            d.evidence.iter().any(|e| e.contains("96 % of the link")),
            "{:?}",
            d.evidence
        );
        assert!(
            d.evidence
                .iter()
                .any(|e| e.contains("counts the time copies run as busy"))
        );
    }

    #[test]
    fn a_saturated_encoder_is_named() {
        let d = run(100, |_, s| {
            s.gpu_util = 18.0;
            s.encoder = 96.0;
        });
        assert_eq!(d.verdict, Verdict::EncoderBound);
        let d = run(100, |_, s| {
            s.gpu_util = 18.0;
            s.decoder = 90.0;
        });
        assert_eq!(d.verdict, Verdict::DecoderBound);
    }

    #[test]
    fn a_nearly_idle_gpu_beside_a_full_core_is_starved_not_idle() {
        // The H100 proof's numbers: 1 % utilisation, the Python thread at 100 %.
        let d = run(100, |_, s| {
            s.gpu_util = 1.0;
            s.host_cpu = 100.0;
        });
        assert_eq!(d.verdict, Verdict::CpuStarved);
    }

    fn spilling(i: usize, s: &mut ActivitySample) {
        s.vram_used_share = 0.99;
        s.shared_mib = i as f32 * 30.0; // 3 GiB over the window
        s.pcie_rx = 12_800.0;
        s.pcie_max = 31_508.0;
    }

    #[test]
    fn a_job_spilling_into_system_memory_is_told_from_pinned_memory_at_rest() {
        let d = run(100, spilling);
        assert_eq!(d.verdict, Verdict::SystemMemoryFallback);
        assert_eq!(d.verdict.id(), "system_memory_fallback");
        assert!(
            d.evidence.iter().any(|e| e.contains("rose by 2,970 MiB")),
            "{d:?}"
        );
        assert!(d.advice[0].contains("Prefer No Sysmem Fallback"), "{d:?}");
        // Pinned host memory: 4 GiB that never moves, the same traffic: not a spill.
        let pinned = run(100, |i, s| {
            spilling(i, s);
            s.shared_mib = 4_096.0;
        });
        assert_ne!(pinned.verdict, Verdict::SystemMemoryFallback);
        // Shared memory rising while VRAM has room is the app's own choice, not the fallback.
        let room = run(100, |i, s| {
            spilling(i, s);
            s.vram_used_share = 0.8;
        });
        assert_ne!(room.verdict, Verdict::SystemMemoryFallback);
        // Rising with a quiet bus is not a job pulling its data over it.
        let quiet = run(100, |i, s| {
            spilling(i, s);
            s.pcie_rx = 100.0;
        });
        assert_ne!(quiet.verdict, Verdict::SystemMemoryFallback);
        // No shared memory reported (Linux, NVML only): never a spill.
        let linux = run(100, |i, s| {
            spilling(i, s);
            s.shared_mib = f32::NAN;
        });
        assert_ne!(linux.verdict, Verdict::SystemMemoryFallback);
    }

    #[test]
    fn idle_and_too_few_readings_are_said_as_such() {
        assert_eq!(run(100, |_, s| s.gpu_util = 0.0).verdict, Verdict::Idle);
        assert_eq!(run(3, |_, _| {}).verdict, Verdict::NotEnoughData);
        assert_eq!(diagnose(&[]).verdict, Verdict::NotEnoughData);
        // Unreported utilisation is not "idle".
        assert_eq!(
            run(100, |_, s| s.gpu_util = f32::NAN).verdict,
            Verdict::NotEnoughData
        );
    }
}
