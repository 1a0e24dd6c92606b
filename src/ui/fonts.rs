//! The window's fonts: egui's own (Latin, Greek, Cyrillic, emoji) with one CJK font behind them,
//! so Chinese labels, paths, host and preset names draw as glyphs, not boxes. The font is the
//! system's, found once at start-up and mapped rather than read (only the pages of the glyphs
//! drawn are ever loaded).

use crate::platform::fonts::{FontFile, cjk_font};
use std::sync::Arc;

/// What happened to the CJK fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CjkFont {
    /// Loaded from this file.
    Loaded(FontFile),
    /// None is installed.
    Missing,
    /// One was found but could not be used.
    Unusable(String),
}

impl CjkFont {
    /// A note for the user when Chinese text will show as boxes (in English: without the
    /// font, Chinese would not be readable either).
    pub fn note(&self) -> Option<String> {
        match self {
            CjkFont::Loaded(_) => None,
            // In English whatever the language: Chinese is unreadable without the font.
            CjkFont::Missing => Some(crate::i18n::lookup_in(
                crate::i18n::Language::English,
                "font-missing",
                &[],
            )),
            CjkFont::Unusable(why) => Some(crate::i18n::lookup_in(
                crate::i18n::Language::English,
                "font-unusable",
                &[("why", why.clone().into())],
            )),
        }
    }
}

/// Maps `file` for the process's lifetime (fonts live as long as the window).
fn map(file: &FontFile) -> Result<&'static [u8], String> {
    let f = std::fs::File::open(&file.path).map_err(|e| format!("{}: {e}", file.path.display()))?;
    // SAFETY: a font file is not changed while a program uses it; the worst a concurrent
    // writer could do is change the glyphs drawn.
    let mapped =
        unsafe { memmap2::Mmap::map(&f) }.map_err(|e| format!("{}: {e}", file.path.display()))?;
    // egui panics on a file it cannot read as a font (or a face index that is not there), so
    // the same reader checks it first, and that it has the glyphs it is here for.
    use skrifa::MetadataProvider;
    let font = skrifa::FontRef::from_index(&mapped, file.index).map_err(|e| {
        format!(
            "{} (face {}) is not a usable font: {e}",
            file.path.display(),
            file.index
        )
    })?;
    if font.charmap().map('显').is_none() {
        return Err(format!("{} has no Chinese glyphs", file.path.display()));
    }
    Ok(Box::leak(Box::new(mapped)))
}

/// Installs egui's fonts with the system's CJK font behind them, once per context.
pub fn install(ctx: &egui::Context) -> CjkFont {
    install_file(ctx, cjk_font())
}

/// Installs egui's fonts with `file` (when there is one) behind them.
pub fn install_file(ctx: &egui::Context, file: Option<FontFile>) -> CjkFont {
    let mut fonts = egui::FontDefinitions::default();
    let status = match file {
        None => CjkFont::Missing,
        Some(file) => match map(&file) {
            Ok(bytes) => {
                let mut data = egui::FontData::from_static(bytes);
                data.index = file.index;
                fonts.font_data.insert("cjk".into(), Arc::new(data));
                for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
                    fonts.families.entry(family).or_default().push("cjk".into());
                }
                CjkFont::Loaded(file)
            }
            Err(e) => CjkFont::Unusable(e),
        },
    };
    ctx.set_fonts(fonts);
    status
}
