//! Windows' display adapters and their performance counters, whoever made the card: the raw
//! numbers `telemetry::wddm_adapters` turns into GPUs. Adapters come from D3DKMT (name, PCI
//! vendor, memory sizes, PCI address); the counters "GPU Adapter Memory", "GPU Engine" and "GPU
//! Process Memory" through PDH, added by their English names. Elsewhere there are none.

/// One display adapter as D3DKMT describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawAdapter {
    /// Its LUID: (HighPart as its bits, LowPart).
    pub luid: (u32, u32),
    /// The driver's adapter string ("AMD Radeon RX 7900 XTX"); empty when it gave none.
    pub name: String,
    /// PCI vendor id.
    pub vendor_id: u32,
    /// DedicatedVideoMemorySize.
    pub dedicated: u64,
    /// DedicatedSystemMemorySize.
    pub system: u64,
    /// SharedSystemMemorySize.
    pub shared: u64,
    /// PCI bus, device and function.
    pub pci: Option<(u32, u32, u32)>,
}

/// One round of the counters: (instance name, value) for each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawCounters {
    /// GPU Adapter Memory → Dedicated Usage.
    pub adapter_dedicated: Vec<(String, f64)>,
    /// GPU Adapter Memory → Shared Usage.
    pub adapter_shared: Vec<(String, f64)>,
    /// GPU Engine → Utilization Percentage.
    pub engine_utilisation: Vec<(String, f64)>,
    /// GPU Process Memory → Local Usage.
    pub process_local: Vec<(String, f64)>,
    /// GPU Process Memory → Non Local Usage.
    pub process_non_local: Vec<(String, f64)>,
}

/// Every display adapter Windows knows (none elsewhere). Only to be called where the GPU
/// counters exist (see [`AdapterReader::open`]).
pub fn list() -> Vec<RawAdapter> {
    imp::adapters()
}

/// Reads the adapters once and their counters on demand.
pub struct AdapterReader {
    adapters: Vec<RawAdapter>,
    imp: imp::Counters,
}

impl AdapterReader {
    /// The adapters and an open counter query, or why there are none (not Windows; no GPU
    /// counters, as under Wine or before Windows 10 1709).
    pub fn open() -> Result<Self, String> {
        // The counters first: D3DKMTEnumAdapters2 exists wherever they do (Wine 8's stub of it
        // aborts the caller, and Wine has no counters).
        let imp = imp::Counters::open()?;
        let adapters = imp::adapters();
        if adapters.is_empty() {
            return Err("Windows names no display adapter".into());
        }
        Ok(AdapterReader { adapters, imp })
    }

    /// The adapters found at opening.
    pub fn adapters(&self) -> &[RawAdapter] {
        &self.adapters
    }

    /// One round of the counters (rates such as the engines' need two rounds: the first
    /// gives none).
    pub fn read(&mut self) -> Result<RawCounters, String> {
        self.imp.read()
    }
}

#[cfg(not(windows))]
mod imp {
    pub struct Counters;

    impl Counters {
        pub fn open() -> Result<Self, String> {
            Err("WDDM's counters are Windows'".into())
        }

        pub fn read(&mut self) -> Result<super::RawCounters, String> {
            Err("WDDM's counters are Windows'".into())
        }
    }

    pub fn adapters() -> Vec<super::RawAdapter> {
        Vec::new()
    }
}

#[cfg(windows)]
mod imp {
    use super::super::pdh::Query;
    use super::{RawAdapter, RawCounters};
    use windows_sys::Wdk::Graphics::Direct3D::{
        D3DKMT_ADAPTERADDRESS, D3DKMT_ADAPTERINFO, D3DKMT_ADAPTERREGISTRYINFO, D3DKMT_CLOSEADAPTER,
        D3DKMT_ENUMADAPTERS2, D3DKMT_QUERY_DEVICE_IDS, D3DKMT_QUERYADAPTERINFO,
        D3DKMT_SEGMENTSIZEINFO, D3DKMTCloseAdapter, D3DKMTEnumAdapters2, D3DKMTQueryAdapterInfo,
        KMTQAITYPE_ADAPTERADDRESS, KMTQAITYPE_ADAPTERREGISTRYINFO, KMTQAITYPE_GETSEGMENTSIZE,
        KMTQAITYPE_PHYSICALADAPTERDEVICEIDS, KMTQUERYADAPTERINFOTYPE,
    };

    const PATHS: [&str; 5] = [
        "\\GPU Adapter Memory(*)\\Dedicated Usage",
        "\\GPU Adapter Memory(*)\\Shared Usage",
        "\\GPU Engine(*)\\Utilization Percentage",
        "\\GPU Process Memory(*)\\Local Usage",
        "\\GPU Process Memory(*)\\Non Local Usage",
    ];

    pub struct Counters(Query);

    impl Counters {
        pub fn open() -> Result<Self, String> {
            Query::open(&PATHS).map(Counters)
        }

        pub fn read(&mut self) -> Result<RawCounters, String> {
            let mut read = self.0.collect()?.into_iter();
            let mut next = || read.next().unwrap_or_default();
            Ok(RawCounters {
                adapter_dedicated: next(),
                adapter_shared: next(),
                engine_utilisation: next(),
                process_local: next(),
                process_non_local: next(),
            })
        }
    }

    /// Fills `data` with the adapter's answer to query `kind`; false when it gave none.
    fn query<T>(adapter: &D3DKMT_ADAPTERINFO, kind: KMTQUERYADAPTERINFOTYPE, data: &mut T) -> bool {
        let mut q = D3DKMT_QUERYADAPTERINFO {
            hAdapter: adapter.hAdapter,
            Type: kind,
            pPrivateDriverData: (data as *mut T).cast(),
            PrivateDriverDataSize: std::mem::size_of::<T>() as u32,
        };
        // SAFETY: `data` is the buffer this query type asks for, sized as declared.
        unsafe { D3DKMTQueryAdapterInfo(&mut q) == 0 }
    }

    fn text(units: &[u16]) -> String {
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        String::from_utf16_lossy(&units[..end]).trim().to_string()
    }

    /// Every display adapter Windows knows, with what D3DKMT says of each.
    pub fn adapters() -> Vec<RawAdapter> {
        let mut out = Vec::new();
        let mut enumerate = D3DKMT_ENUMADAPTERS2::default();
        // SAFETY: a null array asks for the count.
        if unsafe { D3DKMTEnumAdapters2(&mut enumerate) } != 0 || enumerate.NumAdapters == 0 {
            return out;
        }
        let mut list = vec![D3DKMT_ADAPTERINFO::default(); enumerate.NumAdapters as usize];
        enumerate.pAdapters = list.as_mut_ptr();
        // SAFETY: the array holds NumAdapters entries.
        if unsafe { D3DKMTEnumAdapters2(&mut enumerate) } != 0 {
            return out;
        }
        for adapter in list.iter().take(enumerate.NumAdapters as usize) {
            let mut address = D3DKMT_ADAPTERADDRESS::default();
            let mut registry = D3DKMT_ADAPTERREGISTRYINFO::default();
            let mut ids = D3DKMT_QUERY_DEVICE_IDS::default();
            let mut sizes = D3DKMT_SEGMENTSIZEINFO::default();
            let pci = query(adapter, KMTQAITYPE_ADAPTERADDRESS, &mut address).then_some((
                address.BusNumber,
                address.DeviceNumber,
                address.FunctionNumber,
            ));
            let name = if query(adapter, KMTQAITYPE_ADAPTERREGISTRYINFO, &mut registry) {
                text(&registry.AdapterString)
            } else {
                String::new()
            };
            let vendor_id = if query(adapter, KMTQAITYPE_PHYSICALADAPTERDEVICEIDS, &mut ids) {
                ids.DeviceIds.VendorID
            } else {
                0
            };
            query(adapter, KMTQAITYPE_GETSEGMENTSIZE, &mut sizes);
            out.push(RawAdapter {
                luid: (
                    adapter.AdapterLuid.HighPart as u32,
                    adapter.AdapterLuid.LowPart,
                ),
                name,
                vendor_id,
                dedicated: sizes.DedicatedVideoMemorySize,
                system: sizes.DedicatedSystemMemorySize,
                shared: sizes.SharedSystemMemorySize,
                pci,
            });
            let close = D3DKMT_CLOSEADAPTER {
                hAdapter: adapter.hAdapter,
            };
            // SAFETY: an adapter handle D3DKMTEnumAdapters2 opened, closed once.
            unsafe { D3DKMTCloseAdapter(&close) };
        }
        out
    }
}
