//! "What fits now": every preset against the selected GPU's free VRAM, with its source on hover,
//! calibration runs, and the user's own presets.

use super::pressure_color;
use crate::units::MemoryUnit;
use crate::workloads::advisor::{Advice, Budget, Detail, Fit};
use crate::workloads::calibration::RunRecorder;
use crate::workloads::catalogue::{Shape, Workload};
use egui::{Color32, RichText, Ui};

/// What the user did in the panel this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum AdvisorAction {
    /// Start recording a run of (calibration key, display name).
    StartRun(String, String, u64),
    /// Stop recording and keep the measurement.
    FinishRun,
    /// Stop recording and drop it.
    CancelRun,
    /// Keep a peak far below the catalogue's after all.
    ConfirmRun,
    /// Add a preset the user described (or replace the one with its id).
    AddPreset(Box<Workload>),
    /// Replace the user's preset of this id with the edited one.
    SavePreset(String, Box<Workload>),
    /// Put back the preset removed last.
    UndoRemove,
    /// Remove a user preset.
    RemovePreset(String),
    /// Pick a presets file to import.
    Import,
    /// Pick a file to export the user's presets to.
    Export,
}

/// The "add your own preset" form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewPresetForm {
    /// Name.
    pub name: String,
    /// Peak, MiB, as typed.
    pub peak_mib: String,
    /// Where measured.
    pub measured_on: String,
    /// Why the last attempt was refused.
    pub error: Option<String>,
    /// The id of the preset being edited (the form then saves it, or cancels).
    pub editing: Option<String>,
}

fn fit_color(fit: Fit) -> Color32 {
    match fit {
        Fit::Fits => pressure_color(0.0),
        Fit::Tight => pressure_color(0.8),
        Fit::WontFit => pressure_color(1.0),
    }
}

fn hover_text(w: &Workload, a: &Advice, unit: MemoryUnit) -> String {
    let f = |mib: u64| unit.format_mib(mib as f64);
    let text = w.text();
    let mut lines = vec![
        crate::t!("adv-hover-catalogue-peak", size = f(a.catalogue_mib)),
        crate::t!("adv-hover-measured-on", what = text.measured_on),
        crate::t!("adv-hover-source", what = text.source),
    ];
    if !text.settings.is_empty() {
        lines.push(crate::t!("adv-hover-settings", what = text.settings));
    }
    if let Some(s) = w.seconds {
        lines.push(crate::t!("adv-hover-time", seconds = s.to_string()));
    }
    match &w.shape {
        Shape::Fixed { phases, .. } if !phases.is_empty() => {
            lines.push(crate::t!("adv-hover-phases"));
            lines.extend(
                phases
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("  {}: {}", text.phase(i, &p.name), f(p.mib))),
            );
        }
        Shape::Sized { points, .. } => {
            lines.push(crate::t!("adv-hover-sizes"));
            lines.extend(
                points
                    .iter()
                    .map(|p| format!("  {}: {}", p.size, f(p.peak_mib))),
            );
        }
        Shape::Batched {
            base_mib,
            per_item_mib,
            ..
        } => lines.push(crate::t!(
            "adv-hover-batched",
            base = f(*base_mib),
            per = f(*per_item_mib)
        )),
        _ => {}
    }
    if let Some(m) = a.measured_here_mib {
        lines.push(crate::t!("adv-hover-measured-here", size = f(m)));
    }
    lines.join("\n")
}

/// The calibration key and label for recording a run of `w` as the advice stands: at the size
/// the advice names (or, with none safe, the smallest measured one).
pub fn run_key(w: &Workload, a: &Advice) -> (String, String) {
    use crate::workloads::calibration::key;
    match (&w.shape, &a.detail) {
        (Shape::Sized { points, .. }, Detail::Size(s)) => {
            let size = s
                .largest_safe
                .or(points.iter().map(|p| p.size).min())
                .unwrap_or(0);
            (
                key(&w.id, Some(size)),
                crate::t!(
                    "adv-run-at-size",
                    name = w.text().name,
                    size = size.to_string()
                ),
            )
        }
        _ => (key(&w.id, None), w.text().name.to_string()),
    }
}

/// What the panel shows.
pub struct AdvisorView<'a> {
    /// The GPU advised for.
    pub gpu_title: String,
    /// Its memory budget.
    pub budget: &'a Budget,
    /// Presets, in catalogue order.
    pub workloads: &'a [Workload],
    /// Advice, one per preset, same order.
    pub advice: &'a [Advice],
    /// A run being recorded.
    pub recorder: Option<&'a RunRecorder>,
    /// Ids of the user's own presets.
    pub user_ids: &'a [String],
    /// The name of the preset removed last, while it can be put back.
    pub removed: Option<&'a str>,
}

/// One line that never wraps (a reading must not change the panel's layout): cut with "…",
/// the whole text on hover.
fn one_line(ui: &mut Ui, text: impl Into<egui::WidgetText>, full: &str) {
    ui.add(egui::Label::new(text).truncate())
        .on_hover_text(full);
}

/// Draws the panel; the margin and the form are edited in place.
pub fn show(
    ui: &mut Ui,
    view: &AdvisorView<'_>,
    unit: MemoryUnit,
    margin_percent: &mut f32,
    basis: &mut crate::settings::FitBasis,
    form: &mut NewPresetForm,
) -> Option<AdvisorAction> {
    let AdvisorView {
        ref gpu_title,
        budget,
        workloads,
        advice,
        recorder,
        user_ids,
        removed,
    } = *view;
    let mut action = None;
    use crate::settings::FitBasis;
    let title = match *basis {
        FitBasis::Now => crate::t!("adv-what-fits-on", gpu = gpu_title),
        FitBasis::AfterFree => crate::t!("adv-what-fits-after-free", gpu = gpu_title),
        FitBasis::Idle => crate::t!("adv-what-fits-idle", gpu = gpu_title),
    };
    ui.label(RichText::new(title).strong());
    ui.horizontal(|ui| {
        for b in FitBasis::ALL {
            ui.selectable_value(basis, b, b.text())
                .on_hover_text(crate::t!("fit-basis-hover"));
        }
    });
    let rule = crate::t!(
        "adv-rule",
        free = unit.format(budget.free),
        margin = format!("{:.0}", budget.margin_percent),
        allowance = format!("{:.0}", crate::workloads::advisor::FIXED_ALLOWANCE_MIB)
    );
    one_line(ui, &rule, &rule);
    ui.add(
        egui::Slider::new(
            margin_percent,
            0.0..=crate::workloads::advisor::MAX_MARGIN_PERCENT,
        )
        .text(crate::t!("adv-margin")),
    )
    .on_hover_text(crate::t!("adv-margin-hover"));

    if let Some(r) = recorder {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(crate::t!(
                "adv-recording",
                name = &r.name,
                peak = unit.format_mib(r.peak_mib() as f64)
            ));
            let since = chrono::DateTime::from_timestamp(r.since as i64, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            ui.label(
                RichText::new(crate::t!(
                    "adv-recording-since",
                    since = since,
                    base = unit.format_mib(r.baseline_mib)
                ))
                .weak()
                .small(),
            );
            if r.confirming {
                ui.label(
                    RichText::new(crate::t!(
                        "adv-far-below",
                        peak = unit.format_mib(r.peak_mib() as f64),
                        expected = unit.format_mib(r.expected_mib as f64)
                    ))
                    .color(ui.visuals().warn_fg_color),
                );
                ui.horizontal(|ui| {
                    if ui.button(crate::t!("adv-save-anyway")).clicked() {
                        action = Some(AdvisorAction::ConfirmRun);
                    }
                    if ui.button(crate::t!("adv-discard")).clicked() {
                        action = Some(AdvisorAction::CancelRun);
                    }
                });
            } else {
                ui.horizontal(|ui| {
                    if ui.button(crate::t!("adv-done")).clicked() {
                        action = Some(AdvisorAction::FinishRun);
                    }
                    if ui.button(crate::t!("adv-cancel")).clicked() {
                        action = Some(AdvisorAction::CancelRun);
                    }
                });
            }
        });
    }

    ui.separator();
    let row_height = ui.spacing().interact_size.y;
    for (w, a) in workloads.iter().zip(advice) {
        let response = ui
            .push_id(&a.id, |ui| {
                ui.vertical(|ui| {
                    ui.horizontal(|ui| {
                        ui.label(
                            RichText::new(format!(" {} ", a.fit.text()))
                                .color(Color32::WHITE)
                                .background_color(fit_color(a.fit)),
                        );
                        let name = if a.measured_here_mib.is_some() {
                            crate::t!("adv-measured-here-suffix", name = &a.name)
                        } else {
                            a.name.clone()
                        };
                        one_line(ui, RichText::new(&name).strong(), &name);
                    });
                    let reasoning = a.reasoning(budget, unit);
                    one_line(ui, RichText::new(&reasoning).weak(), &reasoning);
                    // Sized and batched presets always have their detail line; the caveat (a
                    // second line) is on hover, so readings never add or remove rows.
                    if !matches!(w.shape, Shape::Fixed { .. }) {
                        let lines = a.detail_lines();
                        let first = lines.first().cloned().unwrap_or_default();
                        one_line(ui, &first, &lines.join("\n"));
                    }
                    // The last row: what to do instead, or the calibration button; same height.
                    ui.allocate_ui(egui::vec2(ui.available_width(), row_height), |ui| {
                        match (&a.fallback, recorder) {
                            (Some(f), _) => {
                                let text = crate::t!("adv-instead", what = f);
                                one_line(ui, &text, &text);
                            }
                            (None, None) => {
                                let (key, name) = run_key(w, a);
                                if ui
                                    .small_button(crate::t!("adv-running-now", name = &name))
                                    .on_hover_text(crate::t!("adv-running-now-hover"))
                                    .clicked()
                                {
                                    action =
                                        Some(AdvisorAction::StartRun(key, name, a.catalogue_mib));
                                }
                            }
                            (None, Some(_)) => {
                                ui.label("");
                            }
                        }
                    });
                })
                .response
            })
            .inner;
        response.on_hover_text(hover_text(w, a, unit));
        ui.add_space(4.0);
    }

    ui.separator();
    egui::CollapsingHeader::new(crate::t!("adv-own-presets")).show(ui, |ui| {
        for w in workloads.iter().filter(|w| user_ids.contains(&w.id)) {
            ui.horizontal(|ui| {
                ui.label(format!(
                    "{} ({})",
                    w.name,
                    unit.format_mib(w.reference_peak_mib() as f64)
                ));
                if ui
                    .small_button(crate::t!("adv-edit"))
                    .on_hover_text(crate::t!("adv-edit-hover", name = &w.name))
                    .clicked()
                {
                    *form = NewPresetForm {
                        name: w.name.clone(),
                        peak_mib: w.reference_peak_mib().to_string(),
                        measured_on: w.measured_on.clone(),
                        error: None,
                        editing: Some(w.id.clone()),
                    };
                }
                if ui
                    .small_button(crate::t!("adv-remove"))
                    .on_hover_text(crate::t!("adv-remove-hover", name = &w.name))
                    .clicked()
                {
                    action = Some(AdvisorAction::RemovePreset(w.id.clone()));
                }
            });
        }
        egui::Grid::new("new_preset").num_columns(2).show(ui, |ui| {
            let l = ui.label(crate::t!("adv-form-name"));
            ui.text_edit_singleline(&mut form.name).labelled_by(l.id);
            ui.end_row();
            let l = ui.label(crate::t!("adv-form-peak"));
            ui.text_edit_singleline(&mut form.peak_mib)
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label(crate::t!("adv-form-measured-on"));
            ui.text_edit_singleline(&mut form.measured_on)
                .labelled_by(l.id);
            ui.end_row();
        });
        if let Some(name) = removed {
            ui.horizontal(|ui| {
                ui.label(RichText::new(crate::t!("adv-removed", name = name)).weak());
                if ui.small_button(crate::t!("adv-undo")).clicked() {
                    action = Some(AdvisorAction::UndoRemove);
                }
            });
        }
        match form.editing.clone() {
            Some(id) => {
                ui.horizontal(|ui| {
                    if ui.button(crate::t!("adv-save-changes")).clicked() {
                        match preset_from_form(form) {
                            Ok(w) => {
                                *form = NewPresetForm::default();
                                action = Some(AdvisorAction::SavePreset(id, Box::new(w)));
                            }
                            Err(e) => form.error = Some(e),
                        }
                    }
                    if ui.button(crate::t!("adv-cancel")).clicked() {
                        *form = NewPresetForm::default();
                    }
                });
            }
            None => {
                if ui
                    .button(crate::t!("adv-add"))
                    .on_hover_text(crate::t!("adv-add-hover"))
                    .clicked()
                {
                    match preset_from_form(form) {
                        Ok(w) => {
                            *form = NewPresetForm::default();
                            action = Some(AdvisorAction::AddPreset(Box::new(w)));
                        }
                        Err(e) => form.error = Some(e),
                    }
                }
            }
        }
        if let Some(e) = &form.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.horizontal(|ui| {
            if ui.button(crate::t!("adv-import")).clicked() {
                action = Some(AdvisorAction::Import);
            }
            if ui.button(crate::t!("adv-export")).clicked() {
                action = Some(AdvisorAction::Export);
            }
        });
    });
    action
}

/// Validates the form into a preset.
pub fn preset_from_form(form: &NewPresetForm) -> Result<Workload, String> {
    let name = form.name.trim();
    if name.is_empty() {
        return Err(crate::t!("adv-err-name"));
    }
    let peak: u64 = form
        .peak_mib
        .trim()
        .replace(',', "")
        .parse()
        .map_err(|_| crate::t!("adv-err-peak", given = format!("{:?}", form.peak_mib)))?;
    if peak == 0 {
        return Err(crate::t!("adv-err-peak-zero"));
    }
    let id: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            // Any script's letters: 万象视频 and 混元视频 must not both become "user-----".
            if c.is_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(Workload {
        id: format!("user-{id}"),
        name: name.to_string(),
        shape: Shape::Fixed {
            peak_mib: peak,
            phases: vec![],
        },
        seconds: None,
        settings: String::new(),
        measured_on: if form.measured_on.trim().is_empty() {
            crate::t!("adv-not-stated")
        } else {
            form.measured_on.trim().to_string()
        },
        source: crate::t!("adv-added-by-you"),
        fallback: None,
        fallback_advice: None,
        zh_cn: None,
    })
}
