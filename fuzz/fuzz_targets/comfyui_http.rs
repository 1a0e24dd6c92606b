//! Whatever answers on ComfyUI's port: the JSON bodies vramdeck reads (HTTP itself is ureq's).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vramdeck::release::comfyui::{QueueState, SystemStats};

fuzz_target!(|data: &[u8]| {
    if let Ok(stats) = serde_json::from_slice::<SystemStats>(data) {
        let _ = stats.dynamic_vram();
    }
    let _ = serde_json::from_slice::<QueueState>(data);
});
