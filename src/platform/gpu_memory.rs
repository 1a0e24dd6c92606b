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
    use crate::telemetry::ProcessInfo;
    use crate::telemetry::wddm::{self, Luid, ProcessMemory};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    use windows_sys::Wdk::Graphics::Direct3D::{
        D3DKMT_ADAPTERADDRESS, D3DKMT_ADAPTERINFO, D3DKMT_CLOSEADAPTER, D3DKMT_ENUMADAPTERS2,
        D3DKMT_QUERYADAPTERINFO, D3DKMTCloseAdapter, D3DKMTEnumAdapters2, D3DKMTQueryAdapterInfo,
        KMTQAITYPE_ADAPTERADDRESS,
    };
    use windows_sys::Win32::System::Performance::{
        PDH_FMT_COUNTERVALUE_ITEM_W, PDH_FMT_LARGE, PDH_HCOUNTER, PDH_HQUERY, PDH_MORE_DATA,
        PdhAddEnglishCounterW, PdhCloseQuery, PdhCollectQueryData, PdhGetFormattedCounterArrayW,
        PdhOpenQueryW,
    };

    /// One sampling round reads the counters once for every GPU.
    const FRESH_FOR: Duration = Duration::from_millis(400);
    /// After a failure (no counters: an old Windows, a disabled performance library, Wine).
    const RETRY_AFTER: Duration = Duration::from_secs(60);

    struct Query {
        query: PDH_HQUERY,
        dedicated: PDH_HCOUNTER,
        shared: PDH_HCOUNTER,
    }

    // The handles are used from the sampler thread only; PDH allows any thread.
    unsafe impl Send for Query {}

    impl Drop for Query {
        fn drop(&mut self) {
            // SAFETY: the query was opened by PdhOpenQueryW and is closed once.
            unsafe { PdhCloseQuery(self.query) };
        }
    }

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
                None => open(),
            }
            .and_then(|query| {
                let read = collect(&query);
                read.map(|values| (query, values))
            });
            match result {
                Ok((query, (dedicated, shared))) => {
                    self.per_adapter = wddm::per_process(&dedicated, &shared);
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

    fn wide(text: &str) -> Vec<u16> {
        text.encode_utf16().chain(Some(0)).collect()
    }

    fn open() -> Result<Query, String> {
        let mut query: PDH_HQUERY = std::ptr::null_mut();
        // SAFETY: a null data source means live data; `query` receives the handle.
        let status = unsafe { PdhOpenQueryW(std::ptr::null(), 0, &mut query) };
        if status != 0 {
            return Err(format!("PdhOpenQuery failed (0x{status:08X})"));
        }
        let mut query = Query {
            query,
            dedicated: std::ptr::null_mut(),
            shared: std::ptr::null_mut(),
        };
        // The resident pair, what Task Manager shows as dedicated and shared GPU memory; the
        // set's "Dedicated/Shared Usage" are committed figures (see `telemetry::wddm`).
        for (path, counter) in [
            ("\\GPU Process Memory(*)\\Local Usage", &mut query.dedicated),
            (
                "\\GPU Process Memory(*)\\Non Local Usage",
                &mut query.shared,
            ),
        ] {
            let path = wide(path);
            // SAFETY: `path` is NUL-terminated UTF-16; `counter` receives the handle.
            let status = unsafe { PdhAddEnglishCounterW(query.query, path.as_ptr(), 0, counter) };
            if status != 0 {
                return Err(format!(
                    "Windows' \"GPU Process Memory\" counters are not available (0x{status:08X}): \
                     per-process VRAM needs Windows 10 1709 or later"
                ));
            }
        }
        Ok(query)
    }

    type Items = Vec<(String, f64)>;

    fn collect(query: &Query) -> Result<(Items, Items), String> {
        // SAFETY: a valid open query.
        let status = unsafe { PdhCollectQueryData(query.query) };
        if status != 0 {
            return Err(read_failed(status));
        }
        Ok((items(query.dedicated)?, items(query.shared)?))
    }

    fn read_failed(status: u32) -> String {
        format!("reading Windows' GPU counters failed (0x{status:08X})")
    }

    /// Every instance of one counter: PDH's two-call pattern (size, then data).
    fn items(counter: PDH_HCOUNTER) -> Result<Items, String> {
        let mut size = 0u32;
        let mut count = 0u32;
        let mut call = |buffer: *mut PDH_FMT_COUNTERVALUE_ITEM_W, size: &mut u32| {
            // SAFETY: `buffer` is null (asking for the size, as PDH documents) or holds at
            // least `size` bytes.
            unsafe {
                PdhGetFormattedCounterArrayW(counter, PDH_FMT_LARGE, size, &mut count, buffer)
            }
        };
        let status = call(std::ptr::null_mut(), &mut size);
        if status != PDH_MORE_DATA {
            return if status == 0 {
                Ok(Vec::new())
            } else {
                Err(read_failed(status))
            };
        }
        // The item array comes first, the instance names after it, in one buffer: allocate it
        // as items so the array is aligned.
        let item_size = std::mem::size_of::<PDH_FMT_COUNTERVALUE_ITEM_W>();
        let mut buffer: Vec<PDH_FMT_COUNTERVALUE_ITEM_W> =
            vec![Default::default(); (size as usize).div_ceil(item_size)];
        let status = call(buffer.as_mut_ptr(), &mut size);
        if status != 0 {
            return Err(read_failed(status));
        }
        let mut out = Vec::with_capacity(count as usize);
        for item in buffer.iter().take(count as usize) {
            if item.FmtValue.CStatus != 0 || item.szName.is_null() {
                continue;
            }
            // SAFETY: PDH wrote a NUL-terminated name into the same buffer.
            let name = unsafe {
                let mut len = 0;
                while *item.szName.add(len) != 0 {
                    len += 1;
                }
                String::from_utf16_lossy(std::slice::from_raw_parts(item.szName, len))
            };
            // SAFETY: PDH_FMT_LARGE fills the union's largeValue.
            let value = unsafe { item.FmtValue.Anonymous.largeValue } as f64;
            out.push((name, value));
        }
        Ok(out)
    }

    /// Every display adapter's LUID by its PCI bus, device and function.
    fn adapter_luids() -> HashMap<(u32, u32, u32), Luid> {
        let mut out = HashMap::new();
        let mut enumerate = D3DKMT_ENUMADAPTERS2::default();
        // SAFETY: a null array asks for the count.
        if unsafe { D3DKMTEnumAdapters2(&mut enumerate) } != 0 || enumerate.NumAdapters == 0 {
            return out;
        }
        let mut adapters = vec![D3DKMT_ADAPTERINFO::default(); enumerate.NumAdapters as usize];
        enumerate.pAdapters = adapters.as_mut_ptr();
        // SAFETY: the array holds NumAdapters entries.
        if unsafe { D3DKMTEnumAdapters2(&mut enumerate) } != 0 {
            return out;
        }
        for adapter in adapters.iter().take(enumerate.NumAdapters as usize) {
            let mut address = D3DKMT_ADAPTERADDRESS::default();
            let mut query = D3DKMT_QUERYADAPTERINFO {
                hAdapter: adapter.hAdapter,
                Type: KMTQAITYPE_ADAPTERADDRESS,
                pPrivateDriverData: (&mut address as *mut D3DKMT_ADAPTERADDRESS).cast(),
                PrivateDriverDataSize: std::mem::size_of::<D3DKMT_ADAPTERADDRESS>() as u32,
            };
            // SAFETY: `address` is the buffer the query type asks for, sized as declared.
            if unsafe { D3DKMTQueryAdapterInfo(&mut query) } == 0 {
                out.insert(
                    (
                        address.BusNumber,
                        address.DeviceNumber,
                        address.FunctionNumber,
                    ),
                    Luid {
                        high: adapter.AdapterLuid.HighPart as u32,
                        low: adapter.AdapterLuid.LowPart,
                    },
                );
            }
            let close = D3DKMT_CLOSEADAPTER {
                hAdapter: adapter.hAdapter,
            };
            // SAFETY: an adapter handle D3DKMTEnumAdapters2 opened, closed once.
            unsafe { D3DKMTCloseAdapter(&close) };
        }
        out
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
