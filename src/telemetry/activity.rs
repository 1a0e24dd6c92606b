//! The recent past at full rate, for "why is my GPU busy but slow?": per GPU, a ring of compact
//! samples (utilisation, SM clock, clock events, PCIe, video engines, the busiest host process)
//! covering the last ten minutes; and per process, a ring of its VRAM.

use super::{GpuSample, Snapshot};
use std::collections::{HashMap, VecDeque};

/// Seconds of activity kept.
pub const KEEP_SECONDS: f64 = 600.0;
/// Most samples kept per GPU (ten minutes at the fastest interval, 100 ms).
pub const CAPACITY: usize = 6_000;
/// Most processes whose VRAM is kept; the one seen longest ago makes room.
pub const MAX_PROCESSES: usize = 64;
/// Most VRAM points kept per process (ten minutes at one a second).
pub const PROCESS_POINTS: usize = 600;

/// One GPU at one moment, as the diagnosis reads it. `NaN` is "not reported".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivitySample {
    /// UNIX seconds.
    pub t: f64,
    /// GPU (kernel) utilisation, %.
    pub gpu_util: f32,
    /// SM clock, MHz.
    pub sm_clock: f32,
    /// The highest SM clock, MHz.
    pub sm_clock_max: f32,
    /// NVML clock-event bits (0 when unknown).
    pub clock_events: u64,
    /// PCIe into / out of the GPU, MB/s.
    pub pcie_rx: f32,
    /// PCIe out of the GPU, MB/s.
    pub pcie_tx: f32,
    /// The link's maximum per direction, MB/s.
    pub pcie_max: f32,
    /// NVENC / NVDEC utilisation, %.
    pub encoder: f32,
    /// NVDEC utilisation, %.
    pub decoder: f32,
    /// The highest CPU use among the GPU's processes, % of one core.
    pub host_cpu: f32,
    /// Power draw and limit, W.
    pub power: f32,
    /// Power limit, W.
    pub power_limit: f32,
    /// VRAM used, share of the card (0..1).
    pub vram_used_share: f32,
    /// The most system memory any of its processes holds through the GPU (Windows' shared GPU
    /// memory), MiB.
    pub shared_mib: f32,
}

impl ActivitySample {
    /// The compact form of a reading taken at `t`.
    pub fn from_gpu(t: f64, g: &GpuSample) -> Self {
        let nan = f32::NAN;
        let a = &g.activity;
        ActivitySample {
            t,
            gpu_util: g.gpu_util.map_or(nan, |p| p.0),
            sm_clock: g.sm_clock.map_or(nan, |c| c.0 as f32),
            sm_clock_max: a.sm_clock_max.map_or(nan, |c| c.0 as f32),
            clock_events: a.clock_events.map_or(0, |e| e.0),
            pcie_rx: a.pcie_rx_mbs.unwrap_or(nan),
            pcie_tx: a.pcie_tx_mbs.unwrap_or(nan),
            pcie_max: a.pcie_max_mbs.unwrap_or(nan),
            encoder: a.encoder_util.map_or(nan, |p| p.0),
            decoder: a.decoder_util.map_or(nan, |p| p.0),
            host_cpu: g
                .processes
                .iter()
                .filter_map(|p| p.cpu_percent)
                .fold(nan, f32::max),
            power: g.power.map_or(nan, |w| w.0),
            power_limit: g.power_limit.map_or(nan, |w| w.0),
            vram_used_share: if g.memory.total.0 > 0 {
                g.memory.used_fraction()
            } else {
                nan
            },
            shared_mib: g
                .processes
                .iter()
                .filter_map(|p| p.shared)
                .map(|b| b.0 as f32 / crate::units::MIB as f32)
                .fold(nan, f32::max),
        }
    }
}

/// Recent activity of every GPU and the VRAM of every process seen lately.
#[derive(Clone, Debug, Default)]
pub struct ActivityLog {
    gpus: Vec<VecDeque<ActivitySample>>,
    processes: HashMap<u32, VecDeque<(f64, f32)>>,
}

impl ActivityLog {
    /// Records one snapshot (a GPU asleep adds nothing: it has no readings).
    pub fn record(&mut self, snapshot: &Snapshot) {
        let t = snapshot.unix_seconds();
        for (slot, g) in snapshot.gpus.iter().enumerate() {
            if self.gpus.len() <= slot {
                self.gpus.resize_with(slot + 1, VecDeque::new);
            }
            if !g.is_current() {
                continue;
            }
            let ring = &mut self.gpus[slot];
            ring.push_back(ActivitySample::from_gpu(t, g));
            while ring.len() > CAPACITY || ring.front().is_some_and(|s| s.t < t - KEEP_SECONDS) {
                ring.pop_front();
            }
            // Pids of another machine would mix with this one's: remote processes have none.
            for p in g.processes.iter().filter(|_| g.remote.is_none()) {
                let Some(used) = p.used else { continue };
                self.record_process(p.pid, t, used.mib() as f32);
            }
        }
    }

    /// Forgets the GPU at `slot`; the ones after it move up a place (a remote host left).
    pub fn remove_gpu(&mut self, slot: usize) {
        if slot < self.gpus.len() {
            self.gpus.remove(slot);
        }
    }

    fn record_process(&mut self, pid: u32, t: f64, used_mib: f32) {
        if !self.processes.contains_key(&pid) && self.processes.len() >= MAX_PROCESSES {
            let stalest = self
                .processes
                .iter()
                .min_by(|a, b| {
                    let last = |r: &VecDeque<(f64, f32)>| r.back().map_or(f64::MIN, |p| p.0);
                    last(a.1).total_cmp(&last(b.1))
                })
                .map(|(pid, _)| *pid);
            if let Some(stalest) = stalest {
                self.processes.remove(&stalest);
            }
        }
        let ring = self.processes.entry(pid).or_default();
        // Process lists are refreshed once a second: keep one point per refresh.
        if ring
            .back()
            .is_some_and(|&(last, v)| t - last < 0.5 && v == used_mib)
        {
            return;
        }
        ring.push_back((t, used_mib));
        while ring.len() > PROCESS_POINTS {
            ring.pop_front();
        }
    }

    /// The activity of GPU `slot` within the last `seconds` before `now`, oldest first.
    pub fn window(&self, slot: usize, now: f64, seconds: f64) -> Vec<ActivitySample> {
        self.gpus
            .get(slot)
            .map(|ring| {
                ring.iter()
                    .filter(|s| s.t >= now - seconds && s.t <= now)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The newest sample time of GPU `slot`.
    pub fn newest(&self, slot: usize) -> Option<f64> {
        self.gpus.get(slot)?.back().map(|s| s.t)
    }

    /// The VRAM of process `pid` over time, (UNIX seconds, MiB), oldest first.
    pub fn process_vram(&self, pid: u32) -> Vec<[f64; 2]> {
        self.processes
            .get(&pid)
            .map(|r| r.iter().map(|&(t, v)| [t, v as f64]).collect())
            .unwrap_or_default()
    }

    /// Samples kept, all GPUs (for the memory bound tests).
    pub fn stored(&self) -> usize {
        self.gpus.iter().map(VecDeque::len).sum::<usize>()
            + self.processes.values().map(VecDeque::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::ProcessInfo;
    use crate::units::Bytes;
    use std::time::{Duration, SystemTime};

    fn snapshot(t: f64, pids: &[u32]) -> Snapshot {
        Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t),
            gpus: vec![GpuSample {
                processes: pids
                    .iter()
                    .map(|&pid| ProcessInfo {
                        pid,
                        used: Some(Bytes::from_mib(pid as u64)),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn the_rings_stay_bounded_by_time_and_count() {
        let mut log = ActivityLog::default();
        // An hour at 10 Hz, a new process every second.
        for i in 0..36_000u32 {
            let t = 1_000_000.0 + i as f64 / 10.0;
            log.record(&snapshot(t, &[i / 10 + 1]));
        }
        let newest = log.newest(0).unwrap();
        let kept = log.window(0, newest, 1e9);
        assert!(kept.len() <= CAPACITY);
        assert!(newest - kept[0].t <= KEEP_SECONDS);
        assert!(log.processes.len() <= MAX_PROCESSES);
        assert!(log.stored() <= CAPACITY + MAX_PROCESSES * PROCESS_POINTS);
    }

    #[test]
    fn a_process_keeps_its_vram_history_and_a_sleeping_gpu_adds_nothing() {
        let mut log = ActivityLog::default();
        for s in 0..5 {
            log.record(&snapshot(100.0 + s as f64, &[7]));
        }
        assert_eq!(log.process_vram(7).len(), 5);
        let mut asleep = snapshot(200.0, &[7]);
        asleep.gpus[0].asleep = true;
        log.record(&asleep);
        assert_eq!(log.newest(0), Some(104.0));
    }
}
