//! VRAM and utilisation charts: live over the chosen window, or an imported log (zoomable).

use crate::settings::PlotWindow;
use crate::telemetry::history::{Column, History, Metric, WindowStats};
use crate::units::MemoryUnit;
use egui::{Color32, Ui};
use egui_plot::{
    ColorConflictHandling, FilledArea, GridInput, GridMark, HoverPosition, Legend, Line, Plot,
    PlotPoints, Points, VLine,
};

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

/// Plot columns for one GPU and time range, gathered under the telemetry lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlotData {
    /// Range start (UNIX seconds).
    pub t0: f64,
    /// Range end (UNIX seconds).
    pub t1: f64,
    /// VRAM used, MiB.
    pub vram: Vec<Column>,
    /// GPU utilisation, %.
    pub gpu_util: Vec<Column>,
    /// Memory-controller utilisation, %.
    pub memory_util: Vec<Column>,
    /// VRAM min / mean / max over the range.
    pub vram_stats: Option<WindowStats>,
    /// GPU utilisation min / mean / max over the range.
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

    /// Reads `[t0, t1]` from history (an imported log's whole span, or the part zoomed into).
    pub fn collect_range(history: &History, slot: usize, t0: f64, t1: f64, columns: usize) -> Self {
        let columns_of = |m| history.columns(slot, m, t0, t1, columns);
        PlotData {
            t0,
            t1,
            vram: columns_of(Metric::VramUsedMib),
            gpu_util: columns_of(Metric::GpuUtil),
            memory_util: columns_of(Metric::MemoryUtil),
            vram_stats: history.stats(slot, Metric::VramUsedMib, t0, t1),
            util_stats: history.stats(slot, Metric::GpuUtil, t0, t1),
        }
    }

    /// Time span actually covered by the VRAM columns, if any.
    pub fn plotted_span(&self) -> Option<(f64, f64)> {
        Some((self.vram.first()?.t, self.vram.last()?.t))
    }

    /// The VRAM line: one point per column, at its mean.
    pub fn vram_line(&self) -> Vec<[f64; 2]> {
        self.vram.iter().map(|c| [c.t, c.mean]).collect()
    }
}

/// How a chart may be moved: live charts follow the clock; a log's can be zoomed and panned.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ViewControl {
    /// Zoom (scroll / pinch / box), pan (drag) and double-click reset along time.
    pub interactive: bool,
    /// Go back to the whole range this frame.
    pub reset: bool,
}

/// The window whose grid suits a span of `seconds` (for imported logs of any length).
pub fn window_for_span(seconds: f64) -> PlotWindow {
    PlotWindow::ALL
        .into_iter()
        .find(|w| seconds <= w.seconds() * 1.5)
        .unwrap_or(PlotWindow::OneDay)
}

/// Grid steps that read well as times, seconds.
const NICE_STEPS: [f64; 20] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0, 7_200.0,
    10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 604_800.0,
];

/// Grid steps (small, medium, large) for `span` seconds across `width` points, with labels
/// `label_width` points wide: the largest step is the smallest that leaves room for its labels.
pub fn time_steps(span: f64, width: f32, label_width: f32) -> [f64; 3] {
    let most_labels = (width / label_width).max(1.0) as f64;
    let i = NICE_STEPS
        .iter()
        .position(|step| span / step <= most_labels)
        .unwrap_or(NICE_STEPS.len() - 1);
    [
        NICE_STEPS[i.saturating_sub(2)],
        NICE_STEPS[i.saturating_sub(1)],
        NICE_STEPS[i],
    ]
}

/// True when `[t0, t1]` is not all within today (local time): its labels then carry the date.
pub fn needs_date(t0: f64, t1: f64) -> bool {
    use chrono::{Local, TimeZone};
    let day = |t: f64| {
        Local
            .timestamp_opt(t.floor() as i64, 0)
            .single()
            .map(|d| d.date_naive())
    };
    let today = Some(Local::now().date_naive());
    day(t0) != today || day(t1) != today
}

/// A time in the format a grid step calls for: dates for days, minutes for minutes.
pub fn time_text(t: f64, step: f64, dated: bool) -> String {
    use chrono::{Local, TimeZone};
    let format = match (step >= 86_400.0, dated, step >= 60.0) {
        (true, _, _) => "%b %d",
        (false, true, true) => "%b %d %H:%M",
        (false, true, false) => "%b %d %H:%M:%S",
        (false, false, true) => "%H:%M",
        (false, false, false) => "%H:%M:%S",
    };
    match Local.timestamp_opt(t.floor() as i64, 0) {
        chrono::LocalResult::Single(d) | chrono::LocalResult::Ambiguous(d, _) => {
            d.format(format).to_string()
        }
        chrono::LocalResult::None => String::new(),
    }
}

/// Width of the value axis, the same on both charts so their time axes line up.
const Y_AXIS_WIDTH: f32 = 52.0;

/// Width of a time label without a date, points; with one, [`DATED_LABEL`].
const TIME_LABEL: f32 = 64.0;
/// Width of a time label with a date, points.
const DATED_LABEL: f32 = 96.0;

/// A time under a grid line, or nothing where the label (centred on its line) would be cut
/// off at the right edge.
fn time_label(
    mark: GridMark,
    range: &std::ops::RangeInclusive<f64>,
    width: f32,
    dated: bool,
) -> String {
    let span = range.end() - range.start();
    let room = (range.end() - mark.value) / span * width as f64;
    let label_width = if dated { DATED_LABEL } else { TIME_LABEL };
    // Only the widest-spaced lines are labelled: the finer ones would overlap their labels.
    let labelled = time_steps(span, width, label_width)[2];
    if room < (label_width / 2.0) as f64 || mark.step_size < labelled {
        return String::new();
    }
    time_text(mark.value, mark.step_size, dated)
}

/// The plot both charts share, for a chart about to be placed in `ui`.
fn base_plot(ui: &Ui, id: &str, data: &PlotData, height: f32, view: ViewControl) -> Plot<'static> {
    // The data area: what the chart leaves beside its value axis.
    let width = ui.available_width() - Y_AXIS_WIDTH;
    let dated = needs_date(data.t0, data.t1);
    let label_width = if dated { DATED_LABEL } else { TIME_LABEL };
    let plot = Plot::new(id.to_string())
        .height(height)
        // A line and its band share a name (one entry); the entry shows the line's colour.
        // Top left: the newest readings are on the right, where a legend would hide them.
        .legend(
            Legend::default()
                .position(egui_plot::Corner::LeftTop)
                .color_conflict_handling(ColorConflictHandling::PickFirst),
        )
        .allow_zoom([view.interactive, false])
        .allow_drag([view.interactive, false])
        .allow_scroll([view.interactive, false])
        .allow_boxed_zoom(view.interactive)
        .allow_double_click_reset(view.interactive)
        .include_x(data.t0)
        .include_x(data.t1)
        .include_y(0.0)
        // The panel colour shows through: a filled plot area is the single most expensive
        // shape to rasterise in software. `outline` draws the frame instead.
        .show_background(false)
        // Same axis width on both charts so their time axes line up.
        .y_axis_min_width(Y_AXIS_WIDTH)
        .x_axis_formatter(move |mark, range| time_label(mark, range, width, dated))
        .x_grid_spacer(egui_plot::uniform_grid_spacer(move |input: GridInput| {
            time_steps(input.bounds.1 - input.bounds.0, width, label_width)
        }))
        .link_cursor(egui::Id::unique("vramdeck_plots"), [true, false])
        // Zooming one chart zooms the other: they share the time axis.
        .link_axis(egui::Id::unique("vramdeck_plot_axes"), [true, false]);
    if view.reset { plot.reset() } else { plot }
}

/// A hovered time: to the second, with the date when it is not today.
fn hover_time(t: f64) -> String {
    time_text(t, 1.0, needs_date(t, t))
}

fn hover_text(pos: &HoverPosition<'_>, value_text: &dyn Fn(f64) -> String) -> Option<String> {
    match pos {
        HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => Some(format!(
            "{plot_name}\n{}  {}",
            hover_time(position.x),
            value_text(position.y)
        )),
        HoverPosition::Elsewhere { position } => Some(hover_time(position.x)),
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

/// Series with this few columns also get a dot per reading: a lone reading draws no line.
const DOTS_BELOW: usize = 64;

/// Adds a column series: the mean line, the min..max band where readings spread within a
/// column, and dots where readings are few. `scale` converts to the shown unit.
/// The runs of `columns` with readings close together: where readings stop (a paused or
/// unreachable host, a sleeping GPU) the chart shows a gap, not a line across the time
/// nothing was read. A gap is a step over three times the usual one between columns.
pub fn runs(columns: &[Column]) -> Vec<&[Column]> {
    if columns.len() < 3 {
        return vec![columns];
    }
    let mut steps: Vec<f64> = columns.windows(2).map(|w| w[1].t - w[0].t).collect();
    steps.sort_by(f64::total_cmp);
    let usual = steps[steps.len() / 2];
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..columns.len() {
        if columns[i].t - columns[i - 1].t > 3.0 * usual {
            runs.push(&columns[start..i]);
            start = i;
        }
    }
    runs.push(&columns[start..]);
    runs
}

fn add_series(
    plot: &mut egui_plot::PlotUi<'_>,
    name: &str,
    columns: &[Column],
    scale: impl Fn(f64) -> f64,
    color: Color32,
    width: f32,
) {
    for run in runs(columns) {
        add_run(plot, name, run, &scale, color, width);
    }
}

/// One unbroken run of a series: its line, its dots when few, its min..max band.
fn add_run(
    plot: &mut egui_plot::PlotUi<'_>,
    name: &str,
    columns: &[Column],
    scale: &impl Fn(f64) -> f64,
    color: Color32,
    width: f32,
) {
    let line: Vec<[f64; 2]> = columns.iter().map(|c| [c.t, scale(c.mean)]).collect();
    // The line first: the legend takes the colour of the first item of a name.
    plot.line(
        Line::new(name.to_string(), PlotPoints::from(line.clone()))
            .color(color)
            .width(width),
    );
    if columns.len() < DOTS_BELOW {
        plot.add(
            Points::new(name.to_string(), PlotPoints::from(line))
                .color(color)
                .radius(2.5)
                .filled(true),
        );
    }
    if columns.iter().any(|c| c.max > c.min) {
        let xs: Vec<f64> = columns.iter().map(|c| c.t).collect();
        let lo: Vec<f64> = columns.iter().map(|c| scale(c.min)).collect();
        let hi: Vec<f64> = columns.iter().map(|c| scale(c.max)).collect();
        plot.add(
            // Named like its line: one legend entry shows and hides both.
            FilledArea::new(name.to_string(), &xs, &lo, &hi)
                .fill_color(color.gamma_multiply(0.25))
                .allow_hover(false),
        );
    }
}

/// The VRAM chart, in the user's unit, with the card's total as the ceiling. Returns the time
/// range on screen (changed by zooming or panning an interactive chart).
pub fn vram(
    ui: &mut Ui,
    data: &PlotData,
    unit: MemoryUnit,
    total_mib: f64,
    markers: &[PlotMarker],
    height: f32,
    view: ViewControl,
) -> (f64, f64) {
    let value_text = move |y: f64| match unit {
        MemoryUnit::MiB => format!("{} MiB", crate::units::group_thousands(y.round() as u64)),
        MemoryUnit::GiB => format!("{:.2} GiB", y),
    };
    let shown = base_plot(ui, "vram_plot", data, height, view)
        .include_y(unit.from_mib(total_mib))
        .y_axis_label(crate::t!("plot-vram-axis", unit = unit.symbol()))
        .y_axis_formatter(move |mark, _| axis_value(mark, unit))
        .label_formatter(move |pos| hover_text(pos, &value_text))
        .show(ui, |plot| {
            wheel_zoom(plot, view);
            add_series(
                plot,
                &crate::t!("plot-vram-used"),
                &data.vram,
                |mib| unit.from_mib(mib),
                VRAM_COLOR,
                1.5,
            );
            plot.line(
                Line::new(
                    crate::t!("plot-total"),
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
    let b = shown.transform.bounds();
    (b.min()[0], b.max()[0])
}

/// The mouse wheel zooms an interactive chart's time around the pointer (egui_plot zooms only
/// with Ctrl held, and a plain wheel did nothing while the hint promised a zoom).
fn wheel_zoom(plot: &mut egui_plot::PlotUi<'_>, view: ViewControl) {
    if !view.interactive || !plot.response().contains_pointer() {
        return;
    }
    let (wheel, ctrl) = plot
        .ctx()
        .input(|i| (i.smooth_scroll_delta.y, i.modifiers.command));
    if wheel != 0.0 && !ctrl {
        plot.zoom_bounds_around_hovered(egui::vec2((wheel / 200.0).exp(), 1.0));
    }
}

/// A value-axis label in the chart's unit: "40,000" MiB, "39" or "0.5" GiB.
fn axis_value(mark: GridMark, unit: MemoryUnit) -> String {
    if mark.value < 0.0 {
        return String::new();
    }
    match unit {
        MemoryUnit::MiB => crate::units::group_thousands(mark.value.round() as u64),
        MemoryUnit::GiB if mark.step_size >= 1.0 => format!("{:.0}", mark.value),
        MemoryUnit::GiB => format!("{:.1}", mark.value),
    }
}

/// The utilisation chart: GPU (kernels running) and memory controller, 0–100 %.
pub fn utilisation(ui: &mut Ui, data: &PlotData, height: f32, view: ViewControl) {
    let value_text = |y: f64| format!("{y:.0} %");
    let shown = base_plot(ui, "util_plot", data, height, view)
        .include_y(100.0)
        .y_axis_label(crate::t!("plot-util-axis"))
        .label_formatter(move |pos| hover_text(pos, &value_text))
        .show(ui, |plot| {
            wheel_zoom(plot, view);
            add_series(
                plot,
                &crate::t!("plot-gpu"),
                &data.gpu_util,
                |v| v,
                GPU_UTIL_COLOR,
                1.5,
            );
            add_series(
                plot,
                &crate::t!("plot-memory"),
                &data.memory_util,
                |v| v,
                MEMORY_UTIL_COLOR,
                1.0,
            );
        });
    outline(ui, shown.response.rect);
}

/// One process's VRAM over the last minutes (points are (UNIX seconds, MiB)), with the memory
/// its vramdeck agent says torch holds, when it has one.
pub fn process_vram(
    ui: &mut Ui,
    points: &[[f64; 2]],
    unit: MemoryUnit,
    torch_reserved_mib: Option<f64>,
    height: f32,
) {
    let scaled: Vec<[f64; 2]> = points.iter().map(|p| [p[0], unit.from_mib(p[1])]).collect();
    let (t0, t1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a[0], b[0].max(a[0] + 60.0)),
        _ => (0.0, 60.0),
    };
    let data = PlotData {
        t0,
        t1,
        ..Default::default()
    };
    let value_text = move |y: f64| match unit {
        MemoryUnit::MiB => format!("{} MiB", crate::units::group_thousands(y.round() as u64)),
        MemoryUnit::GiB => format!("{:.2} GiB", y),
    };
    let shown = base_plot(
        ui,
        "process_vram_plot",
        &data,
        height,
        ViewControl::default(),
    )
    .link_cursor(egui::Id::unique("vramdeck_process_plot"), [false, false])
    .link_axis(egui::Id::unique("vramdeck_process_axes"), [false, false])
    .y_axis_label(crate::t!("plot-process-axis", unit = unit.symbol()))
    .y_axis_formatter(move |mark, _| axis_value(mark, unit))
    .label_formatter(move |pos| hover_text(pos, &value_text))
    .show(ui, |plot| {
        if scaled.len() < DOTS_BELOW {
            plot.add(
                Points::new(
                    crate::t!("plot-vram-nvml"),
                    PlotPoints::from(scaled.clone()),
                )
                .color(VRAM_COLOR)
                .radius(2.0),
            );
        }
        plot.line(
            Line::new(crate::t!("plot-vram-nvml"), PlotPoints::from(scaled))
                .color(VRAM_COLOR)
                .width(1.5),
        );
        if let Some(r) = torch_reserved_mib {
            plot.add(
                egui_plot::HLine::new(crate::t!("plot-torch-reserved"), unit.from_mib(r))
                    .color(MARKER_COLOR),
            );
        }
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
    fn readings_that_stop_leave_a_gap_instead_of_a_line_across_it() {
        let at = |t: f64| Column {
            t,
            min: 1.0,
            mean: 1.0,
            max: 1.0,
        };
        // Every 2 s, then nothing for 60 s (a paused host), then every 2 s again.
        let columns: Vec<Column> = (0..10)
            .map(|i| at(i as f64 * 2.0))
            .chain((0..10).map(|i| at(80.0 + i as f64 * 2.0)))
            .collect();
        let runs = runs(&columns);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].len(), 10);
        assert_eq!(runs[1][0].t, 80.0);
        // Steady readings stay one line; one or two columns are one run.
        assert_eq!(super::runs(&columns[..10]).len(), 1);
        assert_eq!(super::runs(&columns[..2]).len(), 1);
    }

    #[test]
    fn a_time_label_that_would_be_cut_off_at_the_right_edge_is_left_out() {
        // 600 s over 600 points: one point per second.
        let range = 1_000.0..=1_600.0;
        let mark = |value| GridMark {
            value,
            step_size: 120.0,
        };
        assert_eq!(
            time_label(mark(1_560.0), &range, 600.0, false),
            time_text(1_560.0, 120.0, false)
        );
        assert_eq!(
            time_label(mark(1_580.0), &range, 600.0, false),
            "",
            "20 px from the edge"
        );
        // Finer lines are not labelled (their labels would overlap).
        let fine = GridMark {
            value: 1_530.0,
            step_size: 30.0,
        };
        assert_eq!(time_label(fine, &range, 600.0, false), "");
        // The same mark has room on a wider plot.
        assert_eq!(
            time_label(mark(1_580.0), &range, 1_200.0, false),
            time_text(1_580.0, 120.0, false)
        );
    }

    #[test]
    fn grid_steps_leave_room_for_their_labels() {
        // A day on 1,000 points with 96-point labels: at most 10 labels, so 3 h steps.
        assert_eq!(
            time_steps(86_400.0, 1_000.0, 96.0),
            [3_600.0, 7_200.0, 10_800.0]
        );
        // A minute on 600 points: 10 s steps.
        assert_eq!(time_steps(60.0, 600.0, 64.0), [2.0, 5.0, 10.0]);
        // A narrow chart never asks for zero labels.
        assert_eq!(time_steps(10.0, 10.0, 64.0)[2], 10.0);
    }

    #[test]
    fn labels_carry_the_date_when_the_range_is_not_today() {
        let now = crate::telemetry::unix_seconds(std::time::SystemTime::now());
        assert!(
            !needs_date(now - 1.0, now) || needs_date(now, now),
            "midnight"
        );
        assert!(needs_date(now - 3.0 * 86_400.0, now));
        let t = now - 3.0 * 86_400.0;
        let with_date = time_text(t, 3_600.0, true);
        assert_eq!(with_date.len(), "Nov 20 14:00".len(), "{with_date}");
        assert_eq!(time_text(t, 5.0, false).len(), "14:00:05".len());
        assert_eq!(time_text(t, 86_400.0, true).len(), "Nov 20".len());
    }
}
