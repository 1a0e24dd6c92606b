//! Windows' performance counters through PDH: one query of several counters, each read as the
//! list of its instances (name, value). Added by their English names, so a Chinese Windows
//! ("GPU 进程内存") is read the same.

use windows_sys::Win32::System::Performance::{
    PDH_FMT_COUNTERVALUE_ITEM_W, PDH_FMT_DOUBLE, PDH_HCOUNTER, PDH_HQUERY, PDH_MORE_DATA,
    PdhAddEnglishCounterW, PdhCloseQuery, PdhCollectQueryData, PdhGetFormattedCounterArrayW,
    PdhOpenQueryW,
};

/// Every instance of one counter.
pub type Items = Vec<(String, f64)>;

/// An open query of a few counters.
pub struct Query {
    query: PDH_HQUERY,
    counters: Vec<PDH_HCOUNTER>,
}

// The handles are used from one thread at a time (the sampler's); PDH allows any thread.
unsafe impl Send for Query {}

impl Drop for Query {
    fn drop(&mut self) {
        // SAFETY: the query was opened by PdhOpenQueryW and is closed once.
        unsafe { PdhCloseQuery(self.query) };
    }
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(Some(0)).collect()
}

fn read_failed(status: u32) -> String {
    format!("reading Windows' GPU counters failed (0x{status:08X})")
}

impl Query {
    /// Opens a query of `paths` ("\\GPU Process Memory(*)\\Local Usage" …), or says why not.
    pub fn open(paths: &[&str]) -> Result<Self, String> {
        let mut handle: PDH_HQUERY = std::ptr::null_mut();
        // SAFETY: a null data source means live data; `handle` receives the query.
        let status = unsafe { PdhOpenQueryW(std::ptr::null(), 0, &mut handle) };
        if status != 0 {
            return Err(format!("PdhOpenQuery failed (0x{status:08X})"));
        }
        let mut query = Query {
            query: handle,
            counters: Vec::new(),
        };
        for path in paths {
            let mut counter: PDH_HCOUNTER = std::ptr::null_mut();
            let name = wide(path);
            // SAFETY: `name` is NUL-terminated UTF-16; `counter` receives the handle.
            let status =
                unsafe { PdhAddEnglishCounterW(query.query, name.as_ptr(), 0, &mut counter) };
            if status != 0 {
                return Err(format!(
                    "Windows' GPU counters are not available (0x{status:08X}, {path}): they \
                     need Windows 10 1709 or later"
                ));
            }
            query.counters.push(counter);
        }
        Ok(query)
    }

    /// One round: every counter's instances, in the order they were added. A rate counter
    /// (a percentage) has values from the second round on.
    pub fn collect(&self) -> Result<Vec<Items>, String> {
        // SAFETY: a valid open query.
        let status = unsafe { PdhCollectQueryData(self.query) };
        if status != 0 {
            return Err(read_failed(status));
        }
        self.counters.iter().map(|c| items(*c)).collect()
    }
}

/// Every instance of one counter: PDH's two-call pattern (size, then data).
fn items(counter: PDH_HCOUNTER) -> Result<Items, String> {
    let mut size = 0u32;
    let mut count = 0u32;
    let mut call = |buffer: *mut PDH_FMT_COUNTERVALUE_ITEM_W, size: &mut u32| {
        // SAFETY: `buffer` is null (asking for the size, as PDH documents) or holds at least
        // `size` bytes.
        unsafe { PdhGetFormattedCounterArrayW(counter, PDH_FMT_DOUBLE, size, &mut count, buffer) }
    };
    let status = call(std::ptr::null_mut(), &mut size);
    if status != PDH_MORE_DATA {
        // No instance yet, or a rate counter's first round: nothing to read, not a failure.
        return Ok(Vec::new());
    }
    // The item array comes first, the instance names after it, in one buffer: allocate it as
    // items so the array is aligned.
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
        // SAFETY: PDH_FMT_DOUBLE fills the union's doubleValue.
        let value = unsafe { item.FmtValue.Anonymous.doubleValue };
        out.push((name, value));
    }
    Ok(out)
}
