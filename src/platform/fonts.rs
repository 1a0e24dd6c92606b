//! Where this system keeps a font with Chinese (CJK) glyphs.

use std::path::PathBuf;

/// A font file and, for a collection (.ttc), the face within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FontFile {
    /// The file.
    pub path: PathBuf,
    /// The face's index in a collection (0 for a single font).
    pub index: u32,
}

/// Families tried first, best first: the ones Chinese desktops install (fontconfig's names).
#[cfg(unix)]
const PREFERRED: [&str; 6] = [
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
];

/// A font with Simplified Chinese glyphs, if one is installed: `VRAMDECK_CJK_FONT` (a path)
/// first, then what fontconfig knows for the zh-cn language (Linux), then the usual files.
pub fn cjk_font() -> Option<FontFile> {
    if let Some(path) = std::env::var_os("VRAMDECK_CJK_FONT") {
        return Some(FontFile {
            path: PathBuf::from(path),
            index: 0,
        });
    }
    from_fontconfig().or_else(from_known_paths)
}

/// Asks fontconfig (`fc-list :lang=zh-cn`) for fonts that cover Simplified Chinese.
#[cfg(unix)]
fn from_fontconfig() -> Option<FontFile> {
    let out = std::process::Command::new("fc-list")
        .args(["-f", "%{file}|%{index}|%{family}\\n", ":lang=zh-cn"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fonts: Vec<(FontFile, String)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '|');
            let path = PathBuf::from(parts.next()?);
            let index = parts.next()?.trim().parse().unwrap_or(0);
            let family = parts.next().unwrap_or("").to_string();
            Some((FontFile { path, index }, family))
        })
        .collect();
    PREFERRED
        .iter()
        .find_map(|want| fonts.iter().find(|(_, family)| family.contains(want)))
        .or_else(|| fonts.first())
        .map(|(f, _)| f.clone())
}

#[cfg(not(unix))]
fn from_fontconfig() -> Option<FontFile> {
    None
}

/// Files the usual packages install (Debian/Ubuntu, Fedora, Arch; Windows' Microsoft YaHei and
/// SimSun), where fontconfig is not there to ask.
fn from_known_paths() -> Option<FontFile> {
    let windows_fonts = std::env::var_os("WINDIR")
        .map(|w| PathBuf::from(w).join("Fonts"))
        .unwrap_or_else(|| PathBuf::from(r"C:\Windows\Fonts"));
    let candidates: [(PathBuf, u32); 8] = [
        (windows_fonts.join("msyh.ttc"), 0),
        (windows_fonts.join("simsun.ttc"), 0),
        // Noto Sans CJK's collection: the faces go JP, KR, SC, TC, HK.
        (
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc".into(),
            2,
        ),
        (
            "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc".into(),
            2,
        ),
        (
            "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc".into(),
            2,
        ),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc".into(), 0),
        (
            "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc".into(),
            0,
        ),
        (
            "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf".into(),
            0,
        ),
    ];
    candidates
        .into_iter()
        .find(|(p, _)| p.is_file())
        .map(|(path, index)| FontFile { path, index })
}
