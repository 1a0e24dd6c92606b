//! vramdeck: watch what an NVIDIA GPU is doing, choose settings that fit in VRAM, and release
//! cached VRAM, next to an AI WebUI.
//!
//! The library holds everything; the binary (`src/main.rs`) only parses arguments and opens
//! the window, so tests and benchmarks drive the same code the app runs.

pub mod alerts;
pub mod bench;
pub mod bench_offscreen;
pub mod cli;
pub mod diagnosis;
pub mod i18n;
pub mod logs;
pub mod persist;
pub mod platform;
pub mod release;
pub mod remote;
pub mod serve;
pub mod settings;
pub mod telemetry;
pub mod text;
pub mod ui;
pub mod units;
pub mod workloads;
