//! The window in Simplified Chinese: at every size people use, what is on screen comes from the
//! Chinese catalogue (no English sentence left over), the process table keeps its VRAM column
//! whole, and the CJK font really draws Chinese glyphs. The whole binary speaks Chinese: the
//! language is one per process.

mod common;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable, by};
use std::time::{Duration, SystemTime};
use vramdeck::i18n::{self, Language};
use vramdeck::settings::Settings;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{SharedTelemetry, Telemetry};
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;

const START: f64 = 1_800_000_000.0;

fn demo() -> SharedTelemetry {
    let mut sim = SimulatedGpus::demo("test");
    let mut t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    for s in 0..120 {
        t.record(Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(START + s as f64),
            gpus: sim.sample_at(Duration::from_secs(s)),
        });
    }
    t.shared()
}

/// The demo window with Chinese chosen in View → Language, as a user would leave it, with the
/// system's CJK font installed as the app does at start-up. The harness panics on any
/// character no font can draw, so every frame here also proves there is no box on screen.
fn chinese_window(width: f32, height: f32) -> Harness<'static, VramDeckApp> {
    chinese_window_with(
        width,
        height,
        Settings {
            language: Some(Language::Chinese),
            ..Settings::default()
        },
    )
}

/// [`chinese_window`] with `settings` (Chinese stays the language on screen).
fn chinese_window_with(
    width: f32,
    height: f32,
    settings: Settings,
) -> Harness<'static, VramDeckApp> {
    i18n::set_language(Language::Chinese);
    let app = VramDeckApp::new(demo(), None, settings, None, vec![]);
    let mut h = Harness::builder()
        .with_size(egui::vec2(width, height))
        .with_context_setup(|ctx| {
            let status = vramdeck::ui::fonts::install(ctx);
            assert!(
                matches!(status, vramdeck::ui::fonts::CjkFont::Loaded(_)),
                "no CJK font ({status:?}): install fonts-wqy-microhei or fonts-noto-cjk \
                 (tests/run-all.sh and .ci/run do)"
            );
        })
        .build_ui_state(|ui, app: &mut VramDeckApp| app.show(ui), app);
    h.run_steps(3);
    h
}

/// Every piece of text on screen (labels and values of the accessibility tree).
fn texts(h: &Harness<'static, VramDeckApp>) -> Vec<String> {
    h.query_all(by())
        .filter_map(|n| {
            let node = n.accesskit_node();
            node.label().or_else(|| node.value()).map(|s| s.to_string())
        })
        .collect()
}

/// English messages of the catalogue (without arguments, different from their Chinese) that
/// must not appear in a Chinese window: `true` for a sentence (never inside any text), `false`
/// for a word or two (never a whole label).
fn english_messages() -> Vec<(String, String, bool)> {
    i18n::message_ids(Language::English)
        .into_iter()
        .filter_map(|id| {
            let en = i18n::lookup_in(Language::English, &id, &[]);
            let zh = i18n::lookup_in(Language::Chinese, &id, &[]);
            let letters = en.chars().filter(|c| c.is_ascii_alphabetic()).count();
            let sentence = en.contains(' ') && letters >= 6;
            (!en.contains('{') && letters >= 3 && en != zh).then_some((id, en, sentence))
        })
        .collect()
}

fn assert_no_english(h: &Harness<'static, VramDeckApp>, where_: &str) {
    let on_screen = texts(h);
    assert!(
        on_screen.iter().any(|t| t == "录制为 CSV"),
        "{where_}: the top bar is in Chinese; on screen: {on_screen:?}"
    );
    let english = english_messages();
    assert!(english.len() > 100, "the English catalogue was read");
    for text in &on_screen {
        for (id, en, sentence) in &english {
            let found = if *sentence {
                text.contains(en.as_str())
            } else {
                text.trim() == en
            };
            assert!(
                !found,
                "{where_}: {text:?} still says the English of {id} ({en:?})"
            );
        }
    }
}

fn assert_vram_column_whole(h: &Harness<'static, VramDeckApp>, width: f32) {
    let header = h.get_by_label("显存").rect();
    assert!(
        header.max.x <= width,
        "the VRAM header ends at {} of {width}",
        header.max.x
    );
}

#[test]
fn full_hd_in_chinese_has_no_english_left_and_keeps_every_column() {
    let h = chinese_window(1_920.0, 1_080.0);
    assert_no_english(&h, "1920×1080");
    h.get_by_label_contains("GPU 0 的历史");
    assert_vram_column_whole(&h, 1_920.0);
}

#[test]
fn a_laptop_screen_in_chinese_switches_tabs_by_their_chinese_names() {
    let mut h = chinese_window(1_280.0, 720.0);
    assert_no_english(&h, "1280×720");
    let (record, hosts) = (
        h.get_by_label("录制为 CSV").rect(),
        h.get_by_label("远程主机…").rect(),
    );
    assert!(
        (record.center().y - hosts.center().y).abs() < 2.0,
        "the top bar wrapped"
    );
    assert_vram_column_whole(&h, 1_280.0);
    h.get_by_label("能跑什么").click();
    h.run_steps(2);
    assert_no_english(&h, "1280×720, what fits");
    h.get_by_label_contains("GPU 0 现在能跑什么");
}

#[test]
fn the_declared_minimum_in_chinese_still_fits_its_columns() {
    let mut h = chinese_window(640.0, 420.0);
    assert_vram_column_whole(&h, 640.0);
    for tab in ["显卡", "能跑什么", "历史"] {
        h.get_by_label(tab).click();
        h.run_steps(2);
        assert_no_english(&h, &format!("640×420, tab {tab}"));
    }
}

#[test]
fn the_cjk_font_draws_chinese_glyphs_that_the_default_fonts_lack() {
    let ctx = egui::Context::default();
    ctx.run_ui(egui::RawInput::default(), |_| {})
        .textures_delta
        .clear();
    let font = egui::FontId::proportional(14.0);
    assert!(
        !ctx.fonts_mut(|f| f.has_glyphs(&font, "释放显存")),
        "egui's own fonts have no Chinese: the test would prove nothing"
    );
    let status = vramdeck::ui::fonts::install(&ctx);
    let vramdeck::ui::fonts::CjkFont::Loaded(file) = &status else {
        panic!(
            "no CJK font was found ({status:?}); install fonts-wqy-microhei or fonts-noto-cjk \
             (tests/run-all.sh and .ci/run do)"
        );
    };
    ctx.run_ui(egui::RawInput::default(), |_| {})
        .textures_delta
        .clear();
    assert!(
        ctx.fonts_mut(|f| f.has_glyphs(&font, "释放显存 能跑什么 历史")),
        "{} is installed but egui cannot draw Chinese with it",
        file.path.display()
    );
    assert!(status.note().is_none());
}

#[test]
fn a_file_that_is_not_a_font_is_reported_instead_of_crashing_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("not-a-font.ttf");
    std::fs::write(&bogus, vec![0x42u8; 4096]).unwrap();
    let ctx = egui::Context::default();
    let status = vramdeck::ui::fonts::install_file(
        &ctx,
        Some(vramdeck::platform::fonts::FontFile {
            path: bogus,
            index: 0,
        }),
    );
    assert!(
        matches!(status, vramdeck::ui::fonts::CjkFont::Unusable(_)),
        "{status:?}"
    );
    // egui still has its own fonts and draws a frame.
    ctx.run_ui(egui::RawInput::default(), |ui| {
        ui.label("释放显存 Free VRAM");
    })
    .textures_delta
    .clear();
    let note = status.note().unwrap();
    assert!(note.contains("not a usable font"), "{note}");
}

#[test]
fn chinese_presets_get_their_own_ids_and_never_replace_each_other() {
    use vramdeck::ui::advisor_panel::{NewPresetForm, preset_from_form};
    let preset = |name: &str| {
        preset_from_form(&NewPresetForm {
            name: name.into(),
            peak_mib: "9000".into(),
            ..Default::default()
        })
        .unwrap()
    };
    let (a, b) = (preset("万象视频"), preset("混元视频"));
    assert_eq!(a.id, "user-万象视频");
    assert_ne!(a.id, b.id);
    // Stable: the same name gives the same id (an edit replaces its own preset only).
    assert_eq!(preset("万象视频").id, a.id);
}

#[test]
fn chinese_names_from_outside_draw_as_glyphs_in_the_process_table() {
    let t = demo();
    if let Some(latest) = vramdeck::telemetry::sampler::lock(&t).latest.as_mut() {
        latest.gpus[0].processes[0].name = "万相2.1 文生视频 14B · 显存日志.csv".into();
    }
    i18n::set_language(Language::Chinese);
    let settings = Settings {
        language: Some(Language::Chinese),
        ..Settings::default()
    };
    let app = VramDeckApp::new(t, None, settings, None, vec![]);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1_920.0, 1_080.0))
        .with_context_setup(|ctx| {
            vramdeck::ui::fonts::install(ctx);
        })
        .build_ui_state(|ui, app: &mut VramDeckApp| app.show(ui), app);
    // The harness panics on a character no font has: these frames drawing the name prove it.
    h.run_steps(3);
    h.get_by_label_contains("万相2.1 文生视频 14B");
}

#[test]
fn the_language_is_chosen_in_the_view_menu() {
    // Chinese from the system, nothing chosen yet: the menu's row of languages takes a click
    // (a combo box there was a popup in a popup that closed the menu instead).
    let mut h = chinese_window_with(1280.0, 720.0, Settings::default());
    assert_eq!(h.state().settings().language, None);
    h.get_by_label("视图").click();
    h.run_steps(2);
    h.get_by_label("简体中文").click();
    h.run_steps(2);
    assert_eq!(h.state().settings().language, Some(Language::Chinese));
}
