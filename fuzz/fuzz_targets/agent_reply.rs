//! A reply line from an agent (another process), decoded and summed as Free VRAM does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vramdeck::release::protocol::decode_reply;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = decode_reply(data, 1) {
        if let Some(freed) = reply.freed {
            let _ = freed.released_bytes.map(vramdeck::units::Bytes).map(|b| b.whole_mib());
        }
    }
});
