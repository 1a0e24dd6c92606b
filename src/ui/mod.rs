//! The egui front end. Panels only draw and collect clicks; all I/O happens on other threads.

pub mod advisor_panel;
pub mod alerts_panel;
pub mod app;
pub mod banners;
pub mod diagnosis_panel;
pub mod file_picker;
pub mod files;
pub mod fonts;
pub mod gpu_card;
pub mod hosts_panel;
pub mod layout;
pub mod logs_view;
pub mod mini_view;
pub mod plots;
pub mod process_table;
pub mod release_panel;
pub mod status_bar;
pub mod top_bar;
pub mod window_state;

pub use app::VramDeckApp;

/// Asks for one repaint from another thread (a new sample, a worker event).
///
/// egui answers a zero-delay request with two passes "to let things settle"; a new reading needs
/// one, because the pass reads the newest data when it runs. On a software renderer each pass is
/// ~30 ms of rasterising, so this halves the idle cost of an open window.
pub fn wake(ctx: &egui::Context) {
    ctx.request_repaint_after(std::time::Duration::from_millis(1));
}

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

/// Text on a VRAM bar: readable on the fill colour and on the empty track (near black in the
/// dark theme, near white in the light one).
pub fn bar_text_color(visuals: &egui::Visuals) -> egui::Color32 {
    if visuals.dark_mode {
        egui::Color32::WHITE
    } else {
        visuals.strong_text_color()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One headless pass; its texture uploads are dropped (there is no renderer here).
    fn pass(ctx: &egui::Context) {
        let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
            ui.label("x");
        });
        out.textures_delta.clear();
    }

    /// Passes egui runs after a request from another thread, until it asks for no more.
    fn passes_after(request: impl Fn(&egui::Context)) -> usize {
        let ctx = egui::Context::default();
        // Settle: egui paints a couple of passes at start-up.
        for _ in 0..3 {
            pass(&ctx);
        }
        assert!(!ctx.has_requested_repaint());
        request(&ctx);
        let mut passes = 0;
        while ctx.has_requested_repaint() && passes < 10 {
            pass(&ctx);
            passes += 1;
        }
        passes
    }

    #[test]
    fn a_new_reading_costs_one_pass_not_two() {
        assert_eq!(passes_after(wake), 1);
        // What egui does for a plain request, and why `wake` exists.
        assert_eq!(passes_after(|ctx| ctx.request_repaint()), 2);
    }
}
