//! The OOM analyser against real-world log formats (tests/fixtures/logs).

use vramdeck::logs::oom::{OomKind, analyze};
use vramdeck::units::{Bytes, MIB};
use vramdeck::workloads::calibration::Calibration;
use vramdeck::workloads::catalogue::Catalogue;

fn fixture(name: &str) -> vramdeck::logs::oom::Analysis {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    analyze(&text, &Catalogue::load(None), &Calibration::default())
}

fn gib(x: f64) -> Option<Bytes> {
    Some(Bytes((x * (1u64 << 30) as f64) as u64))
}

fn mib(x: f64) -> Option<Bytes> {
    Some(Bytes((x * MIB as f64) as u64))
}

#[test]
fn comfyui_ddcolor_oom_is_read_with_the_seed_numbers_and_a_smaller_size() {
    let a = fixture("comfyui_ddcolor_oom.log");
    assert_eq!(a.events.len(), 2);
    let e = &a.events[0];
    assert_eq!((e.line, e.kind, e.gpu), (13, OomKind::Torch, Some(0)));
    assert_eq!(e.requested, gib(1.2));
    assert_eq!(e.total, gib(12.0));
    assert_eq!(e.allocated, gib(9.8));
    assert_eq!(e.free, mib(512.0));
    assert_eq!(e.workload.as_ref().unwrap().size, Some(1280));
    assert_eq!(
        e.advice[0],
        "DDColor (ComfyUI): use size 960 instead of 1280 (the largest safe size on a 12.0 GiB card)"
    );
    assert_eq!(
        e.advice[1],
        "needed 1.2 GiB with 512 MiB free at 12.0 GiB total"
    );
    assert_eq!(a.events[1].kind, OomKind::IllegalAccess);
}

#[test]
fn pytorch_2_3_message_with_fragmentation_suggests_expandable_segments() {
    let e = &fixture("pytorch23_fragmentation.log").events[0];
    assert_eq!(e.requested, gib(3.52));
    assert_eq!(e.total, gib(47.50));
    assert_eq!(e.free, gib(2.11));
    assert_eq!(e.process_in_use, gib(45.38));
    assert_eq!(e.allocated, gib(36.02));
    assert_eq!(
        e.reserved.map(|b| b.0 / MIB),
        Some((36.02f64 * 1024.0 + 8.91 * 1024.0) as u64)
    );
    assert!(e.fragmentation);
    assert!(
        e.advice
            .iter()
            .any(|a| a.contains("expandable_segments:True")),
        "{:?}",
        e.advice
    );
    // No model size in the log: no guess at a Wan preset.
    assert!(e.workload.is_none());
}

#[test]
fn pytorch_2_1_typo_capacty_and_wan_14b_720p_are_recognised() {
    let e = &fixture("pytorch21_capacty.log").events[0];
    assert_eq!(e.total, gib(47.99));
    assert_eq!(e.free, gib(1.13));
    assert_eq!(e.process_in_use, gib(46.85));
    assert!(
        !e.fragmentation,
        "421 MiB cached is less than the 2 GiB asked for"
    );
    assert_eq!(e.workload.as_ref().unwrap().preset_id, "wan21-t2v-14b-480p");
    assert_eq!(
        e.advice[0],
        "720p on a 14B model: drop to 480p or render fewer frames"
    );
    assert!(
        e.advice[1].contains("enable quant_linear=True"),
        "{:?}",
        e.advice
    );
}

#[test]
fn pytorch_1_x_reserved_format() {
    let e = &fixture("pytorch1x_reserved.log").events[0];
    assert_eq!(e.requested, mib(20.0));
    assert_eq!(e.total, gib(15.90));
    assert_eq!(e.allocated, gib(14.63));
    assert_eq!(e.free, mib(9.88));
    assert_eq!(e.reserved, gib(14.86));
    assert!(e.fragmentation);
}

#[test]
fn pytorch_1_0_cached_format_points_at_memory_outside_pytorch() {
    let e = &fixture("pytorch10_cached.log").events[0];
    assert_eq!(e.reserved, mib(4.68));
    assert_eq!(e.free, gib(9.28));
    assert!(
        e.advice
            .iter()
            .any(|a| a.starts_with("1.6 GiB was held outside PyTorch's cache")),
        "{:?}",
        e.advice
    );
}

#[test]
fn onnxruntime_failures_in_facefusion_suggest_a_smaller_batch() {
    let a = fixture("facefusion_onnxruntime.log");
    assert_eq!(a.events.len(), 2);
    assert!(a.events.iter().all(|e| e.kind == OomKind::OnnxRuntime));
    assert_eq!(a.events[0].requested, Some(Bytes(1_073_741_824)));
    assert_eq!(a.events[1].gpu, Some(0));
    assert_eq!(
        a.events[0].advice[0],
        "FaceFusion (FP16): use batch 8 or less instead of 16, with --fp16"
    );
}

#[test]
fn cublas_and_cuda_runtime_failures_are_listed() {
    let kinds: Vec<OomKind> = fixture("cublas_and_cuda_error.log")
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![OomKind::Cublas, OomKind::CudaError]);
}

#[test]
fn comfyui_allocation_on_device_counts_once() {
    let a = fixture("comfyui_allocation_on_device.log");
    assert_eq!(a.events.len(), 1);
    assert_eq!(a.events[0].line, 10);
}

#[test]
fn a_clean_log_has_no_events() {
    let a = fixture("no_errors.log");
    assert!(a.events.is_empty());
    assert_eq!(a.lines, 5);
}
