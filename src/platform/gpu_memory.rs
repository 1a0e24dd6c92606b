//! Per-process GPU memory from the OS, where NVML cannot say it: under Windows' display driver
//! model (WDDM, the NVIDIA driver's default on Windows) NVML reports every process's memory as
//! not available, by design. Windows counts it itself and publishes it as performance
//! counters (see `telemetry::wddm`); this reads them through PDH, added by their English names
//! so a Chinese Windows ("GPU 进程内存") is read the same, and matches NVML's GPU to its
//! adapter by PCI address (D3DKMT). Elsewhere there is nothing to add: `fill` does nothing.

use crate::telemetry::ProcessInfo;

/// Reads the OS's per-process GPU memory, at most once per sampling round.
pub struct OsGpuMemory {
    imp: imp::Reader,
}

impl Default for OsGpuMemory {
    fn default() -> Self {
        OsGpuMemory {
            imp: imp::Reader::new(),
        }
    }
}

impl OsGpuMemory {
    /// Adds what the OS knows to `list`, the processes of the GPU at `pci_bus_id` (NVML's
    /// form, `00000000:01:00.0`).
    pub fn fill(&mut self, pci_bus_id: Option<&str>, list: &mut Vec<ProcessInfo>) {
        self.imp.fill(pci_bus_id, list);
    }

    /// Why the OS's numbers are not there, when they should be (Windows only).
    pub fn unavailable(&self) -> Option<String> {
        self.imp.unavailable()
    }
}

/// `00000000:01:00.0` → (bus, device, function).
pub fn pci_address(bus_id: &str) -> Option<(u32, u32, u32)> {
    let mut parts = bus_id.rsplitn(3, ':');
    let device_function = parts.next()?;
    let bus = parts.next()?;
    let (device, function) = device_function.split_once('.')?;
    Some((
        u32::from_str_radix(bus, 16).ok()?,
        u32::from_str_radix(device, 16).ok()?,
        u32::from_str_radix(function, 16).ok()?,
    ))
}

#[cfg(not(windows))]
mod imp {
    use crate::telemetry::ProcessInfo;

    pub struct Reader;

    impl Reader {
        pub fn new() -> Self {
            Reader
        }

        pub fn fill(&mut self, _: Option<&str>, _: &mut Vec<ProcessInfo>) {}

        pub fn unavailable(&self) -> Option<String> {
            None
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::pci_address;
    use crate::platform::pdh::Query;
    use crate::telemetry::ProcessInfo;
    use crate::telemetry::wddm::{self, Luid, ProcessMemory};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    /// One sampling round reads the counters once for every GPU.
    const FRESH_FOR: Duration = Duration::from_millis(400);
    /// After a failure (no counters: an old Windows, a disabled performance library, Wine).
    const RETRY_AFTER: Duration = Duration::from_secs(60);
    /// The resident pair, what Task Manager shows as dedicated and shared GPU memory; the
    /// set's "Dedicated/Shared Usage" are committed figures (see `telemetry::wddm`).
    const PATHS: [&str; 2] = [
        "\\GPU Process Memory(*)\\Local Usage",
        "\\GPU Process Memory(*)\\Non Local Usage",
    ];

    pub struct Reader {
        query: Option<Query>,
        failed: Option<(String, Instant)>,
        read_at: Option<Instant>,
        per_adapter: HashMap<Luid, HashMap<u32, ProcessMemory>>,
        luids: Option<HashMap<(u32, u32, u32), Luid>>,
    }

    impl Reader {
        pub fn new() -> Self {
            Reader {
                query: None,
                failed: None,
                read_at: None,
                per_adapter: HashMap::new(),
                luids: None,
            }
        }

        pub fn unavailable(&self) -> Option<String> {
            self.failed.as_ref().map(|(why, _)| why.clone())
        }

        pub fn fill(&mut self, pci_bus_id: Option<&str>, list: &mut Vec<ProcessInfo>) {
            let Some(address) = pci_bus_id.and_then(pci_address) else {
                return;
            };
            self.refresh();
            // Adapters are looked up only once the counters answered: they exist from Windows
            // 10 1709, where D3DKMTEnumAdapters2 does too (Wine 8 has neither, and its stub of
            // the latter aborts the caller).
            if self.per_adapter.is_empty() {
                return;
            }
            let luids = self.luids.get_or_insert_with(adapter_luids);
            let Some(luid) = luids.get(&address) else {
                return;
            };
            if let Some(memory) = self.per_adapter.get(luid) {
                wddm::apply(list, memory);
            }
        }

        fn refresh(&mut self) {
            if self.read_at.is_some_and(|at| at.elapsed() < FRESH_FOR) {
                return;
            }
            if let Some((_, at)) = &self.failed
                && at.elapsed() < RETRY_AFTER
            {
                return;
            }
            self.read_at = Some(Instant::now());
            let result = match self.query.take() {
                Some(query) => Ok(query),
                None => Query::open(&PATHS),
            }
            .and_then(|query| {
                let read = query.collect();
                read.map(|values| (query, values))
            });
            match result {
                Ok((query, values)) => {
                    let (local, non_local) = match values.as_slice() {
                        [a, b] => (a.as_slice(), b.as_slice()),
                        _ => (&[][..], &[][..]),
                    };
                    self.per_adapter = wddm::per_process(local, non_local);
                    self.query = Some(query);
                    self.failed = None;
                }
                Err(why) => {
                    self.per_adapter.clear();
                    self.failed = Some((why, Instant::now()));
                }
            }
        }
    }

    /// Every display adapter's LUID by its PCI bus, device and function.
    fn adapter_luids() -> HashMap<(u32, u32, u32), Luid> {
        crate::platform::gpu_adapters::list()
            .into_iter()
            .filter_map(|a| {
                Some((
                    a.pci?,
                    Luid {
                        high: a.luid.0,
                        low: a.luid.1,
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_bus_ids_give_the_pci_address() {
        assert_eq!(pci_address("00000000:01:00.0"), Some((1, 0, 0)));
        assert_eq!(pci_address("0000:C1:1F.3"), Some((0xC1, 0x1F, 3)));
        assert_eq!(pci_address("garbage"), None);
    }

    #[test]
    fn the_reader_never_fails_the_sample() {
        // On Linux nothing is added; on Windows under Wine there are no GPU counters, which is
        // said and leaves NVML's list as it was.
        let mut reader = OsGpuMemory::default();
        let mut list = vec![ProcessInfo {
            pid: 1,
            ..Default::default()
        }];
        reader.fill(Some("00000000:01:00.0"), &mut list);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].used, None);
    }
}
