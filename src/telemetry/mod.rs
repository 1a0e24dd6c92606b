//! What the GPU is doing: readings, where they come from, and how they are kept.
//!
//! Data flows one way: a [`GpuSource`] (NVML or simulated) is read by the sampler thread, which
//! pushes each [`Snapshot`] into the bounded [`history::History`] that the UI reads.

pub mod activity;
pub mod history;
pub mod nvml;
pub mod pcie;
pub mod runtime_pm;
pub mod sampler;
pub mod sim;
pub mod wddm;
pub mod wddm_adapters;

use crate::units::{Bytes, Celsius, MegaHertz, Percent, Watts};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Memory of one GPU with nvidia-smi's meaning of "used" (driver-reserved memory not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReading {
    /// Memory allocated by processes and contexts (nvidia-smi's `memory.used`).
    pub used: Bytes,
    /// Installed memory (nvidia-smi's `memory.total`).
    pub total: Bytes,
    /// Memory still unallocated.
    pub free: Bytes,
    /// Memory the driver keeps for itself (NVML v2 only; zero when unknown).
    pub reserved: Bytes,
}

impl MemoryReading {
    /// Used memory as a fraction of the total, 0.0–1.0.
    pub fn used_fraction(&self) -> f32 {
        if self.total.0 == 0 {
            0.0
        } else {
            (self.used.0 as f64 / self.total.0 as f64) as f32
        }
    }
}

/// Whether a process uses the GPU for compute (CUDA), graphics, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessKind {
    /// A CUDA / compute context.
    #[default]
    Compute,
    /// A graphics context (a desktop, a game).
    Graphics,
    /// Both kinds of context.
    ComputeAndGraphics,
}

impl ProcessKind {
    /// The letters nvidia-smi prints in its process table.
    pub fn letters(self) -> &'static str {
        match self {
            ProcessKind::Compute => "C",
            ProcessKind::Graphics => "G",
            ProcessKind::ComputeAndGraphics => "C+G",
        }
    }
}

/// Orders a GPU's processes as every list shows them: the largest holder first, then by pid.
pub fn sort_largest_first(processes: &mut [ProcessInfo]) {
    processes.sort_by(|a, b| b.used.cmp(&a.used).then(a.pid.cmp(&b.pid)));
}

/// One process holding memory on a GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id as the driver reports it (the host's pid, also inside a container).
    pub pid: u32,
    /// Process name, from /proc (or what the source knows).
    pub name: String,
    /// Memory it holds; `None` when the driver cannot tell (e.g. Windows WDDM, containers).
    pub used: Option<Bytes>,
    /// System memory the GPU reaches for it over the bus (Windows' "shared GPU memory": the
    /// CUDA sysmem fallback's spill, and pinned host memory); `None` where the OS does not say.
    #[serde(default)]
    pub shared: Option<Bytes>,
    /// Compute, graphics or both.
    pub kind: ProcessKind,
    /// Its share of the GPU's SM (kernel) time over the last second, when the driver says.
    pub sm_util: Option<Percent>,
    /// Its CPU use over the last second, percent of one core (100 = one core busy).
    pub cpu_percent: Option<f32>,
    /// Its resident host memory.
    pub host_rss: Option<Bytes>,
    /// False when the pid is not in this process's pid namespace (we run in a container and
    /// the driver reports a host pid): no name, CPU or memory can be read for it.
    pub visible: bool,
}

/// NVML's clock-event ("throttle") reasons: why the SM clock is below its maximum. The bits
/// are NVML's own (`nvmlClocksEventReason*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEvents(pub u64);

impl ClockEvents {
    /// Nothing runs.
    pub const IDLE: u64 = 0x1;
    /// Application clocks were set below the maximum.
    pub const APPLICATIONS_CLOCKS: u64 = 0x2;
    /// The software power cap (the power limit) holds the clock down.
    pub const SW_POWER_CAP: u64 = 0x4;
    /// Hardware slowdown (high temperature or power supply).
    pub const HW_SLOWDOWN: u64 = 0x8;
    /// Boost synchronised with other GPUs.
    pub const SYNC_BOOST: u64 = 0x10;
    /// The driver slows the clock for temperature.
    pub const SW_THERMAL: u64 = 0x20;
    /// The hardware slows the clock for temperature.
    pub const HW_THERMAL: u64 = 0x40;
    /// An external power brake.
    pub const HW_POWER_BRAKE: u64 = 0x80;
    /// The display clock setting.
    pub const DISPLAY_CLOCKS: u64 = 0x100;

    /// Reasons that slow a busy GPU down (idle and clock settings do not).
    pub const SLOWING: u64 = Self::SW_POWER_CAP
        | Self::HW_SLOWDOWN
        | Self::SW_THERMAL
        | Self::HW_THERMAL
        | Self::HW_POWER_BRAKE;

    const NAMES: [(u64, &'static str); 9] = [
        (Self::SW_POWER_CAP, "power cap"),
        (Self::SW_THERMAL, "thermal (driver)"),
        (Self::HW_THERMAL, "thermal (hardware)"),
        (Self::HW_SLOWDOWN, "hardware slowdown"),
        (Self::HW_POWER_BRAKE, "power brake"),
        (Self::APPLICATIONS_CLOCKS, "application clocks"),
        (Self::SYNC_BOOST, "sync boost"),
        (Self::DISPLAY_CLOCKS, "display clocks"),
        (Self::IDLE, "idle"),
    ];

    /// True when a reason that slows a busy GPU is active.
    pub fn slowing(self) -> bool {
        self.0 & Self::SLOWING != 0
    }

    /// The active reasons in the user's words, slowing ones first ("power cap, idle").
    pub fn describe(self) -> String {
        let names: Vec<String> = Self::NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| Self::label(name))
            .collect();
        if names.is_empty() {
            crate::t!("clock-none")
        } else {
            names.join(", ")
        }
    }

    /// A reason's name ([`ClockEvents::name_of`], stable English) in the user's words.
    pub fn label(name: &str) -> String {
        match name {
            "power cap" => crate::t!("clock-power-cap"),
            "thermal (driver)" => crate::t!("clock-thermal-driver"),
            "thermal (hardware)" => crate::t!("clock-thermal-hardware"),
            "hardware slowdown" => crate::t!("clock-hw-slowdown"),
            "power brake" => crate::t!("clock-power-brake"),
            "application clocks" => crate::t!("clock-app-clocks"),
            "sync boost" => crate::t!("clock-sync-boost"),
            "display clocks" => crate::t!("clock-display-clocks"),
            "idle" => crate::t!("clock-idle"),
            _ => crate::t!("clock-unknown"),
        }
    }

    /// The name of one reason bit.
    pub fn name_of(bit: u64) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(b, _)| *b == bit)
            .map(|(_, n)| *n)
            .unwrap_or("unknown")
    }
}

/// What says whether a busy GPU is held back: video engines, the PCIe link, clock events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// NVENC utilisation.
    pub encoder_util: Option<Percent>,
    /// NVDEC utilisation.
    pub decoder_util: Option<Percent>,
    /// PCIe traffic into the GPU (host to device), MB/s (10^6 bytes).
    pub pcie_rx_mbs: Option<f32>,
    /// PCIe traffic out of the GPU, MB/s.
    pub pcie_tx_mbs: Option<f32>,
    /// The link's maximum bandwidth per direction, MB/s (from its generation and width).
    pub pcie_max_mbs: Option<f32>,
    /// Why the SM clock is held below its maximum.
    pub clock_events: Option<ClockEvents>,
    /// The highest SM clock the GPU supports.
    pub sm_clock_max: Option<MegaHertz>,
}

/// Everything read from one GPU at one moment. Optional fields are ones the GPU does not report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML index (nvidia-smi's `index`).
    pub index: u32,
    /// Product name (nvidia-smi's `name`).
    pub name: String,
    /// Memory, nvidia-smi semantics.
    pub memory: MemoryReading,
    /// Share of time a kernel ran during the last sample period.
    pub gpu_util: Option<Percent>,
    /// Share of time device memory was read or written.
    pub memory_util: Option<Percent>,
    /// Core temperature.
    pub temperature: Option<Celsius>,
    /// Power draw.
    pub power: Option<Watts>,
    /// Enforced power limit.
    pub power_limit: Option<Watts>,
    /// Graphics/SM clock.
    pub sm_clock: Option<MegaHertz>,
    /// Memory clock.
    pub memory_clock: Option<MegaHertz>,
    /// Fan speed as a share of its maximum (absent on passively cooled data-centre cards).
    pub fan: Option<Percent>,
    /// Processes holding memory on this GPU, largest first.
    pub processes: Vec<ProcessInfo>,
    /// Video engines, PCIe and clock events.
    pub activity: Activity,
    /// The GPU is runtime-suspended (a laptop's idle discrete GPU) and was not woken to be read:
    /// every reading but the name is absent.
    pub asleep: bool,
    /// The GPU's UUID ("GPU-5b2f…"), which names it across reboots and hosts.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Its PCI address as NVML prints it ("00000000:3B:00.0").
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    /// Set when the GPU is on another machine (a remote host), `None` for this machine's.
    #[serde(skip)]
    pub remote: Option<RemoteOrigin>,
}

/// Where a remote GPU's readings come from and how fresh they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteOrigin {
    /// The host's name as the user knows it ("gpu-box", "runpod-a100").
    pub host: String,
    /// The address the host was added with: what tells two hosts of one name apart.
    pub address: String,
    /// The GPU's index on its host (the sample's own `index` is its place in this window).
    pub index: u32,
    /// Set when no reading arrived for three intervals: the values shown are the last ones,
    /// this many seconds old.
    pub stale_seconds: Option<f64>,
}

impl GpuSample {
    /// How the window names the GPU: "GPU 0", or "gpu-box · GPU 0" for a remote one.
    pub fn title(&self) -> String {
        match &self.remote {
            Some(r) => format!("{} · GPU {}", r.host, r.index),
            None => format!("GPU {}", self.index),
        }
    }

    /// True when the values are not a current reading (asleep, or a remote host gone quiet):
    /// history keeps a gap instead of repeating them.
    pub fn is_current(&self) -> bool {
        !self.asleep
            && self
                .remote
                .as_ref()
                .is_none_or(|r| r.stale_seconds.is_none())
    }
}

/// All GPUs read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// When the readings were taken.
    pub time: SystemTime,
    /// One entry per GPU, in index order.
    pub gpus: Vec<GpuSample>,
}

impl Snapshot {
    /// Seconds since the UNIX epoch, the x coordinate used by history and plots.
    pub fn unix_seconds(&self) -> f64 {
        unix_seconds(self.time)
    }
}

/// Seconds since the UNIX epoch as a float (negative before 1970, which never happens here).
pub fn unix_seconds(time: SystemTime) -> f64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Where readings come from, shown in the UI so nobody mistakes a demo for their GPU.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceKind {
    /// The NVIDIA driver, through NVML.
    Nvml {
        /// Driver version, e.g. "580.159.04".
        driver_version: String,
    },
    /// Windows' own counters (WDDM): any maker's cards, without a vendor library (no
    /// temperature, power or clocks).
    Wddm {
        /// The adapters, by name ("AMD Radeon RX 7900 XTX").
        adapters: String,
    },
    /// No GPU here: only remote hosts are watched.
    RemoteOnly {
        /// Why this machine has none (NVML's words).
        reason: String,
    },
    /// A simulated GPU (demo mode).
    Simulated {
        /// Why demo mode is on, e.g. "NVML not available: libnvidia-ml.so.1 not found".
        reason: String,
    },
}

impl SourceKind {
    /// In a few words: "NVML, driver 580.95.05", "demo: NVML not available: …".
    pub fn describe(&self) -> String {
        match self {
            SourceKind::Nvml { driver_version } => format!("NVML, driver {driver_version}"),
            SourceKind::Simulated { reason } => format!("demo: {reason}"),
            SourceKind::RemoteOnly { reason } => format!("remote hosts only ({reason})"),
            SourceKind::Wddm { adapters } => format!("Windows (WDDM): {adapters}"),
        }
    }

    /// True in demo mode.
    pub fn is_simulated(&self) -> bool {
        matches!(self, SourceKind::Simulated { .. })
    }
}

/// Why a read failed. The sampler shows it and keeps trying; nothing here is fatal to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceError {
    /// NVML could not be loaded or initialised.
    Unavailable(String),
    /// A GPU stopped answering (fell off the bus, driver reset).
    GpuLost {
        /// NVML index of the GPU.
        index: u32,
        /// What the driver said.
        detail: String,
    },
    /// Any other driver error.
    Read {
        /// NVML index of the GPU.
        index: u32,
        /// What the driver said.
        detail: String,
    },
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&match self {
            SourceError::Unavailable(detail) => crate::t!("nvml-unavailable", detail = detail),
            SourceError::GpuLost { index, detail } => {
                crate::t!("gpu-lost", index = index.to_string(), detail = detail)
            }
            SourceError::Read { index, detail } => {
                crate::t!(
                    "gpu-read-failed",
                    index = index.to_string(),
                    detail = detail
                )
            }
        })
    }
}

impl std::error::Error for SourceError {}

/// Anything that can read all GPUs: NVML on a real machine, a simulation in demo mode and tests.
pub trait GpuSource: Send {
    /// What this source is.
    fn kind(&self) -> SourceKind;
    /// Reads every GPU once.
    fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError>;
    /// Reads process lists at most this often (they are the costliest NVML calls and change
    /// rarely); `Duration::ZERO` reads them every time. Sources without the cost ignore it.
    fn set_process_refresh(&mut self, _every: std::time::Duration) {}
    /// Reads only what a caller needs (`vramdeck log` prints a handful of fields); sources
    /// whose reads cost nothing ignore it.
    fn set_detail(&mut self, _detail: Detail) {}
    /// Readings that arrived late (a remote host's gap, filled after a reconnect), to go into
    /// history before the next snapshot.
    fn take_backfill(&mut self) -> Vec<Backfilled> {
        Vec::new()
    }
    /// Places of GPUs that left since the last call (a remote host removed), highest first:
    /// the GPUs after them move up one place each.
    fn take_removed(&mut self) -> Vec<usize> {
        Vec::new()
    }
}

/// How much a source reads each sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// Everything the window shows (processes, video engines, PCIe, clock events …).
    #[default]
    Everything,
    /// Memory, utilisation and temperature (what `vramdeck log` prints), and process lists
    /// when `processes` is set.
    Basics {
        /// Read process lists (name and memory only).
        processes: bool,
    },
}

/// One GPU's late readings, by its place in the snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Backfilled {
    /// Its place in the snapshot.
    pub slot: usize,
    /// Time-ordered `(t, values)`.
    pub points: Vec<(f64, history::Values)>,
}

/// Opens NVML, or the demo simulation when NVML is not there (or when `force_demo` is set).
pub fn open_source(force_demo: bool) -> Box<dyn GpuSource> {
    if force_demo {
        return Box::new(sim::SimulatedGpus::demo(&crate::t!("demo-requested")));
    }
    // On Windows, cards NVML does not read (AMD, Intel) come from WDDM beside it, or alone.
    match nvml::NvmlSource::open() {
        Ok(source) => wddm_adapters::beside(Box::new(source)),
        Err(e) => match wddm_adapters::WddmSource::open(None) {
            Ok(windows) => Box::new(windows),
            Err(_) => match e {
                SourceError::Unavailable(detail) => Box::new(sim::SimulatedGpus::demo(&crate::t!(
                    "nvml-unavailable",
                    detail = detail
                ))),
                e => Box::new(sim::SimulatedGpus::demo(&e.to_string())),
            },
        },
    }
}
