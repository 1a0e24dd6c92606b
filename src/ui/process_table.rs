//! Which processes hold VRAM on the selected GPU.

use crate::telemetry::ProcessInfo;
use crate::units::MemoryUnit;
use egui::{RichText, Ui};

/// Draws the table, largest first.
pub fn show(ui: &mut Ui, gpu_index: u32, processes: &[ProcessInfo], unit: MemoryUnit) {
    ui.label(RichText::new(format!("Processes on GPU {gpu_index}")).strong());
    if processes.is_empty() {
        ui.label("No process holds memory on this GPU.");
        return;
    }
    egui::Grid::new(("process_table", gpu_index))
        .striped(true)
        .num_columns(4)
        // Wide enough for the changing VRAM figures: a resizing grid costs extra passes.
        .min_col_width(96.0)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            for header in ["PID", "Process", "Type", "VRAM"] {
                ui.label(RichText::new(header).strong());
            }
            ui.end_row();
            for p in processes {
                ui.label(p.pid.to_string());
                ui.label(&p.name);
                ui.label(p.kind.letters());
                ui.label(match p.used {
                    Some(b) => unit.format(b),
                    // Windows (WDDM) and some containers hide per-process usage.
                    None => "not reported".into(),
                });
                ui.end_row();
            }
        });
}
