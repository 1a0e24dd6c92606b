//! A console log read for out-of-memory events, with advice built from its numbers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vramdeck::workloads::{calibration::Calibration, catalogue::Catalogue};

fuzz_target!(|data: &[u8]| {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    let catalogue = CATALOGUE.get_or_init(|| Catalogue::load(None));
    let analysis = vramdeck::logs::oom::analyze_reader(
        std::io::Cursor::new(data.to_vec()),
        catalogue,
        &Calibration::default(),
    )
    .expect("reading memory cannot fail");
    let _ = analysis.total_events();
});
