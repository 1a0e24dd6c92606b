//! Logs in and out: nvidia-smi compatible CSV.

pub mod smi_csv;
