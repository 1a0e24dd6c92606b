//! The bottom line: how sampling is going.

use egui::Ui;
use std::time::Duration;

/// What the status bar reports.
pub struct Status {
    /// Interval in force.
    pub interval: Duration,
    /// Cost of the last read.
    pub last_read_cost: Duration,
    /// Readings since start.
    pub samples: u64,
    /// Oldest time still in history (UNIX seconds).
    pub since: Option<f64>,
    /// Settings could not be saved, if so.
    pub save_error: Option<String>,
    /// CSV recording.
    pub recording: crate::logs::recorder::RecordingStatus,
    /// Alerts firing now, as sentences.
    pub alerts: Vec<String>,
}

/// Draws the status line: always one row (long parts are cut, whole on hover), so nothing
/// above it moves when an alert starts or stops.
pub fn show(ui: &mut Ui, status: &Status) {
    ui.horizontal(|ui| {
        let mut text = crate::t!(
            "status-line",
            interval = super::top_bar::interval_label(status.interval.as_millis() as u64),
            cost = format!("{:.2}", status.last_read_cost.as_secs_f64() * 1_000.0),
            samples = status.samples
        );
        if let Some(since) = status.since {
            text.push_str(" · ");
            text.push_str(&crate::t!(
                "status-history-since",
                time = super::clock_time(since)
            ));
        }
        if status.recording.active
            && let Some(path) = &status.recording.path
        {
            text.push_str(" · ");
            text.push_str(&crate::t!(
                "status-recording-to",
                path = path.display().to_string(),
                size = crate::units::MemoryUnit::MiB
                    .format(crate::units::Bytes(status.recording.bytes))
            ));
        }
        if let Some(error) = &status.save_error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        if !status.alerts.is_empty() {
            let alert = match status.alerts.len() {
                1 => crate::t!("status-alert", alert = &status.alerts[0]),
                n => crate::t!("status-alert-more", alert = &status.alerts[0], more = n - 1),
            };
            let red = egui::Color32::from_rgb(0xd9, 0x48, 0x3b);
            ui.add(egui::Label::new(egui::RichText::new(alert).color(red).strong()).truncate())
                .on_hover_text(status.alerts.join("\n"));
            ui.separator();
        }
        ui.add(egui::Label::new(&text).truncate())
            .on_hover_text(text.clone());
    });
}
