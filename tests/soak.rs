//! 24 simulated hours at 10 Hz through the sampler's per-reading step (history, alerts, latest),
//! in accelerated time: memory stays bounded.

use std::time::{Duration, SystemTime};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::Telemetry;
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_day_at_10_hz_keeps_memory_bounded() {
    let mut sim = SimulatedGpus::demo("soak");
    let mut t = Telemetry::new(
        sim.kind(),
        Duration::from_millis(100),
        HistoryConfig::default(),
    );
    let mut alerts = vramdeck::alerts::AlertState::default();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    // Raw 6,000 + 3,600 one-second + 8,640 ten-second buckets per GPU, three GPUs.
    let bound = 3 * (6_000 + 3_600 + 8_640 + 2);
    let mut rss_after_first_hour = 0;
    for i in 0..864_000u64 {
        let elapsed = Duration::from_millis(i * 100);
        // What the sampler thread does with each reading: its observers, then history.
        let snapshot = Snapshot {
            time: start + elapsed,
            gpus: sim.sample_at(elapsed),
        };
        alerts.observe(&snapshot);
        t.record(snapshot);
        if i % 36_000 == 35_999 {
            assert!(
                t.history.stored_entries() <= bound,
                "hour {}: {}",
                i / 36_000,
                t.history.stored_entries()
            );
            assert!(alerts.engine.recent().len() <= vramdeck::alerts::RECENT_EVENTS);
            if i == 35_999 {
                rss_after_first_hour = resident_kib();
            }
        }
    }
    assert_eq!(t.history.samples_total(), 864_000);
    let span = t.history.newest(0).unwrap() - t.history.oldest(0).unwrap();
    assert!(span >= 86_390.0, "a whole day is still there: {span}");
    // Hours 2-24 allocate nothing lasting: resident memory grows by less than 16 MiB.
    let growth = resident_kib().saturating_sub(rss_after_first_hour);
    assert!(
        growth < 16 * 1024,
        "RSS grew {growth} KiB after the first hour"
    );
}
