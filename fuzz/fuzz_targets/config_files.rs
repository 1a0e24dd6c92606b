//! Settings, presets and calibration files (a shared preset file may come from anyone).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vramdeck::workloads::{advisor, calibration::Calibration, catalogue};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = vramdeck::settings::Settings::from_toml(&text);
    let _ = toml::from_str::<Calibration>(&text);
    if let Ok(presets) = catalogue::parse(&text, "fuzz") {
        let mut c = catalogue::Catalogue::load(None);
        c.merge_user(presets);
        for w in &c.workloads {
            let _ = w.reference_peak_mib();
        }
        let budget = advisor::Budget::new(
            vramdeck::units::Bytes::from_mib(12_000),
            vramdeck::units::Bytes::from_mib(12_288),
            25.0,
        );
        let _ = advisor::advise(&c, &budget, &Calibration::default());
    }
});
