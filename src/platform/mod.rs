//! What differs between operating systems, one small module per concern, each with the same
//! interface on every platform; the rest of the code asks here instead of testing `cfg`s.

pub mod agent_socket;
pub mod autostart;
pub mod console;
pub mod file_dialog;
pub mod files;
pub mod fonts;
pub mod gpu_adapters;
pub mod gpu_memory;
pub mod listeners;
pub mod locale;
pub mod notify;
#[cfg(windows)]
pub mod pdh;
pub mod process;
pub mod process_info;
pub mod tray;
pub mod window;
