//! The real GPU, read through NVML (the library nvidia-smi itself uses).

use super::pcie::PcieReader;
use super::runtime_pm::{Sysfs, sysfs_address};
use super::{
    Activity, ClockEvents, Detail, GpuSample, GpuSource, MemoryReading, ProcessInfo, ProcessKind,
    SourceError, SourceKind,
};
use crate::units::{Bytes, Celsius, MegaHertz, Percent, Watts};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, PcieUtilCounter, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Library names tried in order: the versioned name exists on every driver install, the bare
/// name only where the -dev package added the symlink.
/// Where NVML lives: Linux's driver library, Windows' nvml.dll (System32 since driver 418, the
/// NVSMI folder before).
const LIBRARY_NAMES: &[&str] = &[
    "libnvidia-ml.so.1",
    "libnvidia-ml.so",
    "nvml.dll",
    r"C:\Program Files\NVIDIA Corporation\NVSMI\nvml.dll",
];

/// How often each reading is taken: the one table `vramdeck bench` prints. Every NVML call is a
/// round trip to the driver, so only what changes at the sampling rate is read every sample.
pub const REFRESH_TIERS: &[(&str, &str)] = &[
    (
        "runtime PM status (sysfs; a suspended GPU is not touched)",
        "every sample, before any NVML call",
    ),
    (
        "memory (v2), utilisation, temperature, power, SM and memory clocks, clock events",
        "every sample",
    ),
    ("fan", "every sample, until the GPU says it has none"),
    (
        "process lists, per-process CPU and host memory (/proc)",
        "every second",
    ),
    (
        "per-process SM utilisation (2.4 ms a call on an H100; only with processes)",
        "every 5 s",
    ),
    ("encoder and decoder utilisation", "every second"),
    (
        "PCIe rx / tx (NVML's 20 ms measurement, on a thread of its own: no reading waits)",
        "every 2 s",
    ),
    ("power limit", "every 10 s"),
    (
        "name, PCI address, PCIe link maximum, maximum SM clock",
        "once",
    ),
];

/// Reads every NVIDIA GPU through NVML.
pub struct NvmlSource {
    /// `None` while every GPU sleeps: an open handle alone keeps a laptop's GPU awake.
    nvml: Option<Arc<Nvml>>,
    /// Measures PCIe throughput beside the sampler; stopped with NVML.
    pcie: Option<PcieReader>,
    device_count: u32,
    driver_version: String,
    /// Names cached by pid: /proc reads are the slowest part of a sample.
    process_names: HashMap<u32, String>,
    /// How often process lists (and the per-second readings) are read.
    process_refresh: Duration,
    /// What is not read every sample, per GPU.
    devices: HashMap<u32, DeviceState>,
    /// CPU time seen per pid, for CPU % between two reads.
    cpu_seen: HashMap<u32, (f64, Instant)>,
    /// Where runtime PM status is read.
    sysfs: Sysfs,
    /// PCI addresses in index order, as sysfs names them (known before NVML is opened).
    addresses: Vec<String>,
    /// How much is read each sample.
    detail: Detail,
    /// Per-process memory from the OS where NVML says "not available" (Windows' WDDM).
    os_memory: crate::platform::gpu_memory::OsGpuMemory,
}

/// Readings of one GPU that a sample reuses instead of asking the driver again. Every NVML call
/// is a round trip to the driver (~10 µs when the CPU comes back from idle), so a 10 Hz sampler
/// asks only for what changes that fast.
struct DeviceState {
    name: String,
    /// Read once.
    uuid: Option<String>,
    /// Read once.
    pci_bus_id: Option<String>,
    /// `false` once the GPU said it has no fan (data-centre cards): never asked again.
    has_fan: bool,
    /// An admin may change it with `nvidia-smi -pl`: re-read every [`POWER_LIMIT_REFRESH`].
    power_limit: Refreshed<Option<Watts>>,
    /// Re-read every `process_refresh`.
    processes: Refreshed<Vec<ProcessInfo>>,
    /// Encoder, decoder and PCIe, re-read every `process_refresh`.
    engines: Refreshed<Engines>,
    /// Read once.
    pcie_max_mbs: Option<f32>,
    /// Read once.
    sm_clock_max: Option<MegaHertz>,
    /// The newest per-process utilisation sample seen (NVML's µs timestamp).
    process_util_seen: u64,
    /// Per-process SM utilisation by pid, re-read every [`PROCESS_SM_REFRESH`].
    process_sm: Refreshed<Option<HashMap<u32, Percent>>>,
}

/// How often per-process SM utilisation is re-read: the call costs 2.4 ms on an H100.
pub const PROCESS_SM_REFRESH: Duration = Duration::from_secs(5);

/// The per-second readings of the video engines.
#[derive(Clone, Copy, Default)]
struct Engines {
    encoder: Option<Percent>,
    decoder: Option<Percent>,
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
    /// Loads and initialises NVML. Fails with a sentence a user can act on. When every NVIDIA
    /// GPU is runtime-suspended, NVML is not opened at all (that would wake them).
    pub fn open() -> Result<Self, SourceError> {
        Self::open_with(Sysfs::default())
    }

    /// [`open`](Self::open) with sysfs at another place.
    pub fn open_with(sysfs: Sysfs) -> Result<Self, SourceError> {
        let addresses: Vec<String> = sysfs.nvidia_gpus().into_iter().map(|g| g.address).collect();
        if !addresses.is_empty() && addresses.iter().all(|a| sysfs.is_suspended(a)) {
            return Ok(NvmlSource {
                nvml: None,
                pcie: None,
                device_count: addresses.len() as u32,
                driver_version: "not loaded: every GPU is asleep".into(),
                process_names: HashMap::new(),
                process_refresh: PROCESS_REFRESH,
                devices: HashMap::new(),
                cpu_seen: HashMap::new(),
                sysfs,
                addresses,
                detail: Detail::Everything,
                os_memory: Default::default(),
            });
        }
        let mut source = Self::init_nvml()?;
        source.sysfs = sysfs;
        if source.addresses.is_empty() {
            source.addresses = addresses;
        }
        source.start_pcie();
        Ok(source)
    }

    fn init_nvml() -> Result<Self, SourceError> {
        let mut last_error = None;
        for name in LIBRARY_NAMES {
            match Nvml::builder().lib_path(name.as_ref()).init() {
                Ok(nvml) => return Self::from_nvml(nvml),
                // A library that loaded but failed says more than the names that are absent.
                Err(NvmlError::LibloadingError(_)) if last_error.is_some() => {}
                Err(e) => last_error = Some(e),
            }
        }
        let detail = match last_error {
            Some(NvmlError::LibloadingError(_)) | None => {
                crate::t!("nvml-no-library")
            }
            Some(NvmlError::DriverNotLoaded) => {
                crate::t!("nvml-driver-not-loaded")
            }
            Some(NvmlError::NoPermission) => crate::t!("nvml-no-permission"),
            Some(e) => e.to_string(),
        };
        Err(SourceError::Unavailable(detail))
    }

    fn from_nvml(nvml: Nvml) -> Result<Self, SourceError> {
        let device_count = nvml
            .device_count()
            .map_err(|e| SourceError::Unavailable(format!("cannot count GPUs: {e}")))?;
        if device_count == 0 {
            return Err(SourceError::Unavailable(crate::t!("nvml-no-gpu")));
        }
        let driver_version = nvml
            .sys_driver_version()
            .unwrap_or_else(|_| "unknown".into());
        // NVML's own addresses, in its index order (sysfs may be absent in a container).
        let addresses = (0..device_count)
            .map(|i| {
                nvml.device_by_index(i)
                    .and_then(|d| d.pci_info())
                    .map(|p| sysfs_address(&p.bus_id))
                    .unwrap_or_default()
            })
            .collect();
        Ok(NvmlSource {
            nvml: Some(Arc::new(nvml)),
            pcie: None,
            device_count,
            driver_version,
            process_names: HashMap::new(),
            process_refresh: PROCESS_REFRESH,
            devices: HashMap::new(),
            cpu_seen: HashMap::new(),
            sysfs: Sysfs::default(),
            addresses,
            detail: Detail::Everything,
            os_memory: Default::default(),
        })
    }

    fn start_pcie(&mut self) {
        if self.detail != Detail::Everything {
            return;
        }
        self.pcie = self.nvml.as_ref().map(|nvml| {
            PcieReader::spawn(
                Arc::clone(nvml),
                self.device_count,
                self.sysfs.clone(),
                self.addresses.clone(),
            )
        });
    }

    /// True when GPU `index` is runtime-suspended (read from sysfs, which does not wake it).
    fn asleep(&self, index: u32) -> bool {
        self.addresses
            .get(index as usize)
            .is_some_and(|a| !a.is_empty() && self.sysfs.is_suspended(a))
    }

    /// A GPU that sleeps: its name if known, no readings.
    fn asleep_sample(&self, index: u32) -> GpuSample {
        GpuSample {
            index,
            name: self
                .devices
                .get(&index)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| format!("NVIDIA GPU {index}")),
            asleep: true,
            ..Default::default()
        }
    }

    /// CPU % of `pid` since its last read, and its resident memory.
    fn host_use(
        cpu_seen: &mut HashMap<u32, (f64, Instant)>,
        pid: u32,
    ) -> (Option<f32>, Option<Bytes>) {
        let Some(used) = crate::platform::process_info::host_use(pid) else {
            return (None, None);
        };
        let now = Instant::now();
        let cpu = cpu_seen
            .insert(pid, (used.cpu_seconds, now))
            .and_then(|(before, at)| {
                let elapsed = now.duration_since(at).as_secs_f64();
                (elapsed > 0.05)
                    .then(|| ((used.cpu_seconds - before).max(0.0) / elapsed * 100.0) as f32)
            });
        (cpu, Some(used.rss))
    }

    fn sample_device(&mut self, index: u32) -> Result<GpuSample, SourceError> {
        let Some(nvml) = &self.nvml else {
            return Ok(self.asleep_sample(index));
        };
        let device = nvml
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
            uuid: device.uuid().ok(),
            pci_bus_id: device.pci_info().ok().map(|p| p.bus_id),
            has_fan: true,
            power_limit: Refreshed::default(),
            processes: Refreshed::default(),
            engines: Refreshed::default(),
            pcie_max_mbs: pcie_max_mbs(
                device.max_pcie_link_gen().ok(),
                device.max_pcie_link_width().ok(),
            ),
            sm_clock_max: device.max_clock_info(Clock::SM).ok().map(MegaHertz),
            process_util_seen: 0,
            process_sm: Refreshed::default(),
        });
        // The fields both read modes fill in.
        let basics = GpuSample {
            index,
            name: state.name.clone(),
            memory,
            gpu_util: utilization.as_ref().map(|u| Percent(u.gpu as f32)),
            memory_util: utilization.as_ref().map(|u| Percent(u.memory as f32)),
            temperature: device
                .temperature(TemperatureSensor::Gpu)
                .ok()
                .map(|t| Celsius(t as f32)),
            uuid: state.uuid.clone(),
            pci_bus_id: state.pci_bus_id.clone(),
            ..Default::default()
        };
        if let Detail::Basics { processes } = self.detail {
            // What `vramdeck log` prints, and nothing it does not: about a tenth of the calls.
            let processes = if processes {
                let mut list = listed_processes(&device, &mut self.process_names);
                self.os_memory.fill(state.pci_bus_id.as_deref(), &mut list);
                list
            } else {
                Vec::new()
            };
            return Ok(GpuSample {
                processes,
                ..basics
            });
        }
        let process_names = &mut self.process_names;
        let os_memory = &mut self.os_memory;
        let pci_bus_id = state.pci_bus_id.clone();
        let cpu_seen = &mut self.cpu_seen;
        let util_seen = &mut state.process_util_seen;
        let process_sm = &mut state.process_sm;
        let processes = state
            .processes
            .get(self.process_refresh, || {
                let mut list = listed_processes(&device, process_names);
                os_memory.fill(pci_bus_id.as_deref(), &mut list);
                // Samples since the last read; a listed process without one used no SM time.
                // Asked only when some process holds the GPU.
                let sm = if list.is_empty() {
                    None
                } else {
                    process_sm
                        .get(PROCESS_SM_REFRESH, || {
                            let samples = device.process_utilization_stats(*util_seen).ok()?;
                            *util_seen = samples
                                .iter()
                                .map(|s| s.timestamp)
                                .max()
                                .unwrap_or(*util_seen);
                            let mut newest: HashMap<u32, (u64, Percent)> = HashMap::new();
                            for s in samples {
                                let e = newest.entry(s.pid).or_insert((0, Percent(0.0)));
                                if s.timestamp >= e.0 {
                                    *e = (s.timestamp, Percent(s.sm_util as f32));
                                }
                            }
                            Some(newest.into_iter().map(|(pid, (_, u))| (pid, u)).collect())
                        })
                        .clone()
                };
                for p in &mut list {
                    p.sm_util = sm
                        .as_ref()
                        .map(|by_pid| by_pid.get(&p.pid).copied().unwrap_or(Percent(0.0)));
                    if p.visible {
                        (p.cpu_percent, p.host_rss) = Self::host_use(cpu_seen, p.pid);
                    }
                }
                list
            })
            .clone();
        let (pcie_rx_mbs, pcie_tx_mbs) = self
            .pcie
            .as_ref()
            .map(|p| p.latest(index))
            .unwrap_or((None, None));
        let engines = *state.engines.get(self.process_refresh, || Engines {
            encoder: device
                .encoder_utilization()
                .ok()
                .map(|u| Percent(u.utilization as f32)),
            decoder: device
                .decoder_utilization()
                .ok()
                .map(|u| Percent(u.utilization as f32)),
        });
        let activity = Activity {
            encoder_util: engines.encoder,
            decoder_util: engines.decoder,
            pcie_rx_mbs,
            pcie_tx_mbs,
            pcie_max_mbs: state.pcie_max_mbs,
            clock_events: device
                .current_throttle_reasons()
                .ok()
                .map(|r| ClockEvents(r.bits())),
            sm_clock_max: state.sm_clock_max,
        };
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
            power: device.power_usage().ok().map(milliwatts),
            power_limit,
            sm_clock: device.clock_info(Clock::SM).ok().map(MegaHertz),
            memory_clock: device.clock_info(Clock::Memory).ok().map(MegaHertz),
            fan,
            processes,
            activity,
            ..basics
        })
    }
}

/// A PCIe link's maximum bandwidth per direction, MB/s, from its generation and lane count
/// (after line coding: 8b/10b up to gen 2, 128b/130b from gen 3).
pub fn pcie_max_mbs(generation: Option<u32>, width: Option<u32>) -> Option<f32> {
    let per_lane = match generation? {
        1 => 250.0,
        2 => 500.0,
        3 => 984.6,
        4 => 1_969.2,
        5 => 3_938.5,
        6 => 7_563.0,
        _ => return None,
    };
    Some(per_lane * width?.max(1) as f32)
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
        let Some(nvml) = &self.nvml else {
            return Vec::new();
        };
        let Ok(device) = nvml.device_by_index(0) else {
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
            ("device_by_index", time(&|| drop(nvml.device_by_index(0)))),
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
            (
                "process_utilization_stats",
                time(&|| drop(device.process_utilization_stats(None))),
            ),
            (
                "current_throttle_reasons",
                time(&|| drop(device.current_throttle_reasons())),
            ),
            (
                "encoder_utilization",
                time(&|| drop(device.encoder_utilization())),
            ),
            (
                "decoder_utilization",
                time(&|| drop(device.decoder_utilization())),
            ),
            (
                "pcie_throughput rx",
                time(&|| drop(device.pcie_throughput(PcieUtilCounter::Receive))),
            ),
            (
                "pcie_throughput tx",
                time(&|| drop(device.pcie_throughput(PcieUtilCounter::Send))),
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
        let asleep: Vec<bool> = (0..self.device_count).map(|i| self.asleep(i)).collect();
        if asleep.iter().all(|a| *a) {
            // Every GPU sleeps: let go of NVML (the PCIe thread's handle first) so no open
            // handle keeps them awake.
            self.pcie = None;
            self.nvml = None;
        } else if self.nvml.is_none() {
            let mut woken = Self::init_nvml()?;
            self.nvml = woken.nvml.take();
            self.driver_version = woken.driver_version.clone();
            self.device_count = woken.device_count;
            self.start_pcie();
        }
        let gpus = (0..self.device_count)
            .map(|i| {
                if asleep.get(i as usize).copied().unwrap_or(false) {
                    Ok(self.asleep_sample(i))
                } else {
                    self.sample_device(i)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Forget names of processes that left, so a reused pid gets its new name.
        let live: std::collections::HashSet<u32> = gpus
            .iter()
            .flat_map(|g| g.processes.iter().map(|p| p.pid))
            .collect();
        self.process_names.retain(|pid, _| live.contains(pid));
        self.cpu_seen.retain(|pid, _| live.contains(pid));
        Ok(gpus)
    }

    fn set_process_refresh(&mut self, every: Duration) {
        self.process_refresh = every;
    }

    fn set_detail(&mut self, detail: Detail) {
        self.detail = detail;
        if detail != Detail::Everything {
            self.pcie = None;
        } else if self.pcie.is_none() {
            self.start_pcie();
        }
    }
}

/// A process's name from /proc, read once per pid (the cache is pruned as processes leave);
/// a pid outside our pid namespace says so instead of staying blank.
fn process_name(cache: &mut HashMap<u32, String>, pid: u32, visible: bool) -> String {
    cache
        .entry(pid)
        .or_insert_with(|| match crate::platform::process_info::process_name(pid) {
            Some(name) => name,
            None if !visible => format!("pid {pid} (not in this container's pid namespace)"),
            None => format!("pid {pid}"),
        })
        .clone()
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

/// The device's processes (compute and graphics merged), each named and marked visible or not.
fn listed_processes(
    device: &nvml_wrapper::Device<'_>,
    names: &mut HashMap<u32, String>,
) -> Vec<ProcessInfo> {
    let mut list = merge_processes(
        device.running_compute_processes().unwrap_or_default(),
        device.running_graphics_processes().unwrap_or_default(),
    );
    for p in &mut list {
        p.visible = crate::platform::process_info::is_visible(p.pid);
        p.name = process_name(names, p.pid, p.visible);
    }
    list
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
                used,
                kind,
                visible: true,
                ..Default::default()
            });
        }
    }
    super::sort_largest_first(&mut rows);
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
    fn pcie_link_maximum_follows_generation_and_width() {
        assert_eq!(pcie_max_mbs(Some(4), Some(16)), Some(1_969.2 * 16.0));
        assert_eq!(
            pcie_max_mbs(Some(5), Some(16)).map(|m| m.round()),
            Some(63_016.0)
        );
        assert_eq!(pcie_max_mbs(None, Some(16)), None);
        assert_eq!(pcie_max_mbs(Some(9), Some(16)), None);
    }

    #[test]
    fn every_gpu_asleep_means_nvml_is_never_opened() {
        // This machine may have no NVIDIA driver at all: a source comes back anyway, because
        // NVML is not loaded while every GPU sleeps, and every GPU reads as asleep.
        let dir = super::super::runtime_pm::tests::fake_sysfs(&[
            ("0000:01:00.0", "suspended"),
            ("0000:02:00.0", "suspended"),
        ]);
        let mut source = NvmlSource::open_with(Sysfs::at(dir.path())).unwrap();
        assert!(source.nvml.is_none());
        let gpus = source.sample().unwrap();
        assert_eq!(gpus.len(), 2);
        assert!(gpus.iter().all(|g| g.asleep && g.memory.total.0 == 0));
        assert!(source.nvml.is_none(), "still not opened");
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
