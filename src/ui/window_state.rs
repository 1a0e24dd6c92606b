//! The window as the desktop sees it: its size in each view, its level, whether it is shown,
//! and what closing it means. Only viewport commands go out from here; the window manager
//! does the rest, so every decision is a pure function of what egui reports.

use egui::{Context, Rect, Vec2, ViewportCommand, WindowLevel};
use serde::{Deserialize, Serialize};

/// The full window's size when nothing was remembered, points.
pub const DEFAULT_SIZE: Vec2 = Vec2::new(1480.0, 900.0);
/// The full window's least size, points: the one-column layout below it would cut columns.
pub const FULL_MIN_SIZE: Vec2 = Vec2::new(640.0, 420.0);
/// Share of the monitor a window too large for it is shrunk to.
const SCREEN_SHARE: f32 = 0.9;

/// View state kept between runs (beside the window geometry eframe keeps).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewState {
    /// The centre tab.
    pub tab: super::layout::Tab,
    /// The full window's inner size and outer position when the mini view was entered, so
    /// "Full view" gives back the window the user had, even after a restart in the mini view.
    pub full_size: Option<[f32; 2]>,
    /// See `full_size`.
    pub full_position: Option<[f32; 2]>,
    /// The mini view's size as the user left it.
    pub mini_size: Option<[f32; 2]>,
}

/// The largest window side taken from a kept file, points: more than any monitor (an 8K screen
/// is 7,680 pixels), far less than a renderer crashes at (100,000 crashed llvmpipe).
pub const MAX_KEPT_SIDE: f32 = 8_192.0;

impl ViewState {
    /// The state with every kept size and place made sane: a hand-edited or corrupt file
    /// (sizes of 100,000, NaN, negative) must never keep the window from opening.
    pub fn sanitized(mut self) -> Self {
        let size = |v: Option<[f32; 2]>| {
            v.filter(|s| s.iter().all(|x| x.is_finite() && *x >= 1.0))
                .map(|[x, y]| [x.min(MAX_KEPT_SIDE), y.min(MAX_KEPT_SIDE)])
        };
        self.full_size = size(self.full_size);
        self.mini_size = size(self.mini_size);
        self.full_position = self.full_position.filter(|p| {
            p.iter()
                .all(|x| x.is_finite() && x.abs() <= 4.0 * MAX_KEPT_SIDE)
        });
        self
    }
}

/// The key under which [`ViewState`] is stored in eframe's storage.
pub const STORAGE_KEY: &str = "vramdeck-view";

/// What the window is doing now.
#[derive(Debug, Default)]
pub struct WindowState {
    /// Hidden in the tray.
    pub hidden: bool,
    /// Quit was asked for (Ctrl+Q, the tray): closing is not turned into hiding.
    pub quitting: bool,
    /// Start hidden once the first frame is on screen (`--hidden` with a tray).
    pub start_hidden: bool,
    frames: u64,
    /// (mini view, on top) as last sent.
    applied: Option<(bool, bool)>,
    /// The first frame's size was checked against the monitor.
    fitted: bool,
}

/// `size` shrunk to fit a monitor of `monitor` points, or `None` when it fits.
pub fn fit_to_monitor(size: Vec2, monitor: Vec2) -> Option<Vec2> {
    if monitor.x <= 0.0 || monitor.y <= 0.0 {
        return None;
    }
    // Room for a taskbar and the title bar.
    let room = Vec2::new(monitor.x, monitor.y - 60.0);
    if size.x <= room.x && size.y <= room.y {
        return None;
    }
    Some(Vec2::new(
        size.x
            .min(monitor.x * SCREEN_SHARE)
            .max(FULL_MIN_SIZE.x.min(monitor.x)),
        size.y
            .min(monitor.y * SCREEN_SHARE)
            .max(FULL_MIN_SIZE.y.min(monitor.y)),
    ))
}

impl WindowState {
    /// Runs once per pass, shown or hidden: keeps the size limits and level in step with
    /// the view, fits the first window to the monitor, and hides a `--hidden` start.
    /// `gpus` sizes the mini view; `tray` says whether hiding leaves a way back.
    pub fn keep(
        &mut self,
        ctx: &Context,
        (mini, on_top): (bool, bool),
        gpus: usize,
        tray: bool,
        view: &mut ViewState,
    ) {
        self.frames += 1;
        if self.applied != Some((mini, on_top)) {
            let first = self.applied.is_none();
            self.applied = Some((mini, on_top));
            let min = if mini {
                super::mini_view::min_size(gpus)
            } else {
                FULL_MIN_SIZE
            };
            ctx.send_viewport_cmd(ViewportCommand::MinInnerSize(min));
            // Restarted in the mini view: the size it was left at (the full view's least size
            // may have held it larger until the limit above was sent).
            if first && mini {
                let target = mini_size(view, gpus);
                let inner = ctx.input(|i| i.viewport().inner_rect.map(|r| r.size()));
                if inner.is_none_or(|s| (s - target).abs().max_elem() > 2.0) {
                    ctx.send_viewport_cmd(ViewportCommand::InnerSize(target));
                }
            }
            let level = if mini || on_top {
                WindowLevel::AlwaysOnTop
            } else {
                WindowLevel::Normal
            };
            ctx.send_viewport_cmd(ViewportCommand::WindowLevel(level));
        }
        if !self.fitted && !mini {
            let (inner, monitor) =
                ctx.input(|i| (i.viewport().inner_rect, i.viewport().monitor_size));
            if let (Some(inner), Some(monitor)) = (inner, monitor) {
                self.fitted = true;
                if let Some(size) = fit_to_monitor(inner.size(), monitor) {
                    ctx.send_viewport_cmd(ViewportCommand::InnerSize(size));
                    let corner = ((monitor - size) / 2.0).max(Vec2::ZERO);
                    ctx.send_viewport_cmd(ViewportCommand::OuterPosition(corner.to_pos2()));
                }
            }
        }
        // The mini view's size as the user makes it, once the one asked for has arrived.
        if mini && self.frames > 10 {
            let inner = ctx.input(|i| i.viewport().inner_rect.map(|r| r.size()));
            if let Some(s) = inner {
                view.mini_size = Some([s.x, s.y]);
            }
        }
        // eframe shows the window after painting its first frame; hide it after that.
        if self.start_hidden {
            if !tray {
                self.start_hidden = false;
            } else if self.frames >= 2 {
                self.start_hidden = false;
                self.set_hidden(ctx, true);
            } else {
                ctx.request_repaint();
            }
        }
    }

    /// Hides the window in the tray, or shows it and brings it forward.
    pub fn set_hidden(&mut self, ctx: &Context, hidden: bool) {
        self.hidden = hidden;
        ctx.send_viewport_cmd(ViewportCommand::Visible(!hidden));
        if !hidden {
            ctx.send_viewport_cmd(ViewportCommand::Minimized(false));
            ctx.send_viewport_cmd(ViewportCommand::Focus);
        }
    }

    /// Ends vramdeck: closing is no longer turned into hiding.
    pub fn quit(&mut self, ctx: &Context) {
        self.quitting = true;
        ctx.send_viewport_cmd(ViewportCommand::Close);
    }

    /// Turns the window manager's close into hiding when the user chose to keep running in
    /// `tray`. Returns true when it did.
    pub fn close_to_tray(&mut self, ctx: &Context, keep_running: bool, tray: bool) -> bool {
        let asked = ctx.input(|i| i.viewport().close_requested());
        if asked && keep_running && tray && !self.quitting {
            ctx.send_viewport_cmd(ViewportCommand::CancelClose);
            self.set_hidden(ctx, true);
            return true;
        }
        false
    }

    /// Switches between the full and the mini view, remembering the full window in `view`
    /// and giving it back.
    pub fn switch_view(&mut self, ctx: &Context, mini: bool, gpus: usize, view: &mut ViewState) {
        if mini {
            let (inner, outer): (Option<Rect>, Option<Rect>) =
                ctx.input(|i| (i.viewport().inner_rect, i.viewport().outer_rect));
            if let Some(inner) = inner {
                view.full_size = Some([inner.width(), inner.height()]);
            }
            if let Some(outer) = outer {
                view.full_position = Some([outer.min.x, outer.min.y]);
            }
            ctx.send_viewport_cmd(ViewportCommand::MinInnerSize(super::mini_view::min_size(
                gpus,
            )));
            ctx.send_viewport_cmd(ViewportCommand::InnerSize(mini_size(view, gpus)));
        } else {
            let size = view.full_size.map(Vec2::from).unwrap_or(DEFAULT_SIZE);
            let monitor = ctx.input(|i| i.viewport().monitor_size);
            let size = monitor
                .and_then(|m| fit_to_monitor(size, m))
                .unwrap_or(size);
            ctx.send_viewport_cmd(ViewportCommand::InnerSize(size));
            ctx.send_viewport_cmd(ViewportCommand::MinInnerSize(FULL_MIN_SIZE));
            if let Some([x, y]) = view.full_position {
                ctx.send_viewport_cmd(ViewportCommand::OuterPosition(egui::pos2(x, y)));
            }
        }
        // `keep` sends the level and limits for the new view on its next pass.
    }
}

/// The mini view's size: as the user left it, at least its least size, at most
/// [`MAX_KEPT_SIDE`].
fn mini_size(view: &ViewState, gpus: usize) -> Vec2 {
    view.clone()
        .sanitized()
        .mini_size
        .map(Vec2::from)
        .unwrap_or_else(|| super::mini_view::size(gpus))
        .max(super::mini_view::min_size(gpus))
        .min(Vec2::splat(MAX_KEPT_SIDE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_sizes_from_a_corrupt_file_are_made_sane() {
        let kept = ViewState {
            mini_size: Some([100_000.0, 100_000.0]),
            full_size: Some([f32::NAN, 900.0]),
            full_position: Some([f32::INFINITY, 0.0]),
            ..Default::default()
        }
        .sanitized();
        assert_eq!(kept.mini_size, Some([MAX_KEPT_SIDE, MAX_KEPT_SIDE]));
        assert_eq!((kept.full_size, kept.full_position), (None, None));
        let view = ViewState {
            mini_size: Some([100_000.0, -5.0]),
            ..Default::default()
        };
        let size = mini_size(&view, 2);
        assert!(
            size.x <= MAX_KEPT_SIDE && size.y <= MAX_KEPT_SIDE,
            "{size:?}"
        );
    }

    #[test]
    fn a_window_larger_than_the_monitor_is_shrunk_to_it() {
        // 1480x900 at scale 2 on 1080p: 960x540 points of monitor.
        let fitted = fit_to_monitor(DEFAULT_SIZE, Vec2::new(960.0, 540.0)).unwrap();
        assert!(fitted.x <= 960.0 && fitted.y <= 540.0 - 40.0, "{fitted:?}");
        assert!(fitted.x >= FULL_MIN_SIZE.x && fitted.y >= FULL_MIN_SIZE.y - 0.5);
        // 1280x720 monitor: both sides shrink.
        let fitted = fit_to_monitor(DEFAULT_SIZE, Vec2::new(1280.0, 720.0)).unwrap();
        assert_eq!(fitted, Vec2::new(1152.0, 648.0));
        // A window that fits is left alone.
        assert_eq!(
            fit_to_monitor(DEFAULT_SIZE, Vec2::new(2560.0, 1440.0)),
            None
        );
        // A monitor smaller than the least size: the monitor wins.
        let tiny = fit_to_monitor(DEFAULT_SIZE, Vec2::new(600.0, 400.0)).unwrap();
        assert!(tiny.x <= 600.0 && tiny.y <= 400.0, "{tiny:?}");
        assert_eq!(fit_to_monitor(DEFAULT_SIZE, Vec2::ZERO), None);
    }
}
