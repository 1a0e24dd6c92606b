//! The OOM analyser against the formats users really paste (tests/fixtures/logs, with where each
//! format comes from in tests/fixtures/LOG_SOURCES.md): the numbers read, the real cause named
//! first, and the concrete change.

use vramdeck::logs::oom::{Analysis, Cause, Era, OomKind, analyze_reader};
use vramdeck::units::{Bytes, MIB};
use vramdeck::workloads::calibration::Calibration;
use vramdeck::workloads::catalogue::Catalogue;

fn fixture(name: &str) -> Analysis {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name);
    let file = std::fs::File::open(path).unwrap();
    analyze_reader(file, &Catalogue::load(None), &Calibration::default()).unwrap()
}

fn gib(x: f64) -> Option<Bytes> {
    Some(Bytes((x * (1u64 << 30) as f64) as u64))
}

fn mib(x: f64) -> Option<Bytes> {
    Some(Bytes((x * MIB as f64) as u64))
}

fn only(name: &str) -> vramdeck::logs::oom::OomEvent {
    let a = fixture(name);
    assert_eq!(a.events.len(), 1, "{name}: {:#?}", a.events);
    a.events.into_iter().next().unwrap()
}

fn first_advice(e: &vramdeck::logs::oom::OomEvent) -> &str {
    e.advice.first().map(String::as_str).unwrap_or("")
}

#[test]
fn comfyuis_own_message_yields_its_numbers_and_says_the_request_exceeds_the_card() {
    // The console: the message after "!!! Exception during processing !!!" and again at the
    // traceback's end is one failure, counted once.
    let a = fixture("comfyui_0364_console_oom.log");
    assert_eq!((a.events.len(), a.total_events()), (1, 1));
    let e = &a.events[0];
    assert_eq!(
        (e.kind, e.era, e.cause),
        (OomKind::TorchAsync, Era::Async, Cause::LargerThanCard)
    );
    assert_eq!(e.numbers.requested, gib(4096.0));
    assert_eq!(e.numbers.total, gib(79.18));
    assert_eq!(e.numbers.free, gib(78.60));
    assert_eq!(e.numbers.allocated, Some(Bytes(0)));
    assert_eq!(e.numbers.limit, None, "16 EiB is the backend's 'no limit'");
    assert!(first_advice(e).contains("more than the whole card (79.2 GiB): no freeing can help"));
    // The same message as the error dialog shows it, without an exception class or a traceback.
    for dialog in [
        "comfyui_0364_exception_message.log",
        "comfyui_old_frontend_dialog.log",
    ] {
        let e = only(dialog);
        assert_eq!(
            (e.kind, e.cause),
            (OomKind::TorchAsync, Cause::LargerThanCard),
            "{dialog}"
        );
        assert_eq!(e.numbers.requested, gib(4096.0), "{dialog}");
    }
}

#[test]
fn comfyuis_short_allocation_on_device_message_is_caught_and_advised() {
    // PyTorch 2.3-2.5's cudaMallocAsync said only "Allocation on device ".
    let a = fixture("comfyui_allocation_on_device.log");
    assert_eq!((a.events.len(), a.total_events()), (1, 1));
    let e = &a.events[0];
    assert_eq!((e.line, e.kind), (6, OomKind::TorchAsync));
    assert!(
        first_advice(e).contains("--disable-cuda-malloc"),
        "{:?}",
        e.advice
    );
    assert!(first_advice(e).contains("--lowvram"));
}

#[test]
fn other_processes_are_named_and_blamed_whichever_order_pytorch_lists_them() {
    let first = only("torch211_fragmented_other_process_listed_first.log");
    assert_eq!(first.cause, Cause::OtherProcesses);
    assert_eq!(
        first.numbers.process_in_use,
        gib(31.13),
        "this process, not pid 918"
    );
    assert_eq!(first.numbers.others[0].pid, 918);
    assert!(
        first_advice(&first)
            .starts_with("other processes held 48.0 GiB of the card (pid 918 held 48.0 GiB)"),
        "{:?}",
        first.advice
    );
    assert!(first_advice(&first).contains("this process itself held 31.1 GiB"));
    let after = only("torch211_other_process_listed_after.log");
    assert_eq!(after.cause, Cause::OtherProcesses);
    assert_eq!(after.numbers.process_in_use, mib(518.0));
    assert!(first_advice(&after).contains("pid 547 held 48.0 GiB"));
}

#[test]
fn older_formats_infer_memory_held_outside_the_process() {
    let e = only("pytorch20_webui_other_programs.log");
    assert_eq!((e.era, e.cause), (Era::Torch14, Cause::OtherProcesses));
    assert!(
        first_advice(&e).starts_with("5.7 GiB was held outside this process's PyTorch cache"),
        "{:?}",
        e.advice
    );
}

#[test]
fn a_request_larger_than_the_card_says_no_freeing_helps() {
    let e = only("torch211_request_larger_than_card.log");
    assert_eq!((e.era, e.cause), (Era::Torch21, Cause::LargerThanCard));
    assert_eq!(e.numbers.requested, gib(118.77));
    assert!(first_advice(&e).contains("no freeing can help"));
    let e = only("torch211_async_backend.log");
    assert_eq!(e.cause, Cause::LargerThanCard);
}

#[test]
fn a_memory_fraction_limit_is_named_not_the_card() {
    for (name, limit) in [
        ("torch211_memory_fraction.log", 19.79),
        ("torch211_async_backend_memory_fraction.log", 19.79),
        ("pytorch1x_memory_fraction.log", 5.93),
    ] {
        let e = only(name);
        assert_eq!(e.cause, Cause::MemoryLimit, "{name}");
        assert_eq!(e.numbers.limit, gib(limit), "{name}");
        assert!(
            first_advice(&e).contains("set_per_process_memory_fraction"),
            "{name}"
        );
    }
}

#[test]
fn fragmentation_advice_fits_the_pytorch_era() {
    // 2.3 in a container: the failing process appears as "Process N" (its host pid).
    let e = only("pytorch23_fragmentation.log");
    assert_eq!((e.era, e.cause), (Era::Torch21, Cause::Fragmentation));
    assert_eq!(e.numbers.self_listed_as, Some(28411));
    assert!(
        first_advice(&e).contains("expandable_segments:True"),
        "{:?}",
        e.advice
    );
    // 1.10-2.0: expandable_segments did not exist yet; max_split_size_mb did.
    let e = only("pytorch1x_reserved.log");
    assert_eq!((e.era, e.cause), (Era::Torch14, Cause::Fragmentation));
    assert!(
        first_advice(&e).contains("max_split_size_mb:128"),
        "{:?}",
        e.advice
    );
    assert!(
        !e.advice
            .iter()
            .any(|a| a.contains("expandable_segments:True"))
    );
}

#[test]
fn the_1_0_era_cached_figure_counts_as_unallocated() {
    // c10/cuda/CUDACachingAllocator.cpp of 1.0-1.3 printed amount_cached - amount_allocated.
    let e = only("pytorch10_cached.log");
    assert_eq!(e.era, Era::Torch10);
    assert_eq!(e.numbers.allocated, mib(8.57));
    assert_eq!(
        e.numbers.reserved.map(|b| b.0 / 10_000),
        Some(((8.57 + 4.68) * MIB as f64) as u64 / 10_000)
    );
    // 9.28 GiB free yet 12.5 MiB failed.
    assert_eq!(e.cause, Cause::FreeButFailed);
    assert!(first_advice(&e).starts_with("9.3 GiB was free, more than the 13 MiB asked for"));
    assert!(!e.advice.iter().any(|a| a.contains("expandable_segments")));
}

#[test]
fn own_tensors_get_the_workloads_concrete_change() {
    let a = fixture("comfyui_ddcolor_oom.log");
    assert_eq!(a.events.len(), 2);
    let e = &a.events[0];
    assert_eq!((e.line, e.cause), (13, Cause::OwnTensors));
    assert_eq!(
        (e.numbers.total, e.numbers.allocated),
        (gib(12.0), gib(9.8))
    );
    assert_eq!(
        e.advice[1],
        "DDColor (ComfyUI): use size 960 instead of 1280 (the largest safe size on a 12.0 GiB card)"
    );
    assert_eq!(a.events[1].cause, Cause::AfterOverflow);

    let e = only("pytorch21_capacty.log");
    assert_eq!(e.cause, Cause::OwnTensors);
    assert_eq!(e.workload.as_ref().unwrap().preset_id, "wan21-t2v-14b-480p");
    assert!(
        e.advice
            .iter()
            .any(|a| a == "720p on a 14B model: drop to 480p or render fewer frames")
    );
    assert!(
        e.advice
            .iter()
            .any(|a| a.contains("enable quant_linear=True"))
    );

    let e = only("torch211_own_live_tensors.log");
    assert_eq!(e.cause, Cause::OwnTensors);
    assert!(e.advice[1].contains("decode in tiles"));
}

#[test]
fn facefusion_advice_uses_facefusions_real_options() {
    let a = fixture("facefusion_onnxruntime.log");
    assert_eq!(a.events.len(), 2);
    assert!(a.events.iter().all(|e| e.kind == OomKind::OnnxRuntime));
    assert_eq!(a.events[0].numbers.requested, Some(Bytes(1_073_741_824)));
    assert_eq!(a.events[1].numbers.gpu, Some(0));
    let advice = a.events[0].advice.join(" | ");
    assert!(advice.contains("--execution-thread-count 8"), "{advice}");
    assert!(
        !advice.contains("--fp16"),
        "FaceFusion has no --fp16 flag: {advice}"
    );
}

#[test]
fn onnxruntime_arena_caps_are_told_apart_from_a_full_card() {
    let e = only("onnxruntime_132_arena_cap_colour.log");
    assert_eq!(e.cause, Cause::MemoryLimit);
    assert_eq!(e.numbers.limit, Some(Bytes(67_108_864)));
    assert!(first_advice(&e).contains("gpu_mem_limit"));
    assert!(
        !e.text.contains('\u{1b}'),
        "colour codes are gone: {}",
        e.text
    );
    let e = only("onnxruntime_132_buffer.log");
    assert_eq!(e.numbers.requested, Some(Bytes(1 << 40)));
}

#[test]
fn logs_saved_by_powershell_or_prefixed_by_loggers_read_like_plain_text() {
    let e = only("powershell_utf16le_crlf.log");
    assert_eq!(
        (e.line, e.era, e.cause),
        (4, Era::Torch21, Cause::OwnTensors)
    );
    assert_eq!(e.numbers.total, gib(11.99));
    assert!(!e.text.contains('\r'));
    let e = only("logger_prefixed_async_backend.log");
    assert_eq!(e.kind, OomKind::TorchAsync);
    assert_eq!(e.numbers.requested, gib(3.52));
    assert_eq!(e.numbers.allocated, gib(37.41));
    assert_eq!(e.numbers.free, gib(1.07));
    assert_eq!(
        e.workload.as_ref().unwrap().preset_id,
        "wan21-t2v-14b-480p-quant"
    );
}

#[test]
fn runtime_and_library_failures_are_listed_with_their_causes() {
    let a = fixture("cublas_and_cuda_error.log");
    let kinds: Vec<OomKind> = a.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![OomKind::Cublas, OomKind::CudaError]);
    assert_eq!(a.events[1].cause, Cause::RuntimeAllocation);
    let e = only("torch211_cuda_error_context_creation.log");
    assert_eq!(
        (e.kind, e.cause),
        (OomKind::CudaError, Cause::RuntimeAllocation)
    );
    assert!(first_advice(&e).contains("CUDA context"));
    assert_eq!(only("cudnn_alloc_failed.log").kind, OomKind::Cudnn);
}

#[test]
fn a_clean_log_has_no_events() {
    let a = fixture("no_errors.log");
    assert!(a.events.is_empty());
    assert_eq!(a.lines, 5);
    assert_eq!(a.summary(), "no CUDA out-of-memory events in 5 lines");
}

#[test]
fn every_fixture_but_the_clean_one_has_an_event_and_a_piece_of_advice() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "no_errors.log" {
            continue;
        }
        let a = fixture(&name);
        assert!(!a.events.is_empty(), "{name}: no event");
        for e in &a.events {
            assert!(!e.advice.is_empty(), "{name} line {}: no advice", e.line);
        }
    }
}

#[test]
fn comfyuis_internal_logs_json_yields_every_oom_once() {
    // GET /internal/logs is one JSON string: a single "line" with \n escapes. Read as lines
    // of text, the three reports are three failures, each counted once (ComfyUI repeats each
    // at its traceback's end).
    let a = fixture("comfyui_0364_internal_logs.json");
    let requested: Vec<_> = a.events.iter().map(|e| e.numbers.requested).collect();
    assert_eq!(
        requested,
        vec![gib(2.25), gib(1.5), mib(960.0)],
        "{:#?}",
        a.events
    );
    assert_eq!(a.total_events(), 3);
    assert!(a.events.iter().all(|e| e.numbers.gpu == Some(0)));
    assert!(
        a.events[2]
            .text
            .contains(" - !!! Exception during processing !!! CUDA out of memory"),
        "{}",
        a.events[2].text
    );
}

#[test]
fn private_pools_keep_the_numbers_of_the_failing_process() {
    let e = only("pytorch_private_pools.log");
    assert_eq!(e.numbers.allocated, gib(21.92));
    assert_eq!(e.numbers.private_pools, mib(104.0));
    assert_eq!(
        e.numbers.reserved.map(|b| b.0),
        Some(gib(21.92).unwrap().0 + mib(797.79).unwrap().0)
    );
    assert_eq!(
        (e.numbers.self_listed_as, e.numbers.process_in_use),
        (Some(4121), gib(23.33))
    );
    // Quoted whole: PyTorch's line is 560 characters.
    assert!(e.text.ends_with("cuda-alloc-conf)"), "{}", e.text);
}

#[test]
fn an_onnxruntime_failure_inside_a_tqdm_progress_line_is_found() {
    let e = only("facefusion_tqdm_onnxruntime.log");
    assert_eq!(e.kind, OomKind::OnnxRuntime);
    assert_eq!(e.numbers.requested, gib(2.0));
    // The line is the bar's last redraw and the error, not 83 KB of redraws.
    assert!(e.text.starts_with("processing:"), "{}", e.text);
    assert!(e.text.len() < 1_500, "{}", e.text.len());
}

#[test]
fn cublas_failures_take_the_device_the_log_named() {
    // Two failures with the same numbers: one event seen twice (each echo at its traceback's
    // end is not counted again).
    let a = fixture("cublas_device_named_earlier.log");
    assert_eq!(
        (a.events.len(), a.total_events()),
        (1, 2),
        "{:#?}",
        a.events
    );
    for e in &a.events {
        assert_eq!((e.kind, e.numbers.gpu), (OomKind::Cublas, Some(1)));
    }
    // A quote longer than the limit is cut at a word, with an ellipsis.
    let long = "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasLtMatmul( ltHandle, ".to_string()
        + &"workspace.mutable_data_ptr(), ".repeat(60);
    let a = vramdeck::logs::oom::analyze(&long, &Catalogue::load(None), &Calibration::default());
    let text = &a.events[0].text;
    assert!(text.ends_with("workspace.mutable_data_ptr(),…"), "{text}");
}

// -- the LLM side of a shared card, and other stacks (formats in LOG_SOURCES.md) ------------

#[test]
fn llama_cpps_failed_cuda_malloc_and_its_follow_up_lines_are_one_failure_with_exact_bytes() {
    let e = only("llamacpp_server_cuda_kv_cache.log");
    assert_eq!(e.kind, OomKind::Ggml);
    assert_eq!(e.line, 9);
    // The buffer line's exact size wins over the rounded MiB figure.
    assert_eq!(e.numbers.requested, Some(Bytes(17_179_869_184)));
    assert_eq!(e.numbers.gpu, Some(0));
    assert!(first_advice(&e).contains("-ngl"), "{:?}", e.advice);
    assert!(first_advice(&e).contains("cache-type-k"), "{:?}", e.advice);
}

#[test]
fn ollamas_journald_copies_under_rocm_are_read_through_their_prefix() {
    let e = only("ollama_journald_rocm.log");
    assert_eq!(e.kind, OomKind::Ggml);
    // The ROCm0 buffer's exact size and device.
    assert_eq!(e.numbers.requested, Some(Bytes(1 << 30)));
    assert_eq!(e.numbers.gpu, Some(0));
    assert!(first_advice(&e).contains("num_gpu"), "{:?}", e.advice);
}

#[test]
fn two_ranks_failing_one_after_the_other_are_two_failures_and_cumem_is_named() {
    let a = fixture("vllm_two_ranks_sampler_and_cumem.log");
    let kinds: Vec<_> = a.events.iter().map(|e| (e.kind, e.numbers.rank)).collect();
    assert_eq!(
        kinds,
        vec![
            (OomKind::Torch, Some(0)),
            (OomKind::Torch, Some(1)),
            (OomKind::VllmCumem, None)
        ]
    );
    assert!(first_advice(&a.events[0]).contains("--max-num-seqs"));
    assert!(first_advice(&a.events[2]).contains("--gpu-memory-utilization"));
}

#[test]
fn xlas_bfc_report_its_summary_and_the_exception_are_one_failure_and_a_warning_is_none() {
    let e = only("jax_xla_bfc.log");
    assert_eq!(e.kind, OomKind::Xla);
    assert_eq!(e.numbers.requested, Some(Bytes(17_179_869_184)));
    assert_eq!(e.numbers.gpu, Some(0));
    assert_eq!(e.numbers.limit, Some(Bytes(63_771_377_664)));
    assert_eq!(e.numbers.allocated, Some(Bytes(52_613_349_376)));
    assert_eq!(e.cause, Cause::MemoryLimit);
    assert!(
        e.advice
            .iter()
            .any(|a| a.contains("XLA_PYTHON_CLIENT_MEM_FRACTION")),
        "{:?}",
        e.advice
    );
}

#[test]
fn apples_limit_is_a_limit_with_other_allocations_not_a_card() {
    let e = only("mps_high_watermark.log");
    assert_eq!(e.kind, OomKind::Mps);
    // MPSAllocator's own format_size: "GB" and "MB" are binary.
    assert_eq!(e.numbers.allocated, gib(17.36));
    assert_eq!(e.numbers.other_allocations, mib(613.56));
    assert_eq!(e.numbers.limit, gib(18.13));
    assert_eq!(e.numbers.requested, mib(192.0));
    assert_eq!(e.numbers.total, None, "max allowed is not the card");
    assert_eq!(e.cause, Cause::MemoryLimit);
    assert!(first_advice(&e).contains("PYTORCH_MPS_HIGH_WATERMARK_RATIO"));
    assert!(
        first_advice(&e).contains("614 MiB in other allocations"),
        "{:?}",
        e.advice
    );
}

#[test]
fn rocms_hip_message_gets_the_torch_figures_and_hip_settings() {
    let e = only("rocm_hip_out_of_memory.log");
    assert_eq!(e.kind, OomKind::Hip);
    assert_eq!(e.era, Era::Torch21);
    assert_eq!(e.numbers.total, gib(23.98));
    assert_eq!(e.cause, Cause::Fragmentation);
    assert!(
        first_advice(&e).contains("PYTORCH_HIP_ALLOC_CONF"),
        "{:?}",
        e.advice
    );
    assert!(
        !e.advice
            .iter()
            .any(|a| a.contains("PYTORCH_CUDA_ALLOC_CONF"))
    );
}

#[test]
fn dynamic_vrams_mapping_failure_is_said_not_to_be_an_out_of_memory() {
    let e = only("comfyui_aimdo_not_oom.log");
    assert_eq!(e.kind, OomKind::AimdoNotOom);
    assert_eq!(e.cause, Cause::NotOutOfMemory);
    assert!(first_advice(&e).starts_with("not an out-of-memory"));
    assert!(!e.advice.iter().any(|a| a.contains("lower resolution")));
}

#[test]
fn a_cublas_failure_naming_its_gpu_keeps_it() {
    let e = only("onnxruntime_cublas_gpu_named.log");
    assert_eq!(e.kind, OomKind::Cublas);
    assert_eq!(e.numbers.gpu, Some(1));
}
