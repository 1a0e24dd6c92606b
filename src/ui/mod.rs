//! The egui front end. Panels only draw and collect clicks; all I/O happens on other threads.

pub mod advisor_panel;
pub mod alerts_panel;
pub mod app;
pub mod banners;
pub mod gpu_card;
pub mod logs_view;
pub mod mini_view;
pub mod plots;
pub mod process_table;
pub mod release_panel;
pub mod status_bar;
pub mod top_bar;

pub use app::VramDeckApp;

/// Colour for a VRAM fill level: green, amber from 75 %, red from 90 % (the seed's alert level).
pub fn pressure_color(fraction: f32) -> egui::Color32 {
    if fraction >= 0.90 {
        egui::Color32::from_rgb(0xd9, 0x48, 0x3b)
    } else if fraction >= 0.75 {
        egui::Color32::from_rgb(0xe0, 0x9b, 0x22)
    } else {
        egui::Color32::from_rgb(0x3b, 0xa5, 0x5c)
    }
}

/// Local wall-clock time of a UNIX timestamp, `HH:MM:SS`.
pub fn clock_time(unix_seconds: f64) -> String {
    use chrono::{Local, TimeZone};
    let whole = unix_seconds.floor() as i64;
    match Local.timestamp_opt(whole, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%H:%M:%S").to_string()
        }
        chrono::LocalResult::None => String::new(),
    }
}
