//! Simulated GPUs for demo mode and tests, replaying workloads measured in the seed articles.
//!
//! GPU 0 replays Wan2.2 I2V A14B on a 48 GB card: load ~18,000 MiB, second expert
//! ~24,000 → 36,000 MiB, peak ~39,500 MiB, ~2,000 MiB after release (the "double peak").
//! GPU 1 replays FaceFusion FP16 on a 24 GB RTX 3090: ~7.8 GB peak, 65–85 % utilisation.

use super::{
    GpuSample, GpuSource, MemoryReading, ProcessInfo, ProcessKind, SourceError, SourceKind,
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
        }
    }

    /// FaceFusion FP16 batches on a 24 GB RTX 3090, from seed 001.
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
        }
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
    /// The demo: an I2V double peak on GPU 0 and FaceFusion on GPU 1. `reason` says why.
    pub fn demo(reason: &str) -> Self {
        Self::new(
            vec![
                Scenario::wan22_i2v_double_peak(),
                Scenario::facefusion_fp16(),
            ],
            reason,
        )
    }

    /// `count` demo GPUs, the two scenarios alternating (for measuring many-GPU machines).
    pub fn demo_many(reason: &str, count: usize) -> Self {
        let scenarios = (0..count.max(1))
            .map(|i| {
                if i % 2 == 0 {
                    Scenario::wan22_i2v_double_peak()
                } else {
                    Scenario::facefusion_fp16()
                }
            })
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
            let limit = gpu.scenario.power_limit;
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
                power: Some(Watts(25.0 + (limit - 25.0) * (util as f32 / 100.0) * 0.9)),
                power_limit: Some(Watts(limit)),
                sm_clock: Some(MegaHertz(if util > 10.0 { 2_610 } else { 210 })),
                memory_clock: Some(MegaHertz(if util > 10.0 { 14_001 } else { 405 })),
                fan: Some(Percent((30.0 + util * 0.4) as f32)),
                processes: vec![ProcessInfo {
                    pid: 4_242 + index as u32,
                    name: gpu.scenario.process_name.to_string(),
                    used: Some(process_used),
                    kind: ProcessKind::Compute,
                }],
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
