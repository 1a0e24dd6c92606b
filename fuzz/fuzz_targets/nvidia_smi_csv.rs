//! A CSV log someone hands to `vramdeck analyze` or the window (any bytes, any encoding).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = vramdeck::logs::import::import_reader(std::io::Cursor::new(data.to_vec()), "fuzz") {
        let _ = log.summary();
    }
});
