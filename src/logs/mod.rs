//! Logs in and out: nvidia-smi compatible CSV.

pub mod import;
pub mod oom;
pub mod recorder;
pub mod smi_csv;
