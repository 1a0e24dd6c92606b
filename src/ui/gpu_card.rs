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
    value.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into())
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
                        format!("No reading from the host for {seconds:.0} s: these are its last")
                    } else {
                        "Not heard from the host: these are its last readings".to_string()
                    },
                );
            }
            if gpu.asleep {
                ui.label("Asleep (runtime power management)");
                ui.label(
                    RichText::new(
                        "Not read, so as not to wake it: reading it would keep a laptop's GPU \
                         powered. It is shown again as soon as something uses it.",
                    )
                    .weak(),
                );
                return;
            }
            let memory = &gpu.memory;
            let fraction = memory.used_fraction();
            ui.label(format_used_total(memory.used, memory.total, unit));
            ui.add(
                egui::ProgressBar::new(fraction)
                    .fill(pressure_color(fraction))
                    .text(
                        RichText::new(format!("{:.0} % used", fraction * 100.0))
                            .color(super::bar_text_color(ui.visuals())),
                    ),
            );
            ui.label(
                RichText::new(format!(
                    "free {} · driver reserved {}",
                    unit.format(memory.free),
                    unit.format(memory.reserved)
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
                    ui.label("GPU utilisation");
                    ui.label(or_na(gpu.gpu_util));
                    ui.end_row();
                    ui.label("Memory utilisation");
                    ui.label(or_na(gpu.memory_util));
                    ui.end_row();
                    ui.label("Temperature");
                    ui.label(or_na(gpu.temperature));
                    ui.end_row();
                    ui.label("Power");
                    ui.label(match (gpu.power, gpu.power_limit) {
                        (Some(p), Some(l)) => format!("{p} / {l}"),
                        (p, _) => or_na(p),
                    });
                    ui.end_row();
                    ui.label("Clocks (SM / memory)");
                    ui.label(format!(
                        "{} / {}",
                        or_na(gpu.sm_clock),
                        or_na(gpu.memory_clock)
                    ));
                    ui.end_row();
                    ui.label("Fan");
                    ui.label(or_na(gpu.fan));
                    ui.end_row();
                    let a = &gpu.activity;
                    ui.label("Encoder / decoder");
                    ui.label(format!(
                        "{} / {}",
                        or_na(a.encoder_util),
                        or_na(a.decoder_util)
                    ));
                    ui.end_row();
                    ui.label("PCIe rx / tx");
                    ui.label(match (a.pcie_rx_mbs, a.pcie_tx_mbs) {
                        (Some(rx), Some(tx)) => format!("{} / {}", rate(rx), rate(tx)),
                        _ => "n/a".into(),
                    });
                    ui.end_row();
                    ui.label("Clock held by");
                    let events = a.clock_events.map(|e| e.describe());
                    let slowing = a.clock_events.is_some_and(|e| e.slowing());
                    let text = RichText::new(events.unwrap_or_else(|| "n/a".into()));
                    ui.add(
                        egui::Label::new(if slowing {
                            text.color(super::pressure_color(0.8))
                        } else {
                            text
                        })
                        .truncate(),
                    )
                    .on_hover_text(
                        "NVML's clock-event reasons: why the SM clock is below its maximum \
                         (power cap and thermal reasons slow a busy GPU; idle does not)",
                    );
                    ui.end_row();
                });
        })
        .response;
    let id = ui.scope_id().with(("gpu_card", gpu.index));
    ui.interact(response.rect, id, egui::Sense::click())
        .on_hover_text("Show this GPU's plots and processes")
        .clicked()
}
