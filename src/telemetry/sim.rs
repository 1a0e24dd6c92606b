//! Simulated GPUs for demo mode and tests, replaying workloads measured in the seed articles.
//!
//! GPU 0 replays Wan2.2 I2V A14B on a 48 GB card: load ~18,000 MiB, second expert
//! ~24,000 → 36,000 MiB, peak ~39,500 MiB, ~2,000 MiB after release (the "double peak").
//! GPU 1 replays FaceFusion FP16 on a 24 GB RTX 3090: ~7.8 GB peak, 65–85 % utilisation.

use super::{
    Activity, ClockEvents, GpuSample, GpuSource, MemoryReading, ProcessInfo, ProcessKind,
    SourceError, SourceKind,
};
use crate::units::{Bytes, Celsius, MegaHertz, Percent, Watts};
use std::time::{Duration, Instant};

/// A point of a scenario: at `t` seconds into the cycle, VRAM and utilisation are these.
#[derive(Clone, Copy, Debug)]
pub struct Keyframe {
    /// Seconds from the start of the cycle.
    pub t: f64,
    /// VRAM used, MiB.
    pub used_mib: f64,
    /// GPU utilisation, percent.
    pub util: f64,
}

/// How a workload uses the GPU beyond its VRAM curve: each is a "busy but slow?" case the
/// diagnosis must tell apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pattern {
    /// Kernels back to back: utilisation follows the keyframes (the GPU is the limit).
    #[default]
    Steady,
    /// Batch-1 work fed by one busy CPU thread: the GPU runs in short bursts with idle gaps
    /// while the host process uses a whole core.
    CpuStarved,
    /// Weights streamed over PCIe every step (ComfyUI's low-VRAM offload): heavy host-to-device
    /// traffic, little SM time.
    PcieOffload,
    /// Held at the power limit: the clock-event reason "power cap", the SM clock below its
    /// maximum.
    PowerCapped,
    /// A video export: NVENC saturated, the SMs lightly used.
    EncoderBound,
    /// Windows' CUDA sysmem fallback: once the job fills the card, its further allocations
    /// land in shared system memory (the process's shared GPU memory rises and wavers as
    /// buffers come and go) and every step pulls them over PCIe: full utilisation, low power.
    SysmemFallback,
}

/// A repeating workload on one simulated GPU.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Product name shown in the UI; always says it is simulated.
    pub gpu_name: &'static str,
    /// Installed memory, MiB.
    pub total_mib: u64,
    /// Power limit, watts.
    pub power_limit: f32,
    /// The process that "holds" the memory.
    pub process_name: &'static str,
    /// Memory the desktop holds even when idle, MiB.
    pub baseline_mib: f64,
    /// Keyframes of one cycle; VRAM and utilisation are interpolated linearly between them.
    pub keyframes: Vec<Keyframe>,
    /// How the work uses the GPU.
    pub pattern: Pattern,
    /// The link's maximum per direction, MB/s.
    pub pcie_max_mbs: f32,
    /// The highest SM clock, MHz.
    pub sm_clock_max: u32,
}

impl Scenario {
    /// Wan2.2 I2V A14B (two 14B experts) on a 48 GB card, from the Wan article's curve (the
    /// article names its card "RTX 5090", which has 32 GB: the card is named by its memory).
    pub fn wan22_i2v_double_peak() -> Self {
        let k = |t, used_mib, util| Keyframe { t, used_mib, util };
        Scenario {
            gpu_name: "Simulated 48 GB GPU",
            total_mib: 49_152,
            power_limit: 575.0,
            process_name: "python3 wan_i2v_webui.py",
            baseline_mib: 450.0,
            keyframes: vec![
                k(0.0, 2_000.0, 2.0),
                k(8.0, 2_000.0, 2.0),
                k(16.0, 18_000.0, 20.0), // high-noise expert loads
                k(20.0, 18_500.0, 96.0),
                k(50.0, 24_000.0, 97.0), // sampling with the first expert
                k(58.0, 36_000.0, 35.0), // low-noise expert loads: second rise
                k(62.0, 36_500.0, 98.0),
                k(95.0, 39_500.0, 98.0), // peak during VAE decode
                k(100.0, 39_500.0, 80.0),
                k(102.0, 2_000.0, 5.0), // models released
                k(120.0, 2_000.0, 1.0),
            ],
            pattern: Pattern::Steady,
            pcie_max_mbs: 63_016.0,
            sm_clock_max: 2_610,
        }
    }

    /// FaceFusion FP16 batches on a 24 GB RTX 3090, from the FaceFusion article.
    pub fn facefusion_fp16() -> Self {
        let k = |t, used_mib, util| Keyframe { t, used_mib, util };
        Scenario {
            gpu_name: "Simulated RTX 3090 24 GB",
            total_mib: 24_576,
            power_limit: 350.0,
            process_name: "python3 facefusion.py",
            baseline_mib: 300.0,
            keyframes: vec![
                k(0.0, 1_200.0, 1.0),
                k(6.0, 1_200.0, 1.0),
                k(10.0, 5_600.0, 40.0),
                k(14.0, 7_400.0, 78.0),
                k(30.0, 7_800.0, 85.0),
                k(34.0, 7_600.0, 65.0),
                k(50.0, 7_800.0, 82.0),
                k(60.0, 7_700.0, 70.0),
                k(64.0, 1_200.0, 2.0),
                k(75.0, 1_200.0, 1.0),
            ],
            pattern: Pattern::Steady,
            pcie_max_mbs: 31_508.0,
            sm_clock_max: 2_100,
        }
    }

    /// The FaceFusion article's question: batch 1 with one execution thread. The GPU idles
    /// between frames while the host decodes and preprocesses on one core.
    pub fn facefusion_cpu_starved() -> Self {
        Scenario {
            gpu_name: "Simulated RTX 3090 24 GB (batch 1)",
            total_mib: 24_576,
            power_limit: 350.0,
            process_name: "python3 facefusion.py",
            baseline_mib: 300.0,
            keyframes: flat(5_900.0, 85.0),
            pattern: Pattern::CpuStarved,
            pcie_max_mbs: 31_508.0,
            sm_clock_max: 2_100,
        }
    }

    /// ComfyUI streaming a model that does not fit (`--lowvram`) over a PCIe 4.0 x8 link.
    pub fn comfyui_lowvram_offload() -> Self {
        Scenario {
            gpu_name: "Simulated RTX 4060 8 GB (low-VRAM offload)",
            total_mib: 8_188,
            power_limit: 115.0,
            process_name: "python3 main.py",
            baseline_mib: 250.0,
            keyframes: flat(7_300.0, 22.0),
            pattern: Pattern::PcieOffload,
            pcie_max_mbs: 15_754.0,
            sm_clock_max: 2_460,
        }
    }

    /// A 4090 whose power limit was lowered to 300 W, running flat out.
    pub fn power_capped() -> Self {
        Scenario {
            gpu_name: "Simulated RTX 4090 24 GB (power-limited)",
            total_mib: 24_564,
            power_limit: 300.0,
            process_name: "python3 main.py",
            baseline_mib: 400.0,
            keyframes: flat(14_000.0, 99.0),
            pattern: Pattern::PowerCapped,
            pcie_max_mbs: 31_508.0,
            sm_clock_max: 2_790,
        }
    }

    /// A finished video being encoded with NVENC.
    pub fn nvenc_export() -> Self {
        Scenario {
            gpu_name: "Simulated RTX 4070 12 GB (video export)",
            total_mib: 12_282,
            power_limit: 200.0,
            process_name: "ffmpeg",
            baseline_mib: 300.0,
            keyframes: flat(900.0, 18.0),
            pattern: Pattern::EncoderBound,
            pcie_max_mbs: 31_508.0,
            sm_clock_max: 2_475,
        }
    }

    /// A Wan 2.1 14B video at 720p on a 24 GB RTX 4090 under Windows with the driver's
    /// default sysmem fallback: the card fills and the job spills instead of failing.
    pub fn windows_sysmem_fallback() -> Self {
        let k = |t, used_mib, util| Keyframe { t, used_mib, util };
        Scenario {
            gpu_name: "Simulated RTX 4090 · Windows",
            total_mib: 24_564,
            power_limit: 450.0,
            process_name: "python.exe ComfyUI\\main.py",
            baseline_mib: 350.0,
            // The cycle opens on a full card (the demo shows the spill at once).
            keyframes: vec![
                k(0.0, 23_900.0, 99.0), // sampling: slow, data pulled over the bus
                k(70.0, 23_950.0, 99.0),
                k(74.0, 1_500.0, 2.0), // done, released
                k(92.0, 1_500.0, 1.0),
                k(100.0, 23_900.0, 60.0), // the next job loads and fills the card
            ],
            pattern: Pattern::SysmemFallback,
            pcie_max_mbs: 31_508.0,
            sm_clock_max: 2_520,
        }
    }

    /// Every scenario, one per "busy but slow?" verdict, in demo order.
    pub fn all() -> Vec<Scenario> {
        vec![
            Scenario::wan22_i2v_double_peak(),
            Scenario::facefusion_fp16(),
            Scenario::facefusion_cpu_starved(),
            Scenario::comfyui_lowvram_offload(),
            Scenario::power_capped(),
            Scenario::nvenc_export(),
            Scenario::windows_sysmem_fallback(),
        ]
    }

    /// Length of one cycle in seconds.
    pub fn cycle_seconds(&self) -> f64 {
        self.keyframes.last().map(|k| k.t).unwrap_or(1.0).max(1.0)
    }

    /// VRAM (MiB) and utilisation (%) at `t` seconds, before noise.
    pub fn at(&self, t: f64) -> (f64, f64) {
        let t = t.rem_euclid(self.cycle_seconds());
        let frames = &self.keyframes;
        let next = frames
            .iter()
            .position(|k| k.t > t)
            .unwrap_or(frames.len() - 1);
        if next == 0 {
            return (frames[0].used_mib, frames[0].util);
        }
        let (a, b) = (frames[next - 1], frames[next]);
        let span = (b.t - a.t).max(f64::EPSILON);
        let f = ((t - a.t) / span).clamp(0.0, 1.0);
        (
            a.used_mib + (b.used_mib - a.used_mib) * f,
            a.util + (b.util - a.util) * f,
        )
    }
}

/// A minute-long cycle at one VRAM level and utilisation (the patterns supply the rhythm).
fn flat(used_mib: f64, util: f64) -> Vec<Keyframe> {
    let k = |t| Keyframe { t, used_mib, util };
    vec![k(0.0), k(60.0)]
}

/// What a pattern makes of the keyframes' utilisation `util` at `t` seconds.
struct Shape {
    util: f64,
    /// Shared GPU memory (system memory) of the process, MiB.
    shared_mib: f64,
    host_cpu: f32,
    pcie_rx: f32,
    pcie_tx: f32,
    encoder: f32,
    decoder: f32,
}

fn shape(pattern: Pattern, t: f64, util: f64, full: bool) -> Shape {
    let busy = util > 10.0;
    let base = Shape {
        util,
        shared_mib: 0.0,
        host_cpu: if busy { 35.0 } else { 2.0 },
        pcie_rx: if busy { 60.0 } else { 2.0 },
        pcie_tx: if busy { 20.0 } else { 1.0 },
        encoder: 0.0,
        decoder: 0.0,
    };
    match pattern {
        Pattern::Steady | Pattern::PowerCapped => base,
        Pattern::CpuStarved => {
            // 0.3 s of kernels in every 0.8 s: a frame, then the host prepares the next one.
            let in_burst = t.rem_euclid(0.8) < 0.3;
            Shape {
                util: if in_burst { util } else { 0.0 },
                host_cpu: 99.0,
                ..base
            }
        }
        Pattern::PcieOffload => Shape {
            pcie_rx: 11_200.0,
            pcie_tx: 450.0,
            host_cpu: 60.0,
            ..base
        },
        Pattern::SysmemFallback => Shape {
            // Up to 5.5 GiB over the first 20 s of the cycle, then wavering by ±300 MiB.
            shared_mib: if full {
                let since = t.rem_euclid(100.0);
                (since / 20.0).min(1.0) * 5_632.0
                    + (since * 0.7).sin() * 300.0 * (since / 20.0).min(1.0)
            } else {
                0.0
            },
            pcie_rx: if busy { 12_800.0 } else { 2.0 },
            pcie_tx: if busy { 1_900.0 } else { 1.0 },
            host_cpu: if busy { 45.0 } else { 2.0 },
            ..base
        },
        Pattern::EncoderBound => Shape {
            encoder: 96.0,
            decoder: 38.0,
            host_cpu: 45.0,
            ..base
        },
    }
}

/// One simulated GPU with the state that makes it look physical (temperature lags load).
#[derive(Clone, Debug)]
struct SimulatedGpu {
    scenario: Scenario,
    temperature: f64,
    last_t: Option<f64>,
}

/// Simulated GPUs read on a clock (real time in demo mode, any time in tests).
pub struct SimulatedGpus {
    gpus: Vec<SimulatedGpu>,
    reason: String,
    started: Instant,
    rng: u64,
}

impl SimulatedGpus {
    /// The demo: an I2V double peak on GPU 0, FaceFusion on GPU 1 and, on GPU 2, a Windows
    /// card spilling into system memory. `reason` says why.
    pub fn demo(reason: &str) -> Self {
        Self::new(
            vec![
                Scenario::wan22_i2v_double_peak(),
                Scenario::facefusion_fp16(),
                Scenario::windows_sysmem_fallback(),
            ],
            reason,
        )
    }

    /// `count` demo GPUs cycling through every scenario ([`Scenario::all`]): 6 GPUs show
    /// each "busy but slow?" case once.
    pub fn demo_many(reason: &str, count: usize) -> Self {
        let all = Scenario::all();
        let scenarios = (0..count.max(1))
            .map(|i| all[i % all.len()].clone())
            .collect();
        Self::new(scenarios, reason)
    }

    /// Any set of scenarios, one GPU each.
    pub fn new(scenarios: Vec<Scenario>, reason: &str) -> Self {
        SimulatedGpus {
            gpus: scenarios
                .into_iter()
                .map(|scenario| SimulatedGpu {
                    scenario,
                    temperature: 34.0,
                    last_t: None,
                })
                .collect(),
            reason: reason.to_string(),
            started: Instant::now(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Reads every GPU as it is `elapsed` into the simulation. Deterministic for a given
    /// sequence of calls, so tests can assert on values.
    pub fn sample_at(&mut self, elapsed: Duration) -> Vec<GpuSample> {
        let t = elapsed.as_secs_f64();
        let mut out = Vec::with_capacity(self.gpus.len());
        for index in 0..self.gpus.len() {
            let noise_mib = self.noise() * 60.0;
            let noise_util = self.noise() * 2.0;
            let gpu = &mut self.gpus[index];
            let (load_mib, util) = gpu.scenario.at(t);
            let util = (util + if util > 10.0 { noise_util } else { 0.0 }).clamp(0.0, 100.0);
            let load_mib = (load_mib + if load_mib > 2_500.0 { noise_mib } else { 0.0 }).max(0.0);
            // Temperature moves toward 32 + 0.5·util °C with a ~20 s time constant.
            let target = 32.0 + 0.5 * util;
            let dt = gpu.last_t.map(|last| (t - last).max(0.0)).unwrap_or(60.0);
            gpu.temperature += (target - gpu.temperature) * (1.0 - (-dt / 20.0).exp());
            gpu.last_t = Some(t);

            let total = Bytes::from_mib(gpu.scenario.total_mib);
            let process_used = Bytes((load_mib * crate::units::MIB as f64) as u64);
            let used = Bytes(
                process_used.0 + (gpu.scenario.baseline_mib * crate::units::MIB as f64) as u64,
            )
            .min(total);
            let full = used.0 as f64 >= total.0 as f64 * 0.95;
            let shape = shape(gpu.scenario.pattern, t, util, full);
            let shared = (gpu.scenario.pattern == Pattern::SysmemFallback)
                .then(|| Bytes((shape.shared_mib.max(0.0) * crate::units::MIB as f64) as u64));
            let util = shape.util;
            let limit = gpu.scenario.power_limit;
            let busy = util > 10.0;
            let clock_max = gpu.scenario.sm_clock_max;
            let sm_clock = match (gpu.scenario.pattern, busy) {
                (Pattern::PowerCapped, _) => (clock_max as f64 * 0.76) as u32,
                (_, true) => clock_max,
                (_, false) => 210,
            };
            let power = match gpu.scenario.pattern {
                Pattern::PowerCapped => limit,
                // The SMs mostly wait for the bus: "100 %" at a third of the power.
                Pattern::SysmemFallback => 25.0 + (limit - 25.0) * (util as f32 / 100.0) * 0.3,
                _ => 25.0 + (limit - 25.0) * (util as f32 / 100.0) * 0.9,
            };
            let mut events = if busy { 0 } else { ClockEvents::IDLE };
            if gpu.scenario.pattern == Pattern::PowerCapped {
                events |= ClockEvents::SW_POWER_CAP;
            }
            out.push(GpuSample {
                index: index as u32,
                name: gpu.scenario.gpu_name.to_string(),
                memory: MemoryReading {
                    used,
                    total,
                    free: total.saturating_sub(used),
                    reserved: Bytes::from_mib(480),
                },
                gpu_util: Some(Percent(util as f32)),
                memory_util: Some(Percent((util * 0.45) as f32)),
                temperature: Some(Celsius(gpu.temperature as f32)),
                power: Some(Watts(power)),
                power_limit: Some(Watts(limit)),
                sm_clock: Some(MegaHertz(sm_clock)),
                memory_clock: Some(MegaHertz(if busy { 14_001 } else { 405 })),
                fan: Some(Percent((30.0 + util * 0.4) as f32)),
                processes: vec![ProcessInfo {
                    pid: 4_242 + index as u32,
                    name: gpu.scenario.process_name.to_string(),
                    used: Some(process_used),
                    shared,
                    kind: ProcessKind::Compute,
                    sm_util: Some(Percent(util as f32)),
                    cpu_percent: Some(shape.host_cpu),
                    host_rss: Some(Bytes::from_mib(6_144)),
                    visible: true,
                }],
                activity: Activity {
                    encoder_util: Some(Percent(shape.encoder)),
                    decoder_util: Some(Percent(shape.decoder)),
                    pcie_rx_mbs: Some(shape.pcie_rx),
                    pcie_tx_mbs: Some(shape.pcie_tx),
                    pcie_max_mbs: Some(gpu.scenario.pcie_max_mbs),
                    clock_events: Some(ClockEvents(events)),
                    sm_clock_max: Some(MegaHertz(clock_max)),
                },
                asleep: false,
                // Shaped like NVML's, marked as made up.
                uuid: Some(format!("GPU-00000000-0000-4000-8000-demo0000000{index}")),
                pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x10 + index)),
                remote: None,
            });
        }
        out
    }

    /// Uniform noise in −1..1 from a xorshift generator (no dependency, reproducible).
    fn noise(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

impl GpuSource for SimulatedGpus {
    fn kind(&self) -> SourceKind {
        SourceKind::Simulated {
            reason: self.reason.clone(),
        }
    }

    fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError> {
        Ok(self.sample_at(self.started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used_mib_at(sim: &mut SimulatedGpus, t: f64) -> f64 {
        sim.sample_at(Duration::from_secs_f64(t))[0]
            .memory
            .used
            .mib()
    }

    #[test]
    fn i2v_scenario_replays_the_double_peak() {
        let mut sim = SimulatedGpus::demo("test");
        let idle = used_mib_at(&mut sim, 4.0);
        let first_model = used_mib_at(&mut sim, 30.0);
        let second_model = used_mib_at(&mut sim, 60.0);
        let peak = used_mib_at(&mut sim, 96.0);
        let released = used_mib_at(&mut sim, 110.0);
        assert!((2_000.0..2_600.0).contains(&idle), "idle {idle}");
        assert!((18_000.0..24_500.0).contains(&first_model), "{first_model}");
        assert!(
            (35_000.0..37_500.0).contains(&second_model),
            "{second_model}"
        );
        assert!((39_000.0..40_500.0).contains(&peak), "peak {peak}");
        assert!(released < 3_000.0, "released {released}");
    }

    #[test]
    fn scenario_repeats_every_cycle() {
        let s = Scenario::wan22_i2v_double_peak();
        let c = s.cycle_seconds();
        assert_eq!(s.at(30.0), s.at(30.0 + 3.0 * c));
    }

    #[test]
    fn memory_never_exceeds_total_and_free_adds_up() {
        let mut sim = SimulatedGpus::demo("test");
        for step in 0..600 {
            for g in sim.sample_at(Duration::from_millis(step * 500)) {
                assert!(g.memory.used <= g.memory.total);
                assert_eq!(g.memory.used.0 + g.memory.free.0, g.memory.total.0);
            }
        }
    }

    #[test]
    fn demo_source_says_it_is_simulated_and_why() {
        let sim = SimulatedGpus::demo("NVML not available: no driver");
        assert_eq!(
            sim.kind(),
            SourceKind::Simulated {
                reason: "NVML not available: no driver".into()
            }
        );
    }
}
