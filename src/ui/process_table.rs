//! Which processes hold VRAM on the selected GPU, with what each costs the GPU (SM time) and the
//! host (CPU, resident memory). The name comes last and is cut to the room left, so a long
//! command line never pushes a number out of the window. Clicking a row selects the process.

use crate::telemetry::ProcessInfo;
use crate::units::MemoryUnit;
use egui::{RichText, Ui};

/// Widths of the fixed columns (PID, VRAM, SM, CPU, host memory, type), points; the name takes
/// the rest.
const COLUMNS: [f32; 6] = [72.0, 100.0, 52.0, 60.0, 92.0, 40.0];
/// The shared GPU memory column, where the OS reports it (Windows).
const SHARED_COLUMN: f32 = 100.0;
/// The app each process belongs to (real processes only: a demo's belong to nobody).
const OWNER_COLUMN: f32 = 150.0;
/// Column headers (message ids).
const HEADERS: [&str; 6] = [
    "table-pid",
    "table-vram",
    "table-sm",
    "table-cpu",
    "table-host-ram",
    "table-type",
];
/// Column explanations (message ids).
const HINTS: [&str; 6] = [
    "table-pid-hover",
    "table-vram-hover",
    "table-sm-hover",
    "table-cpu-hover",
    "table-host-ram-hover",
    "table-type-hover",
];

fn cell(ui: &mut Ui, text: RichText, width: f32, height: f32, hint: Option<String>) {
    // Left-aligned in a fixed width (`add_sized` would centre it).
    ui.allocate_ui_with_layout(
        egui::vec2(width, height),
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_min_width(width);
            let r = ui.add(egui::Label::new(text).truncate().selectable(false));
            if let Some(hint) = hint {
                r.on_hover_text(hint);
            }
        },
    );
}

fn or_na<T>(value: Option<T>, f: impl Fn(T) -> String) -> String {
    value.map(f).unwrap_or_else(|| crate::t!("na"))
}

/// Draws the table, largest first; a click on a row selects its pid in `selected` (again:
/// unselects).
pub fn show(
    ui: &mut Ui,
    gpu_title: &str,
    processes: &[ProcessInfo],
    unit: MemoryUnit,
    owners: Option<&crate::release::holders::Owners>,
    selected: &mut Option<u32>,
) {
    ui.label(RichText::new(crate::t!("table-processes-on", gpu = gpu_title)).strong());
    if processes.is_empty() {
        ui.label(crate::t!("table-no-process"));
        return;
    }
    let height = ui.spacing().interact_size.y;
    // Windows says how much system memory the GPU reaches for each process (the sysmem
    // fallback's spill); the column is there whenever the OS reports it.
    let with_shared = processes.iter().any(|p| p.shared.is_some());
    ui.horizontal(|ui| {
        for ((h, w), hint) in HEADERS.iter().zip(COLUMNS).zip(HINTS) {
            cell(
                ui,
                RichText::new(crate::i18n::lookup(h, &[])).strong(),
                w,
                height,
                Some(crate::i18n::lookup(hint, &[])),
            );
            if with_shared && *h == "table-vram" {
                cell(
                    ui,
                    RichText::new(crate::t!("table-shared")).strong(),
                    SHARED_COLUMN,
                    height,
                    Some(crate::t!("table-shared-hover")),
                );
            }
        }
        if owners.is_some() {
            cell(
                ui,
                RichText::new(crate::t!("holder-column")).strong(),
                OWNER_COLUMN,
                height,
                Some(crate::t!("holder-column-hover")),
            );
        }
        ui.label(RichText::new(crate::t!("table-process")).strong());
    });
    for (i, p) in processes.iter().enumerate() {
        let start = ui.cursor().min;
        // The row's background goes behind it: a placeholder now, filled once its size is known.
        let background = ui.painter().add(egui::Shape::Noop);
        let cells = [
            p.pid.to_string(),
            or_na(p.used, |b| unit.format(b)),
            or_na(p.sm_util, |u| format!("{:.0} %", u.0)),
            or_na(p.cpu_percent, |c| format!("{c:.0} %")),
            or_na(p.host_rss, |b| unit.format(b)),
            p.kind.letters().to_string(),
        ];
        let row = ui
            .horizontal(|ui| {
                for (column, (text, width)) in cells.into_iter().zip(COLUMNS).enumerate() {
                    cell(ui, RichText::new(text), width, height, None);
                    if with_shared && column == 1 {
                        let shared = or_na(p.shared, |b| unit.format(b));
                        cell(ui, RichText::new(shared), SHARED_COLUMN, height, None);
                    }
                }
                // The app it belongs to (or what would free it), then the process.
                if let Some(owners) = owners {
                    let owner = owners.describe(p.pid, &p.name);
                    cell(
                        ui,
                        RichText::new(&owner).weak(),
                        OWNER_COLUMN,
                        height,
                        Some(owner),
                    );
                }
                ui.add(egui::Label::new(&p.name).truncate().selectable(false))
                    .on_hover_text(&p.name);
            })
            .response;
        let rect =
            egui::Rect::from_min_max(start, egui::pos2(ui.max_rect().right(), row.rect.bottom()));
        let id = ui.scope_id().with(("process_row", p.pid));
        let click = ui
            .interact(rect, id, egui::Sense::click())
            .on_hover_text(crate::t!("table-row-hover"));
        if click.clicked() {
            *selected = if *selected == Some(p.pid) {
                None
            } else {
                Some(p.pid)
            };
        }
        let fill = if *selected == Some(p.pid) {
            Some(ui.visuals().selection.bg_fill.gamma_multiply(0.5))
        } else if click.hovered() {
            Some(ui.visuals().widgets.hovered.weak_bg_fill)
        } else {
            (i % 2 == 0).then_some(ui.visuals().faint_bg_color)
        };
        if let Some(fill) = fill {
            ui.painter()
                .set(background, egui::Shape::rect_filled(rect, 2, fill));
        }
    }
}
