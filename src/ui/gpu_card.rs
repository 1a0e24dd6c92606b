//! One GPU at a glance: VRAM bar with used / total, utilisation, temperature, power, clocks.

use super::pressure_color;
use crate::telemetry::GpuSample;
use crate::units::{MemoryUnit, format_used_total};
use egui::{RichText, Ui};

/// "1.2 GB/s", "340 MB/s" (decimal units, as PCIe is specified).
fn rate(mbs: f32) -> String {
    if mbs >= 1_000.0 {
        format!("{:.1} GB/s", mbs / 1_000.0)
    } else {
        format!("{mbs:.0} MB/s")
    }
}

fn or_na<T: std::fmt::Display>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| crate::t!("na"))
}

/// Draws the card; returns true when the user clicked it to select this GPU.
pub fn show(ui: &mut Ui, gpu: &GpuSample, unit: MemoryUnit, selected: bool) -> bool {
    let stroke_color = if selected {
        ui.visuals().selection.stroke.color
    } else {
        ui.visuals().widgets.noninteractive.bg_stroke.color
    };
    let response = egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(
            if selected { 2.0 } else { 1.0 },
            stroke_color,
        ))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(format!("{} · {}", gpu.title(), gpu.name)).strong());
            if let Some(seconds) = gpu.remote.as_ref().and_then(|r| r.stale_seconds) {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    if seconds >= 1.0 {
                        crate::t!("card-stale-seconds", seconds = format!("{seconds:.0}"))
                    } else {
                        crate::t!("card-stale")
                    },
                );
            }
            if gpu.asleep {
                ui.label(crate::t!("card-asleep"));
                ui.label(RichText::new(crate::t!("card-asleep-why")).weak());
                return;
            }
            let memory = &gpu.memory;
            let fraction = memory.used_fraction();
            ui.label(format_used_total(memory.used, memory.total, unit));
            ui.add(
                egui::ProgressBar::new(fraction)
                    // Square ends: a short rounded fill looked like a badge, not a level.
                    .corner_radius(2)
                    .fill(pressure_color(fraction))
                    .text(
                        RichText::new(crate::t!(
                            "card-used-percent",
                            percent = format!("{:.0}", fraction * 100.0)
                        ))
                        .color(super::bar_text_color(ui.visuals())),
                    ),
            );
            ui.label(
                RichText::new(crate::t!(
                    "card-free-reserved",
                    free = unit.format(memory.free),
                    reserved = unit.format(memory.reserved)
                ))
                .small(),
            );
            egui::Grid::new(("gpu_card_grid", gpu.index))
                .num_columns(2)
                // Fixed widths: a grid whose columns resize (values change width every
                // sample) asks egui for extra passes, tripling the cost of each update.
                .min_col_width((ui.available_width() - 12.0) / 2.0)
                .spacing([12.0, 2.0])
                .show(ui, |ui| {
                    ui.label(crate::t!("card-gpu-util"));
                    ui.label(or_na(gpu.gpu_util));
                    ui.end_row();
                    ui.label(crate::t!("card-memory-util"));
                    ui.label(or_na(gpu.memory_util));
                    ui.end_row();
                    ui.label(crate::t!("card-temperature"));
                    ui.label(or_na(gpu.temperature));
                    ui.end_row();
                    ui.label(crate::t!("card-power"));
                    ui.label(match (gpu.power, gpu.power_limit) {
                        (Some(p), Some(l)) => format!("{p} / {l}"),
                        (p, _) => or_na(p),
                    });
                    ui.end_row();
                    ui.label(crate::t!("card-clocks"));
                    ui.label(format!(
                        "{} / {}",
                        or_na(gpu.sm_clock),
                        or_na(gpu.memory_clock)
                    ));
                    ui.end_row();
                    ui.label(crate::t!("card-fan"));
                    ui.label(or_na(gpu.fan));
                    ui.end_row();
                    let a = &gpu.activity;
                    ui.label(crate::t!("card-engines"));
                    ui.label(format!(
                        "{} / {}",
                        or_na(a.encoder_util),
                        or_na(a.decoder_util)
                    ));
                    ui.end_row();
                    ui.label(crate::t!("card-pcie"));
                    ui.label(match (a.pcie_rx_mbs, a.pcie_tx_mbs) {
                        (Some(rx), Some(tx)) => format!("{} / {}", rate(rx), rate(tx)),
                        _ => crate::t!("na"),
                    });
                    ui.end_row();
                    ui.label(crate::t!("card-clock-held"));
                    let events = a.clock_events.map(|e| e.describe());
                    let slowing = a.clock_events.is_some_and(|e| e.slowing());
                    let text = RichText::new(events.unwrap_or_else(|| crate::t!("na")));
                    ui.add(
                        egui::Label::new(if slowing {
                            text.color(super::pressure_color(0.8))
                        } else {
                            text
                        })
                        .truncate(),
                    )
                    .on_hover_text(crate::t!("card-clock-held-hover"));
                    ui.end_row();
                });
        })
        .response;
    let id = ui.scope_id().with(("gpu_card", gpu.index));
    ui.interact(response.rect, id, egui::Sense::click())
        .on_hover_text(crate::t!("card-click-hover"))
        .clicked()
}
