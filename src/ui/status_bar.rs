//! The bottom line: how sampling is going.

use crate::units::group_thousands;
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
}

/// Draws the status line.
pub fn show(ui: &mut Ui, status: &Status) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "Sampling every {} ms · last read {:.2} ms · {} readings",
            status.interval.as_millis(),
            status.last_read_cost.as_secs_f64() * 1_000.0,
            group_thousands(status.samples)
        ));
        if let Some(since) = status.since {
            ui.label(format!("· history since {}", super::clock_time(since)));
        }
        if status.recording.active
            && let Some(path) = &status.recording.path
        {
            ui.label(format!(
                "· recording to {} ({})",
                path.display(),
                crate::units::MemoryUnit::MiB.format(crate::units::Bytes(status.recording.bytes))
            ));
        }
        if let Some(error) = &status.save_error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
    });
}
