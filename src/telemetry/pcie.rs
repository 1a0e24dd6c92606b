//! PCIe throughput, read on a thread of its own. NVML measures it over a 20 ms window per call
//! (two calls, receive and send: 42 ms on an H100), which would hold up every reading it shared
//! a sample with; the driver's cumulative byte counters would be cheap but read far too low at
//! high rates (measured on an H100: 0.4 GB/s where nvidia-smi dmon showed 20–50 GB/s). So a
//! small thread takes the 20 ms measurements every two seconds (about 2 ms of CPU each time)
//! and the sampler reads the latest.

use super::runtime_pm::Sysfs;
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::PcieUtilCounter;
use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread measures.
pub const EVERY: Duration = Duration::from_secs(2);

/// Latest (rx, tx) MB/s by GPU index.
type Latest = Arc<Mutex<HashMap<u32, (Option<f32>, Option<f32>)>>>;

/// The measuring thread; dropping it stops the thread (and lets go of its NVML handle).
pub struct PcieReader {
    latest: Latest,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PcieReader {
    /// Measures GPUs `0..devices` every [`EVERY`], skipping any that sleep (`addresses` in
    /// index order, checked in `sysfs`).
    pub fn spawn(nvml: Arc<Nvml>, devices: u32, sysfs: Sysfs, addresses: Vec<String>) -> Self {
        let latest: Latest = Arc::default();
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&latest);
        let thread = std::thread::Builder::new()
            .name("vramdeck-pcie".into())
            .spawn(move || {
                loop {
                    for i in 0..devices {
                        let asleep = addresses
                            .get(i as usize)
                            .is_some_and(|a| !a.is_empty() && sysfs.is_suspended(a));
                        if asleep {
                            continue;
                        }
                        let Ok(device) = nvml.device_by_index(i) else {
                            continue;
                        };
                        // KB/s (of 1,024 bytes) over NVML's 20 ms window.
                        let mbs = |c| {
                            device
                                .pcie_throughput(c)
                                .ok()
                                .map(|kb| kb as f32 * 1.024 / 1_000.0)
                        };
                        let rates = (mbs(PcieUtilCounter::Receive), mbs(PcieUtilCounter::Send));
                        if let Ok(mut l) = shared.lock() {
                            l.insert(i, rates);
                        }
                    }
                    match stopped.recv_timeout(EVERY) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .ok();
        PcieReader {
            latest,
            stop: Some(stop),
            thread,
        }
    }

    /// The latest (rx, tx) of GPU `index`, MB/s.
    pub fn latest(&self, index: u32) -> (Option<f32>, Option<f32>) {
        self.latest
            .lock()
            .ok()
            .and_then(|l| l.get(&index).copied())
            .unwrap_or((None, None))
    }
}

impl Drop for PcieReader {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
