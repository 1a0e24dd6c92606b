//! "Busy but slow?" on every simulated pattern: each demo scenario produces the readings of one
//! case (the same fields NVML gives), and the diagnosis names it with its numbers.

mod common;
use common::vramdeck;

use std::time::{Duration, SystemTime};
use vramdeck::cli::diagnose::diagnose_snapshots;
use vramdeck::diagnosis::Verdict;
use vramdeck::telemetry::Snapshot;
use vramdeck::telemetry::sim::{Scenario, SimulatedGpus};

/// 20 s of readings at 10 Hz of one scenario, starting `from` seconds into its cycle.
fn verdict_of(scenario: Scenario, from: f64) -> vramdeck::diagnosis::Diagnosis {
    let mut sim = SimulatedGpus::new(vec![scenario], "test");
    let snapshots: Vec<Snapshot> = (0..200)
        .map(|i| {
            let t = from + i as f64 / 10.0;
            Snapshot {
                time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(1.8e9 + t),
                gpus: sim.sample_at(Duration::from_secs_f64(t)),
            }
        })
        .collect();
    diagnose_snapshots(&snapshots).remove(0).diagnosis
}

#[test]
fn each_demo_scenario_gets_its_verdict() {
    // The I2V run while its first expert samples: kernels back to back.
    assert_eq!(
        verdict_of(Scenario::wan22_i2v_double_peak(), 22.0).verdict,
        Verdict::GpuBound
    );
    let starved = verdict_of(Scenario::facefusion_cpu_starved(), 0.0);
    assert_eq!(starved.verdict, Verdict::CpuStarved);
    assert!(
        starved.gaps.count >= 20,
        "a gap every 0.8 s: {:?}",
        starved.gaps
    );
    assert_eq!(
        verdict_of(Scenario::comfyui_lowvram_offload(), 0.0).verdict,
        Verdict::PcieBound
    );
    // Flat out within a lowered power limit: the GPU is the limit, at that power.
    assert_eq!(
        verdict_of(Scenario::power_capped(), 0.0).verdict,
        Verdict::GpuBoundAtPowerLimit
    );
    assert_eq!(
        verdict_of(Scenario::nvenc_export(), 0.0).verdict,
        Verdict::EncoderBound
    );
    // FaceFusion at the article's 65-85 %: busy, but nothing holds it back.
    assert_eq!(
        verdict_of(Scenario::facefusion_fp16(), 14.0).verdict,
        Verdict::PartlyBusy
    );
    // Between jobs.
    assert_eq!(
        verdict_of(Scenario::wan22_i2v_double_peak(), 103.0).verdict,
        Verdict::Idle
    );
}

#[test]
fn every_verdict_names_the_numbers_it_rests_on() {
    let capped = verdict_of(Scenario::power_capped(), 0.0);
    assert!(
        capped
            .evidence
            .iter()
            .any(|e| e == "SM clock 2,120 MHz while busy, 76 % of its 2,790 MHz maximum"),
        "{:?}",
        capped.evidence
    );
    let pcie = verdict_of(Scenario::comfyui_lowvram_offload(), 0.0);
    assert!(
        pcie.evidence
            .iter()
            .any(|e| e.starts_with("PCIe 11,200 MB/s into the GPU")),
        "{:?}",
        pcie.evidence
    );
    for d in [capped, pcie] {
        assert!(!d.advice.is_empty());
    }
}

#[test]
fn the_cli_prints_a_verdict_per_gpu_as_json() {
    let (out, err, ok) = vramdeck(&["diagnose", "--demo", "--seconds", "2", "--json"], None);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "vramdeck.diagnose/1");
    let gpus = v["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), Scenario::all().len());
    let verdicts: Vec<&str> = gpus
        .iter()
        .map(|g| g["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        &verdicts[2..],
        [
            "cpu_starved",
            "pcie_bound",
            "gpu_bound_at_power_limit",
            "encoder_bound",
            "system_memory_fallback"
        ]
    );
    assert!(gpus[3]["evidence"].as_array().unwrap().len() >= 2);
    let (_, err, ok) = vramdeck(&["diagnose", "--demo", "--seconds", "1"], None);
    assert!(!ok && err.contains("not in 2..=600"), "{err}");
}
