//! Whatever answers on ComfyUI's port: the HTTP response and the JSON bodies vramdeck reads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vramdeck::release::comfyui::{QueueState, SystemStats, parse_response};

fuzz_target!(|data: &[u8]| {
    let body = parse_response(data).unwrap_or_else(|_| data.to_vec());
    let _ = serde_json::from_slice::<SystemStats>(&body);
    let _ = serde_json::from_slice::<QueueState>(&body);
});
