//! Every display adapter as Windows' graphics kernel counts it (WDDM), whoever made it: AMD and
//! Intel cards get the monitor, Free VRAM and the advisor too (a ComfyUI-ZLUDA or DirectML user
//! has no NVML). Windows publishes, per adapter LUID:
//!
//! - "GPU Adapter Memory": `Dedicated Usage` (the card's memory in use, all processes) and
//!   `Shared Usage`, instances `luid_0x<high>_0x<low>_phys_<n>`;
//! - "GPU Engine": `Utilization Percentage` per process and engine, instances
//!   `pid_<pid>_luid_0x<high>_0x<low>_phys_<n>_eng_<e>_engtype_<type>` (3D, Compute_0, Copy,
//!   VideoDecode, VideoEncode …). Task Manager shows an adapter's utilisation as its busiest
//!   engine's, each engine's being the sum over the processes on it; so does this;
//! - "GPU Process Memory": per process, read as in [`super::wddm`].
//!
//! The adapters themselves (name, vendor, dedicated memory size, PCI address) come from
//! D3DKMT (`platform::gpu_adapters`). No temperature, power or clocks: those need a vendor's
//! library (NVML for NVIDIA), and the card says so instead of showing a zero. This module turns
//! what is read into samples on every platform, so the parsing runs in every test run.

use super::wddm::{self, Luid};
use super::{Activity, GpuSample, GpuSource, MemoryReading, SourceError, SourceKind};
use crate::units::{Bytes, Percent};
use std::collections::HashMap;

/// PCI vendor ids of the makers whose cards are named by their vendor.
pub const NVIDIA: u32 = 0x10DE;
/// AMD (ATI's id).
pub const AMD: u32 = 0x1002;
/// Intel.
pub const INTEL: u32 = 0x8086;
/// Microsoft's software adapters (Basic Render Driver, WARP): no memory of their own.
pub const MICROSOFT: u32 = 0x1414;

/// One display adapter, as D3DKMT describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdapterInfo {
    /// Its LUID (the counters' instances name it).
    pub luid: Luid,
    /// "AMD Radeon RX 7900 XTX" (the driver's adapter string).
    pub name: String,
    /// PCI vendor id.
    pub vendor_id: u32,
    /// Memory of its own (D3DKMT's DedicatedVideoMemorySize): 0 for an integrated GPU, which
    /// uses system memory.
    pub dedicated_bytes: u64,
    /// System memory set aside for it (an integrated GPU's "dedicated" part).
    pub system_bytes: u64,
    /// System memory it may share.
    pub shared_bytes: u64,
    /// PCI address as NVML prints it ("00000000:03:00.0"), when it has one.
    pub pci_bus_id: Option<String>,
}

impl AdapterInfo {
    /// The memory the card counts as its own: VRAM, or for an integrated GPU the part of system
    /// memory reserved for it.
    pub fn own_memory(&self) -> u64 {
        if self.dedicated_bytes > 0 {
            self.dedicated_bytes
        } else {
            self.system_bytes
        }
    }

    /// Shown by WDDM here (not a software adapter, and not an NVIDIA card when NVML reads
    /// those itself).
    pub fn shown(&self, nvml_reads_nvidia: bool) -> bool {
        self.vendor_id != MICROSOFT && !(nvml_reads_nvidia && self.vendor_id == NVIDIA)
    }
}

/// One round of Windows' GPU counters, as PDH returns them (instance name, value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// GPU Adapter Memory → Dedicated Usage, bytes.
    pub adapter_dedicated: Vec<(String, f64)>,
    /// GPU Adapter Memory → Shared Usage, bytes.
    pub adapter_shared: Vec<(String, f64)>,
    /// GPU Engine → Utilization Percentage.
    pub engine_utilisation: Vec<(String, f64)>,
    /// GPU Process Memory → Local Usage, bytes.
    pub process_local: Vec<(String, f64)>,
    /// GPU Process Memory → Non Local Usage, bytes.
    pub process_non_local: Vec<(String, f64)>,
}

/// `luid_0x00000000_0x0000D3B4_phys_0` → its LUID.
pub fn adapter_instance(name: &str) -> Option<Luid> {
    let rest = name.strip_prefix("luid_0x")?;
    let (high, rest) = rest.split_once("_0x")?;
    let (low, _phys) = rest.split_once("_phys_")?;
    Some(Luid {
        high: u32::from_str_radix(high, 16).ok()?,
        low: u32::from_str_radix(low, 16).ok()?,
    })
}

/// `pid_4410_luid_0x0_0xD3B4_phys_0_eng_3_engtype_VideoDecode` → (LUID, "phys_0_eng_3",
/// "VideoDecode").
pub fn engine_instance(name: &str) -> Option<(Luid, String, String)> {
    let (_, luid) = wddm::parse_instance(name)?;
    let phys = &name[name.find("_phys_")? + 1..];
    let (engine, kind) = phys.split_once("_engtype_")?;
    Some((luid, engine.to_string(), kind.to_string()))
}

/// Bytes per adapter, the physical parts added up.
fn per_adapter(items: &[(String, f64)]) -> HashMap<Luid, u64> {
    let mut out: HashMap<Luid, u64> = HashMap::new();
    for (name, value) in items {
        if let Some(luid) = adapter_instance(name)
            && value.is_finite()
            && *value >= 0.0
        {
            let sum = out.entry(luid).or_default();
            *sum = sum.saturating_add(*value as u64);
        }
    }
    out
}

/// What an adapter's engines are doing: the busiest engine (Task Manager's figure), and the
/// video engines apart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EngineLoad {
    /// The busiest engine, percent.
    pub busiest: f32,
    /// The busiest video decoder.
    pub decode: Option<f32>,
    /// The busiest video encoder.
    pub encode: Option<f32>,
}

/// Each adapter's [`EngineLoad`]: each engine is the sum of its processes' shares (at most 100).
pub fn engine_load(items: &[(String, f64)]) -> HashMap<Luid, EngineLoad> {
    let mut engines: HashMap<(Luid, String), (String, f64)> = HashMap::new();
    for (name, value) in items {
        let Some((luid, engine, kind)) = engine_instance(name) else {
            continue;
        };
        if !value.is_finite() || *value < 0.0 {
            continue;
        }
        engines.entry((luid, engine)).or_insert((kind, 0.0)).1 += value;
    }
    let mut out: HashMap<Luid, EngineLoad> = HashMap::new();
    for ((luid, _), (kind, sum)) in engines {
        let share = sum.min(100.0) as f32;
        let load = out.entry(luid).or_default();
        load.busiest = load.busiest.max(share);
        let kind = kind.to_ascii_lowercase();
        if kind.starts_with("videodecode") {
            load.decode = Some(load.decode.unwrap_or(0.0).max(share));
        } else if kind.starts_with("videoencode") {
            load.encode = Some(load.encode.unwrap_or(0.0).max(share));
        }
    }
    out
}

/// The samples of `adapters`, numbered from `first_index`, from one round of `counters`.
/// An adapter the counters do not name (they were not read) keeps its size and no readings.
pub fn samples(adapters: &[AdapterInfo], counters: &Counters, first_index: u32) -> Vec<GpuSample> {
    let used = per_adapter(&counters.adapter_dedicated);
    let loads = engine_load(&counters.engine_utilisation);
    let processes = wddm::per_process(&counters.process_local, &counters.process_non_local);
    adapters
        .iter()
        .enumerate()
        .map(|(i, adapter)| {
            let total = adapter.own_memory();
            let used_now = used.get(&adapter.luid).copied();
            let load = loads.get(&adapter.luid);
            let mut list = Vec::new();
            if let Some(memory) = processes.get(&adapter.luid) {
                wddm::apply(&mut list, memory);
            }
            GpuSample {
                index: first_index + i as u32,
                name: adapter.name.clone(),
                memory: MemoryReading {
                    used: Bytes(used_now.unwrap_or(0)),
                    total: Bytes(total),
                    free: Bytes(total.saturating_sub(used_now.unwrap_or(0))),
                    reserved: Bytes(0),
                },
                gpu_util: load.map(|l| Percent(l.busiest)),
                activity: Activity {
                    decoder_util: load.and_then(|l| l.decode).map(Percent),
                    encoder_util: load.and_then(|l| l.encode).map(Percent),
                    ..Default::default()
                },
                processes: list,
                uuid: Some(format!(
                    "WDDM-{:04x}-{:08x}-{:08x}",
                    adapter.vendor_id, adapter.luid.high, adapter.luid.low
                )),
                pci_bus_id: adapter.pci_bus_id.clone(),
                ..Default::default()
            }
        })
        .collect()
}

/// What D3DKMT said of an adapter, in this module's terms.
fn to_info(raw: &crate::platform::gpu_adapters::RawAdapter) -> AdapterInfo {
    AdapterInfo {
        luid: Luid {
            high: raw.luid.0,
            low: raw.luid.1,
        },
        name: if raw.name.is_empty() {
            vendor_name(raw.vendor_id)
        } else {
            crate::text::sanitized(&raw.name)
        },
        vendor_id: raw.vendor_id,
        dedicated_bytes: raw.dedicated,
        system_bytes: raw.system,
        shared_bytes: raw.shared,
        pci_bus_id: raw
            .pci
            .map(|(bus, device, function)| format!("00000000:{bus:02X}:{device:02X}.{function}")),
    }
}

/// Windows' GPUs through WDDM, after NVML's NVIDIA cards when NVML reads (the others are
/// AMD's and Intel's), or all of them when it does not.
pub struct WddmSource {
    reader: crate::platform::gpu_adapters::AdapterReader,
    adapters: Vec<AdapterInfo>,
    nvml: Option<Box<dyn GpuSource>>,
}

impl WddmSource {
    /// The adapters NVML (when given) does not read, or why there are none (not Windows,
    /// no GPU counters, only NVIDIA cards beside NVML).
    pub fn open(nvml: Option<Box<dyn GpuSource>>) -> Result<Self, String> {
        let (reader, adapters) = open_parts(nvml.is_some())?;
        Ok(WddmSource {
            reader,
            adapters,
            nvml,
        })
    }
}

fn open_parts(
    nvml_reads_nvidia: bool,
) -> Result<
    (
        crate::platform::gpu_adapters::AdapterReader,
        Vec<AdapterInfo>,
    ),
    String,
> {
    let reader = crate::platform::gpu_adapters::AdapterReader::open()?;
    let adapters: Vec<AdapterInfo> = reader
        .adapters()
        .iter()
        .map(to_info)
        .filter(|a| a.shown(nvml_reads_nvidia))
        .collect();
    if adapters.is_empty() {
        return Err("no display adapter for WDDM to read".into());
    }
    Ok((reader, adapters))
}

/// `nvml` alone, or with the other makers' cards WDDM reads beside it.
pub fn beside(nvml: Box<dyn GpuSource>) -> Box<dyn GpuSource> {
    match open_parts(true) {
        Ok((reader, adapters)) => Box::new(WddmSource {
            reader,
            adapters,
            nvml: Some(nvml),
        }),
        Err(_) => nvml,
    }
}

impl GpuSource for WddmSource {
    fn kind(&self) -> SourceKind {
        match &self.nvml {
            Some(nvml) => nvml.kind(),
            None => SourceKind::Wddm {
                adapters: self
                    .adapters
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        }
    }

    fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError> {
        let mut gpus = match self.nvml.as_mut() {
            Some(nvml) => nvml.sample()?,
            None => Vec::new(),
        };
        // Counters that fail this round leave the cards with their sizes and no readings.
        let counters = self
            .reader
            .read()
            .map(|raw| Counters {
                adapter_dedicated: raw.adapter_dedicated,
                adapter_shared: raw.adapter_shared,
                engine_utilisation: raw.engine_utilisation,
                process_local: raw.process_local,
                process_non_local: raw.process_non_local,
            })
            .unwrap_or_default();
        let first = gpus.len() as u32;
        gpus.extend(samples(&self.adapters, &counters, first));
        Ok(gpus)
    }

    fn set_process_refresh(&mut self, every: std::time::Duration) {
        if let Some(nvml) = self.nvml.as_mut() {
            nvml.set_process_refresh(every);
        }
    }

    fn set_detail(&mut self, detail: super::Detail) {
        if let Some(nvml) = self.nvml.as_mut() {
            nvml.set_detail(detail);
        }
    }
}

/// The vendor in words, for an adapter whose driver gave no name.
pub fn vendor_name(vendor_id: u32) -> String {
    match vendor_id {
        NVIDIA => "NVIDIA GPU".into(),
        AMD => "AMD GPU".into(),
        INTEL => "Intel GPU".into(),
        other => format!("GPU (vendor {other:04X})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{GIB, MIB};

    const CAPTURE: &str =
        include_str!("../../tests/fixtures/wddm/typeperf-gpu-adapters-amd-intel.csv");

    fn counters() -> Counters {
        Counters {
            adapter_dedicated: super::super::wddm::typeperf::column(CAPTURE, "Dedicated Usage"),
            adapter_shared: super::super::wddm::typeperf::column(CAPTURE, "Shared Usage"),
            engine_utilisation: super::super::wddm::typeperf::column(
                CAPTURE,
                "Utilization Percentage",
            ),
            process_local: super::super::wddm::typeperf::column(CAPTURE, "Local Usage"),
            process_non_local: super::super::wddm::typeperf::column(CAPTURE, "Non Local Usage"),
        }
    }

    fn radeon() -> AdapterInfo {
        AdapterInfo {
            luid: Luid {
                high: 0,
                low: 0x0000_E2F1,
            },
            name: "AMD Radeon RX 7900 XTX".into(),
            vendor_id: AMD,
            dedicated_bytes: 24 * GIB,
            shared_bytes: 16 * GIB,
            pci_bus_id: Some("00000000:03:00.0".into()),
            ..Default::default()
        }
    }

    fn iris() -> AdapterInfo {
        AdapterInfo {
            luid: Luid {
                high: 0,
                low: 0x0000_A1F0,
            },
            name: "Intel(R) Iris(R) Xe Graphics".into(),
            vendor_id: INTEL,
            system_bytes: 128 * MIB,
            shared_bytes: 16 * GIB,
            ..Default::default()
        }
    }

    #[test]
    fn an_amd_card_gets_its_vram_utilisation_and_processes_from_windows_counters() {
        let gpus = samples(&[radeon(), iris()], &counters(), 0);
        let amd = &gpus[0];
        assert_eq!(amd.name, "AMD Radeon RX 7900 XTX");
        assert_eq!(amd.memory.total, Bytes(24 * GIB));
        // Both physical parts of the adapter's memory counter, added up.
        assert_eq!(amd.memory.used, Bytes(19 * GIB + 512 * MIB));
        assert_eq!(amd.memory.free, Bytes(4 * GIB + 512 * MIB));
        // ComfyUI-ZLUDA's python.exe at 78 % of the compute engine, the desktop's 3 % on 3D:
        // the busiest engine is the card's figure.
        assert_eq!(amd.gpu_util, Some(Percent(78.0)));
        assert_eq!(amd.activity.decoder_util, Some(Percent(12.0)));
        assert_eq!(amd.activity.encoder_util, None);
        assert_eq!(amd.processes[0].pid, 6120);
        assert_eq!(amd.processes[0].used, Some(Bytes(18 * GIB)));
        assert_eq!(amd.temperature, None, "no vendor library: no temperature");
        assert_eq!(amd.pci_bus_id.as_deref(), Some("00000000:03:00.0"));
        // The integrated GPU: system memory set aside, its own engines.
        let intel = &gpus[1];
        assert_eq!(intel.index, 1);
        assert_eq!(intel.memory.total, Bytes(128 * MIB));
        assert_eq!(intel.gpu_util, Some(Percent(9.0)));
        assert_ne!(amd.uuid, intel.uuid);
    }

    #[test]
    fn engines_shared_by_processes_add_up_and_never_pass_a_hundred() {
        let items = vec![
            (
                "pid_1_luid_0x00000000_0x00000010_phys_0_eng_0_engtype_3D".to_string(),
                70.0,
            ),
            (
                "pid_2_luid_0x00000000_0x00000010_phys_0_eng_0_engtype_3D".to_string(),
                50.0,
            ),
            (
                "pid_2_luid_0x00000000_0x00000010_phys_0_eng_1_engtype_Copy".to_string(),
                f64::NAN,
            ),
            ("not an engine".to_string(), 99.0),
        ];
        let load = engine_load(&items);
        assert_eq!(load.len(), 1);
        assert_eq!(load.values().next().unwrap().busiest, 100.0);
    }

    #[test]
    fn adapters_without_counters_keep_their_size_and_say_nothing_else() {
        let gpus = samples(&[radeon()], &Counters::default(), 2);
        assert_eq!(gpus[0].index, 2);
        assert_eq!(gpus[0].memory.total, Bytes(24 * GIB));
        assert_eq!(gpus[0].gpu_util, None);
        assert!(gpus[0].processes.is_empty());
    }

    #[test]
    fn software_adapters_are_not_cards_and_nvidia_is_left_to_nvml_when_it_reads() {
        let basic = AdapterInfo {
            vendor_id: MICROSOFT,
            ..Default::default()
        };
        let nvidia = AdapterInfo {
            vendor_id: NVIDIA,
            ..Default::default()
        };
        assert!(!basic.shown(false));
        assert!(nvidia.shown(false) && !nvidia.shown(true));
        assert!(radeon().shown(true));
        assert_eq!(vendor_name(AMD), "AMD GPU");
        assert_eq!(vendor_name(0x5143), "GPU (vendor 5143)");
    }
}
