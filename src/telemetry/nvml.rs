//! The real GPU, read through NVML (the library nvidia-smi itself uses).

use super::{
    GpuSample, GpuSource, MemoryReading, ProcessInfo, ProcessKind, SourceError, SourceKind, procfs,
};
use crate::units::{Bytes, Celsius, MegaHertz, Percent, Watts};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Library names tried in order: the versioned name exists on every driver install, the bare
/// name only where the -dev package added the symlink.
const LIBRARY_NAMES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so", "nvml.dll"];

/// Reads every NVIDIA GPU through NVML.
pub struct NvmlSource {
    nvml: Nvml,
    device_count: u32,
    driver_version: String,
    /// Names cached by pid: /proc reads are the slowest part of a sample.
    process_names: HashMap<u32, String>,
    /// How often process lists are read.
    process_refresh: Duration,
    /// What is not read every sample, per GPU.
    devices: HashMap<u32, DeviceState>,
}

/// Readings of one GPU that a sample reuses instead of asking the driver again. Every NVML call
/// is a round trip to the driver (~10 µs when the CPU comes back from idle), so a 10 Hz sampler
/// asks only for what changes that fast.
struct DeviceState {
    name: String,
    /// `false` once the GPU said it has no fan (data-centre cards): never asked again.
    has_fan: bool,
    /// An admin may change it with `nvidia-smi -pl`: re-read every [`POWER_LIMIT_REFRESH`].
    power_limit: Refreshed<Option<Watts>>,
    /// Re-read every `process_refresh`.
    processes: Refreshed<Vec<ProcessInfo>>,
}

/// A value read from the driver, read again once it is older than the age the caller allows.
#[derive(Default)]
struct Refreshed<T> {
    read_at: Option<Instant>,
    value: T,
}

impl<T> Refreshed<T> {
    fn get(&mut self, max_age: Duration, read: impl FnOnce() -> T) -> &T {
        if self.read_at.is_none_or(|at| at.elapsed() >= max_age) {
            self.value = read();
            self.read_at = Some(Instant::now());
        }
        &self.value
    }
}

/// How often the enforced power limit is re-read.
pub const POWER_LIMIT_REFRESH: Duration = Duration::from_secs(10);

/// Default for [`NvmlSource`]'s process-list refresh.
pub const PROCESS_REFRESH: Duration = Duration::from_secs(1);

impl NvmlSource {
    /// Loads and initialises NVML. Fails with a sentence a user can act on.
    pub fn open() -> Result<Self, SourceError> {
        let mut last_error = None;
        for name in LIBRARY_NAMES {
            match Nvml::builder().lib_path(name.as_ref()).init() {
                Ok(nvml) => return Self::from_nvml(nvml),
                Err(e) => last_error = Some(e),
            }
        }
        let detail = match last_error {
            Some(NvmlError::LibloadingError(_)) | None => {
                "libnvidia-ml.so.1 not found (is the NVIDIA driver installed?)".to_string()
            }
            Some(NvmlError::DriverNotLoaded) => {
                "the NVIDIA kernel driver is not loaded".to_string()
            }
            Some(NvmlError::NoPermission) => "no permission to talk to the NVIDIA driver".into(),
            Some(e) => e.to_string(),
        };
        Err(SourceError::Unavailable(detail))
    }

    fn from_nvml(nvml: Nvml) -> Result<Self, SourceError> {
        let device_count = nvml
            .device_count()
            .map_err(|e| SourceError::Unavailable(format!("cannot count GPUs: {e}")))?;
        if device_count == 0 {
            return Err(SourceError::Unavailable(
                "the NVIDIA driver reports no GPU".into(),
            ));
        }
        let driver_version = nvml
            .sys_driver_version()
            .unwrap_or_else(|_| "unknown".into());
        Ok(NvmlSource {
            nvml,
            device_count,
            driver_version,
            process_names: HashMap::new(),
            process_refresh: PROCESS_REFRESH,
            devices: HashMap::new(),
        })
    }

    fn sample_device(&mut self, index: u32) -> Result<GpuSample, SourceError> {
        let device = self
            .nvml
            .device_by_index(index)
            .map_err(|e| device_error(index, e))?;
        // Memory is the one reading we cannot do without; every other field is optional.
        let info = device.memory_info().map_err(|e| device_error(index, e))?;
        let memory = MemoryReading {
            used: Bytes(info.used),
            total: Bytes(info.total),
            free: Bytes(info.free),
            reserved: Bytes(info.reserved),
        };
        let utilization = device.utilization_rates().ok();
        let state = self.devices.entry(index).or_insert_with(|| DeviceState {
            name: device.name().unwrap_or_else(|_| format!("GPU {index}")),
            has_fan: true,
            power_limit: Refreshed::default(),
            processes: Refreshed::default(),
        });
        let process_names = &mut self.process_names;
        let processes = state
            .processes
            .get(self.process_refresh, || {
                let mut list = merge_processes(
                    device.running_compute_processes().unwrap_or_default(),
                    device.running_graphics_processes().unwrap_or_default(),
                );
                for p in &mut list {
                    p.name = process_names
                        .entry(p.pid)
                        .or_insert_with(|| {
                            procfs::process_name(p.pid).unwrap_or_else(|| format!("pid {}", p.pid))
                        })
                        .clone();
                }
                list
            })
            .clone();
        let power_limit = *state.power_limit.get(POWER_LIMIT_REFRESH, || {
            device.enforced_power_limit().ok().map(milliwatts)
        });
        let fan = if state.has_fan {
            match device.fan_speed(0) {
                Ok(f) => Some(Percent(f as f32)),
                Err(NvmlError::NotSupported) => {
                    state.has_fan = false;
                    None
                }
                Err(_) => None,
            }
        } else {
            None
        };
        Ok(GpuSample {
            index,
            name: state.name.clone(),
            memory,
            gpu_util: utilization.as_ref().map(|u| Percent(u.gpu as f32)),
            memory_util: utilization.as_ref().map(|u| Percent(u.memory as f32)),
            temperature: device
                .temperature(TemperatureSensor::Gpu)
                .ok()
                .map(|t| Celsius(t as f32)),
            power: device.power_usage().ok().map(milliwatts),
            power_limit,
            sm_clock: device.clock_info(Clock::SM).ok().map(MegaHertz),
            memory_clock: device.clock_info(Clock::Memory).ok().map(MegaHertz),
            fan,
            processes,
        })
    }
}

impl NvmlSource {
    /// Time of each NVML call behind one GPU read, for `vramdeck bench`: warm (median of
    /// `calls` back to back) and cold (median of `cold_calls`, each the first call after 100 ms
    /// of idling, as at the sampler's 10 Hz).
    pub fn field_costs(
        &self,
        calls: u32,
        cold_calls: u32,
    ) -> Vec<(&'static str, Duration, Duration)> {
        let Ok(device) = self.nvml.device_by_index(0) else {
            return Vec::new();
        };
        let median = |mut samples: Vec<Duration>| {
            samples.sort();
            samples[samples.len() / 2]
        };
        let time = |f: &dyn Fn()| {
            let warm = median(
                (0..calls.max(1))
                    .map(|_| {
                        let started = Instant::now();
                        f();
                        started.elapsed()
                    })
                    .collect(),
            );
            let cold = median(
                (0..cold_calls.max(1))
                    .map(|_| {
                        std::thread::sleep(Duration::from_millis(100));
                        let started = Instant::now();
                        f();
                        started.elapsed()
                    })
                    .collect(),
            );
            (warm, cold)
        };
        let costs: Vec<(&'static str, (Duration, Duration))> = vec![
            (
                "device_by_index",
                time(&|| drop(self.nvml.device_by_index(0))),
            ),
            ("memory_info (v2)", time(&|| drop(device.memory_info()))),
            (
                "utilization_rates",
                time(&|| drop(device.utilization_rates())),
            ),
            (
                "temperature",
                time(&|| drop(device.temperature(TemperatureSensor::Gpu))),
            ),
            ("power_usage", time(&|| drop(device.power_usage()))),
            (
                "enforced_power_limit",
                time(&|| drop(device.enforced_power_limit())),
            ),
            (
                "clock_info SM",
                time(&|| drop(device.clock_info(Clock::SM))),
            ),
            (
                "clock_info memory",
                time(&|| drop(device.clock_info(Clock::Memory))),
            ),
            ("fan_speed", time(&|| drop(device.fan_speed(0)))),
            ("name", time(&|| drop(device.name()))),
            (
                "running_compute_processes",
                time(&|| drop(device.running_compute_processes())),
            ),
            (
                "running_graphics_processes",
                time(&|| drop(device.running_graphics_processes())),
            ),
        ];
        costs
            .into_iter()
            .map(|(name, (warm, cold))| (name, warm, cold))
            .collect()
    }
}

impl GpuSource for NvmlSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Nvml {
            driver_version: self.driver_version.clone(),
        }
    }

    fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError> {
        let gpus = (0..self.device_count)
            .map(|i| self.sample_device(i))
            .collect::<Result<Vec<_>, _>>()?;
        // Forget names of processes that left, so a reused pid gets its new name.
        let live: std::collections::HashSet<u32> = gpus
            .iter()
            .flat_map(|g| g.processes.iter().map(|p| p.pid))
            .collect();
        self.process_names.retain(|pid, _| live.contains(pid));
        Ok(gpus)
    }

    fn set_process_refresh(&mut self, every: Duration) {
        self.process_refresh = every;
    }
}

fn milliwatts(mw: u32) -> Watts {
    Watts(mw as f32 / 1000.0)
}

fn device_error(index: u32, e: NvmlError) -> SourceError {
    match e {
        NvmlError::GpuLost => SourceError::GpuLost {
            index,
            detail: "the GPU has fallen off the bus or is otherwise inaccessible".into(),
        },
        other => SourceError::Read {
            index,
            detail: other.to_string(),
        },
    }
}

/// One row per pid, compute and graphics lists combined, largest user first.
fn merge_processes(
    compute: Vec<nvml_wrapper::struct_wrappers::device::ProcessInfo>,
    graphics: Vec<nvml_wrapper::struct_wrappers::device::ProcessInfo>,
) -> Vec<ProcessInfo> {
    let mut rows: Vec<ProcessInfo> = Vec::new();
    let listed = compute
        .into_iter()
        .map(|p| (p, ProcessKind::Compute))
        .chain(graphics.into_iter().map(|p| (p, ProcessKind::Graphics)));
    for (p, kind) in listed {
        let used = match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(Bytes(b)),
            UsedGpuMemory::Unavailable => None,
        };
        if let Some(row) = rows.iter_mut().find(|r| r.pid == p.pid) {
            if row.kind != kind {
                row.kind = ProcessKind::ComputeAndGraphics;
            }
            // The same context is listed in both lists; its memory is not doubled.
            row.used = row.used.max(used);
        } else {
            rows.push(ProcessInfo {
                pid: p.pid,
                name: String::new(),
                used,
                kind,
            });
        }
    }
    rows.sort_by(|a, b| b.used.cmp(&a.used).then(a.pid.cmp(&b.pid)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refreshed_value_is_read_once_until_it_is_too_old() {
        let mut reads = 0;
        let mut value = Refreshed::default();
        let mut get = |max_age| {
            *value.get(max_age, || {
                reads += 1;
                reads
            })
        };
        assert_eq!(get(Duration::MAX), 1, "the first use reads");
        assert_eq!(get(Duration::MAX), 1, "young enough: no second read");
        assert_eq!(get(Duration::ZERO), 2, "any age is too old");
    }

    #[test]
    fn missing_driver_is_a_clear_error_not_a_panic() {
        // CI has no NVIDIA driver; on a GPU machine this test simply sees NVML open.
        match NvmlSource::open() {
            Ok(mut source) => assert!(!source.sample().unwrap().is_empty()),
            Err(e) => assert!(e.to_string().starts_with("NVML not available: "), "{e}"),
        }
    }
}
