//! Which processes hold VRAM on the selected GPU. The name comes last and is cut to the room
//! left, so a long command line can never push the VRAM column out of the window.

use crate::telemetry::ProcessInfo;
use crate::units::MemoryUnit;
use egui::{RichText, Ui};

/// Widths of the fixed columns (PID, VRAM, type), points; the name takes the rest.
const COLUMNS: [f32; 3] = [72.0, 110.0, 44.0];

fn row(ui: &mut Ui, cells: [RichText; 3], name: RichText, hover: Option<&str>) {
    ui.horizontal(|ui| {
        let height = ui.spacing().interact_size.y;
        for (cell, width) in cells.into_iter().zip(COLUMNS) {
            // Left-aligned in a fixed width (`add_sized` would centre it).
            ui.allocate_ui_with_layout(
                egui::vec2(width, height),
                egui::Layout::left_to_right(egui::Align::Center),
                |ui| {
                    ui.set_min_width(width);
                    ui.add(egui::Label::new(cell).truncate());
                },
            );
        }
        let name = ui.add(egui::Label::new(name).truncate());
        if let Some(full) = hover {
            name.on_hover_text(full);
        }
    });
}

/// Draws the table, largest first.
pub fn show(ui: &mut Ui, gpu_index: u32, processes: &[ProcessInfo], unit: MemoryUnit) {
    ui.label(RichText::new(format!("Processes on GPU {gpu_index}")).strong());
    if processes.is_empty() {
        ui.label("No process holds memory on this GPU.");
        return;
    }
    row(
        ui,
        [
            RichText::new("PID").strong(),
            RichText::new("VRAM").strong(),
            RichText::new("Type").strong(),
        ],
        RichText::new("Process").strong(),
        None,
    );
    for (i, p) in processes.iter().enumerate() {
        let vram = match p.used {
            Some(b) => unit.format(b),
            // Windows (WDDM) and some containers hide per-process usage.
            None => "n/a".into(),
        };
        let start = ui.cursor().min;
        // Stripes go behind the row: a placeholder now, filled once the row's height is known.
        let stripe = ui.painter().add(egui::Shape::Noop);
        row(
            ui,
            [
                RichText::new(p.pid.to_string()),
                RichText::new(vram),
                RichText::new(p.kind.letters()),
            ],
            RichText::new(&p.name),
            Some(&p.name),
        );
        if i % 2 == 0 {
            let end = egui::pos2(ui.max_rect().right(), ui.cursor().min.y);
            ui.painter().set(
                stripe,
                egui::Shape::rect_filled(
                    egui::Rect::from_min_max(start, end),
                    2,
                    ui.visuals().faint_bg_color,
                ),
            );
        }
    }
}
