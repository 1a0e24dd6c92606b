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

/// Windows' Simplified Chinese UI fonts, best first, as Windows 10 and 11 install them: Microsoft
/// YaHei (the UI font since Vista; face 0 of the collection is the regular weight), DengXian
/// (Office's), SimHei, SimSun (face 0: SimSun, 1: NSimSun).
const WINDOWS_CJK: [(&str, u32); 5] = [
    ("msyh.ttc", 0),
    ("msyh.ttf", 0),
    ("Deng.ttf", 0),
    ("simhei.ttf", 0),
    ("simsun.ttc", 0),
];

/// Windows' font folders: the system's (`%WINDIR%\Fonts`) and the user's own installs
/// (`%LOCALAPPDATA%\Microsoft\Windows\Fonts`, since Windows 10 1809).
fn windows_font_folders() -> Vec<PathBuf> {
    let system = std::env::var_os("WINDIR")
        .or_else(|| std::env::var_os("SystemRoot"))
        .map(|w| PathBuf::from(w).join("Fonts"))
        .unwrap_or_else(|| PathBuf::from(r"C:\Windows\Fonts"));
    let mut folders = vec![system];
    if let Some(local) = std::env::var_os("LOCALAPPDATA") {
        folders.push(PathBuf::from(local).join(r"Microsoft\Windows\Fonts"));
    }
    folders
}

/// The best of [`WINDOWS_CJK`] in `folders`, folder by folder in the font's order. Windows
/// names files in any case ("MSYH.TTC" on older installs): the folder is listed once and
/// matched without case.
pub fn windows_cjk_font_in(folders: &[PathBuf]) -> Option<FontFile> {
    let listed: Vec<(PathBuf, String)> = folders
        .iter()
        .filter_map(|f| std::fs::read_dir(f).ok())
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.path(), e.file_name().to_string_lossy().to_lowercase()))
        .collect();
    WINDOWS_CJK.iter().find_map(|(name, index)| {
        listed
            .iter()
            .find(|(_, lower)| *lower == name.to_lowercase())
            .map(|(path, _)| FontFile {
                path: path.clone(),
                index: *index,
            })
    })
}

/// Files the usual packages install (Debian/Ubuntu, Fedora, Arch; Windows' own CJK fonts),
/// where fontconfig is not there to ask.
fn from_known_paths() -> Option<FontFile> {
    if cfg!(windows)
        && let Some(found) = windows_cjk_font_in(&windows_font_folders())
    {
        return Some(found);
    }
    let candidates: [(PathBuf, u32); 6] = [
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_fonts_folders_give_microsoft_yahei_first_in_any_case() {
        let system = tempfile::tempdir().unwrap();
        let user = tempfile::tempdir().unwrap();
        for name in ["arial.ttf", "SIMSUN.TTC", "simhei.ttf"] {
            std::fs::write(system.path().join(name), b"font").unwrap();
        }
        let folders = [system.path().to_path_buf(), user.path().to_path_buf()];
        // No YaHei: SimHei comes before SimSun.
        let found = windows_cjk_font_in(&folders).unwrap();
        assert_eq!(found.path, system.path().join("simhei.ttf"));
        // YaHei installed for this user only (upper case, as older installs name it).
        std::fs::write(user.path().join("MSYH.TTC"), b"font").unwrap();
        let found = windows_cjk_font_in(&folders).unwrap();
        assert_eq!((found.path, found.index), (user.path().join("MSYH.TTC"), 0));
        // A folder with no Chinese font, and one that is not there.
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("arial.ttf"), b"font").unwrap();
        let missing = empty.path().join("nope");
        assert_eq!(
            windows_cjk_font_in(&[empty.path().to_path_buf(), missing]),
            None
        );
    }
}
