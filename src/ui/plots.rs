//! Live VRAM and utilisation charts over the chosen time window.

use super::clock_time;
use crate::settings::PlotWindow;
use crate::telemetry::history::{History, Metric, WindowStats};
use crate::units::MemoryUnit;
use egui::{Color32, Ui};
use egui_plot::{GridInput, GridMark, HoverPosition, Legend, Line, Plot, PlotPoints, VLine};

/// A vertical line on the VRAM plot: a Free VRAM action or an alert.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotMarker {
    /// When (UNIX seconds).
    pub t: f64,
    /// Legend text, e.g. "freed 9.8 GiB".
    pub label: String,
    /// An alert (red) rather than a release (amber).
    pub alert: bool,
}

/// Decimated series for one GPU and window, gathered under the telemetry lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlotData {
    /// Window start (UNIX seconds).
    pub t0: f64,
    /// Window end (UNIX seconds).
    pub t1: f64,
    /// VRAM used, MiB.
    pub vram_mib: Vec<[f64; 2]>,
    /// GPU utilisation, %.
    pub gpu_util: Vec<[f64; 2]>,
    /// Memory-controller utilisation, %.
    pub memory_util: Vec<[f64; 2]>,
    /// VRAM min / mean / max over the window.
    pub vram_stats: Option<WindowStats>,
    /// GPU utilisation min / mean / max over the window.
    pub util_stats: Option<WindowStats>,
}

impl PlotData {
    /// Reads the window ending at `now` from history; `columns` is the plot width in points.
    pub fn collect(
        history: &History,
        slot: usize,
        window: PlotWindow,
        now: f64,
        columns: usize,
    ) -> Self {
        Self::collect_range(history, slot, now - window.seconds(), now, columns)
    }

    /// Reads `[t0, now]` from history (an imported log's whole span, say).
    pub fn collect_range(
        history: &History,
        slot: usize,
        t0: f64,
        now: f64,
        columns: usize,
    ) -> Self {
        let series = |m| history.series(slot, m, t0, now, columns);
        PlotData {
            t0,
            t1: now,
            vram_mib: series(Metric::VramUsedMib),
            gpu_util: series(Metric::GpuUtil),
            memory_util: series(Metric::MemoryUtil),
            vram_stats: history.stats(slot, Metric::VramUsedMib, t0, now),
            util_stats: history.stats(slot, Metric::GpuUtil, t0, now),
        }
    }

    /// Time span actually covered by the VRAM points, if any.
    pub fn plotted_span(&self) -> Option<(f64, f64)> {
        Some((self.vram_mib.first()?[0], self.vram_mib.last()?[0]))
    }
}

/// The window whose grid suits a span of `seconds` (for imported logs of any length).
pub fn window_for_span(seconds: f64) -> PlotWindow {
    PlotWindow::ALL
        .into_iter()
        .find(|w| seconds <= w.seconds() * 1.5)
        .unwrap_or(PlotWindow::OneDay)
}

/// Grid steps (small, medium, large) in seconds that read well as clock times.
fn time_steps(window: PlotWindow) -> [f64; 3] {
    match window {
        PlotWindow::OneMinute => [5.0, 15.0, 60.0],
        PlotWindow::TenMinutes => [30.0, 60.0, 300.0],
        PlotWindow::OneHour => [300.0, 600.0, 1_800.0],
        PlotWindow::OneDay => [1_800.0, 3_600.0, 6.0 * 3_600.0],
    }
}

/// Width of the value axis, the same on both charts so their time axes line up.
const Y_AXIS_WIDTH: f32 = 52.0;

/// A time label is centred on its grid line: one closer to the right edge than half a label's
/// width (in points) would be cut off by the plot's edge, so it is not drawn.
const HALF_TIME_LABEL: f32 = 30.0;

/// `HH:MM:SS` under a grid line, or nothing where the label would be cut off at the right edge.
fn time_label(mark: GridMark, range: &std::ops::RangeInclusive<f64>, width: f32) -> String {
    let span = range.end() - range.start();
    let room = (range.end() - mark.value) / span * width as f64;
    if room < HALF_TIME_LABEL as f64 {
        return String::new();
    }
    clock_time(mark.value)
}

/// The plot both charts share, for a chart about to be placed in `ui`.
fn base_plot(ui: &Ui, id: &str, window: PlotWindow, data: &PlotData, height: f32) -> Plot<'static> {
    // The data area: what the chart leaves beside its value axis.
    let width = ui.available_width() - Y_AXIS_WIDTH;
    let steps = time_steps(window);
    Plot::new(id.to_string())
        .height(height)
        .legend(Legend::default())
        // The view follows the live edge; zooming would fight the next repaint.
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .include_x(data.t0)
        .include_x(data.t1)
        .include_y(0.0)
        // The panel colour shows through: a filled plot area is the single most expensive
        // shape to rasterise in software. `outline` draws the frame instead.
        .show_background(false)
        // Same axis width on both charts so their time axes line up.
        .y_axis_min_width(Y_AXIS_WIDTH)
        .x_axis_formatter(move |mark, range| time_label(mark, range, width))
        .x_grid_spacer(egui_plot::uniform_grid_spacer(move |_: GridInput| steps))
        .link_cursor(egui::Id::unique("vramdeck_plots"), [true, false])
}

fn hover_text(pos: &HoverPosition<'_>, value_text: &dyn Fn(f64) -> String) -> Option<String> {
    match pos {
        HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => Some(format!(
            "{plot_name}\n{}  {}",
            clock_time(position.x),
            value_text(position.y)
        )),
        HoverPosition::Elsewhere { position } => Some(clock_time(position.x)),
    }
}

/// Colour of the VRAM-used line.
const VRAM_COLOR: Color32 = Color32::from_rgb(0x4f, 0x9d, 0xf0);
/// Colour of the installed-memory ceiling.
const TOTAL_COLOR: Color32 = Color32::from_gray(140);
/// Colour of Free VRAM markers.
const MARKER_COLOR: Color32 = Color32::from_rgb(0xe0, 0x9b, 0x22);
/// Colour of alert markers.
const ALERT_COLOR: Color32 = Color32::from_rgb(0xd9, 0x48, 0x3b);
/// Colour of GPU utilisation.
const GPU_UTIL_COLOR: Color32 = Color32::from_rgb(0x3b, 0xa5, 0x5c);
/// Colour of memory-controller utilisation.
const MEMORY_UTIL_COLOR: Color32 = Color32::from_rgb(0xa8, 0x7b, 0xe8);

/// The VRAM chart, in the user's unit, with the card's total as the ceiling.
pub fn vram(
    ui: &mut Ui,
    data: &PlotData,
    window: PlotWindow,
    unit: MemoryUnit,
    total_mib: f64,
    markers: &[PlotMarker],
    height: f32,
) {
    let scaled: Vec<[f64; 2]> = data
        .vram_mib
        .iter()
        .map(|p| [p[0], unit.from_mib(p[1])])
        .collect();
    let value_text = move |y: f64| match unit {
        MemoryUnit::MiB => format!("{:.0} MiB", y),
        MemoryUnit::GiB => format!("{:.2} GiB", y),
    };
    let shown = base_plot(ui, "vram_plot", window, data, height)
        .include_y(unit.from_mib(total_mib))
        .y_axis_label(format!("VRAM used ({})", unit.symbol()))
        .label_formatter(move |pos| hover_text(pos, &value_text))
        .show(ui, |plot| {
            plot.line(
                Line::new("VRAM used", PlotPoints::from(scaled))
                    .color(VRAM_COLOR)
                    .width(1.5),
            );
            plot.line(
                Line::new(
                    "Total",
                    PlotPoints::from(vec![
                        [data.t0, unit.from_mib(total_mib)],
                        [data.t1, unit.from_mib(total_mib)],
                    ]),
                )
                .color(TOTAL_COLOR)
                .style(egui_plot::LineStyle::dashed_loose()),
            );
            for m in markers
                .iter()
                .filter(|m| (data.t0..=data.t1).contains(&m.t))
            {
                let color = if m.alert { ALERT_COLOR } else { MARKER_COLOR };
                plot.add(VLine::new(m.label.clone(), m.t).color(color).width(1.5));
            }
        });
    outline(ui, shown.response.rect);
}

/// The utilisation chart: GPU (kernels running) and memory controller, 0–100 %.
pub fn utilisation(ui: &mut Ui, data: &PlotData, window: PlotWindow, height: f32) {
    let value_text = |y: f64| format!("{y:.0} %");
    let gpu = data.gpu_util.clone();
    let memory = data.memory_util.clone();
    let shown = base_plot(ui, "util_plot", window, data, height)
        .include_y(100.0)
        .y_axis_label("Utilisation (%)")
        .label_formatter(move |pos| hover_text(pos, &value_text))
        .show(ui, |plot| {
            plot.line(
                Line::new("GPU", PlotPoints::from(gpu))
                    .color(GPU_UTIL_COLOR)
                    .width(1.5),
            );
            plot.line(
                Line::new("Memory", PlotPoints::from(memory))
                    .color(MEMORY_UTIL_COLOR)
                    .width(1.0),
            );
        });
    outline(ui, shown.response.rect);
}

/// The plot area's frame, drawn as a stroke (the background fill is off, see `base_plot`).
fn outline(ui: &Ui, plot_area: egui::Rect) {
    let stroke = ui.visuals().widgets.noninteractive.bg_stroke;
    ui.painter()
        .rect_stroke(plot_area, 2, stroke, egui::StrokeKind::Inside);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_label_that_would_be_cut_off_at_the_right_edge_is_left_out() {
        // 600 s over 600 points: one point per second.
        let range = 1_000.0..=1_600.0;
        let mark = |value| GridMark {
            value,
            step_size: 60.0,
        };
        assert_eq!(
            time_label(mark(1_560.0), &range, 600.0),
            clock_time(1_560.0)
        );
        assert_eq!(
            time_label(mark(1_580.0), &range, 600.0),
            "",
            "20 px from the edge"
        );
        // The same mark has room on a wider plot.
        assert_eq!(
            time_label(mark(1_580.0), &range, 1_200.0),
            clock_time(1_580.0)
        );
    }
}
