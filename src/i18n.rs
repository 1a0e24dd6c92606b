//! Every word a person reads, in their language: Fluent catalogues in `assets/i18n/<locale>/`
//! (English and Simplified Chinese), compiled into the binary, looked up through [`t!`].
//!
//! The language is one per process: chosen from the system (LC_ALL, LC_MESSAGES, LANG; the
//! user's UI language on Windows), from `--lang`, or from the window's View → Language, which is
//! kept in settings. Machine-readable output (CSV headers, JSON, Prometheus) never goes through
//! here: it stays English and stable.

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./assets/i18n",
        fallback_language: "en-US",
        // No Unicode isolation marks around arguments: they would show as boxes in some fonts
        // and as escapes wherever outside text is sanitised.
        customise: |bundle| {
            bundle.set_use_isolating(false);
            bundle.set_formatter(Some(grouped_integers));
        },
    };
}

/// Whole numbers are written with thousands grouped ("4,096 frames"), as everywhere else in
/// the app; other values take Fluent's own formatting.
fn grouped_integers<M>(value: &FluentValue, _: &M) -> Option<String> {
    match value {
        FluentValue::Number(n)
            if n.value.fract() == 0.0
                && n.value.abs() < 1e15
                && n.options.minimum_fraction_digits.is_none() =>
        {
            let digits = crate::units::group_thousands(n.value.abs() as u64);
            Some(if n.value < 0.0 {
                format!("-{digits}")
            } else {
                digits
            })
        }
        _ => None,
    }
}

static EN_US: LanguageIdentifier = langid!("en-US");
static ZH_CN: LanguageIdentifier = langid!("zh-CN");

/// A language the app speaks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
pub enum Language {
    /// English.
    #[default]
    #[serde(rename = "en-US")]
    #[value(name = "en")]
    English,
    /// Simplified Chinese (zh-CN).
    #[serde(rename = "zh-CN")]
    #[value(name = "zh-CN", alias = "zh", alias = "zh_CN")]
    Chinese,
}

impl Language {
    /// Every language, in menu order.
    pub const ALL: [Language; 2] = [Language::English, Language::Chinese];

    /// The language's own name, as its speakers write it (the menu shows these).
    pub fn native_name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::Chinese => "简体中文",
        }
    }

    /// Its BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Language::English => "en-US",
            Language::Chinese => "zh-CN",
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Language::English => &EN_US,
            Language::Chinese => &ZH_CN,
        }
    }

    /// The language a locale name means ("zh_CN.UTF-8", "zh-Hans", "zh", "en_GB"); `None` for
    /// "C", "POSIX" and languages the app does not speak.
    pub fn from_locale(name: &str) -> Option<Language> {
        let name = name.trim();
        let base = name.split(['.', '@']).next().unwrap_or("");
        let lang = base
            .split(['_', '-'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match lang.as_str() {
            // Traditional Chinese readers get Simplified rather than English: the nearest.
            "zh" => Some(Language::Chinese),
            "en" => Some(Language::English),
            _ => None,
        }
    }

    /// The system's language: on Unix LC_ALL, then LC_MESSAGES, then LANG (as gettext reads
    /// them), then the platform's own setting; on Windows the user's display language alone
    /// (see `platform::locale`); English when none names a language the app speaks.
    pub fn of_system() -> Language {
        Language::deciding(
            crate::platform::locale::UNIX_LOCALE_VARIABLES_APPLY,
            |var| std::env::var(var).ok(),
            crate::platform::locale::system_locale(),
        )
    }

    /// [`of_system`](Self::of_system) from given facts: whether the Unix variables apply,
    /// the environment, and the OS's own locale.
    pub fn deciding(
        unix_variables: bool,
        env: impl Fn(&str) -> Option<String>,
        system: Option<String>,
    ) -> Language {
        if unix_variables {
            for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
                if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                    // The first variable set decides, even "C": that is how gettext reads them.
                    return Language::from_locale(&value).unwrap_or_default();
                }
            }
        }
        system
            .and_then(|l| Language::from_locale(&l))
            .unwrap_or_default()
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Sets the language of everything said from now on.
pub fn set_language(language: Language) {
    CURRENT.store(language as u8, Ordering::Relaxed);
}

/// The language in force.
pub fn language() -> Language {
    match CURRENT.load(Ordering::Relaxed) {
        1 => Language::Chinese,
        _ => Language::English,
    }
}

/// An argument of a message: text, or a number (which also picks plural forms).
pub type Arg = FluentValue<'static>;

/// The message `id` in the current language, with `args`. A message missing from the
/// catalogue comes back as its id (a test fails the build's tests before that can ship).
pub fn lookup(id: &str, args: &[(&'static str, Arg)]) -> String {
    lookup_in(language(), id, args)
}

/// [`lookup`] in a given language.
pub fn lookup_in(language: Language, id: &str, args: &[(&'static str, Arg)]) -> String {
    let found = if args.is_empty() {
        LOCALES.try_lookup(language.id(), id)
    } else {
        let map: HashMap<Cow<'static, str>, Arg> = args
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
            .collect();
        LOCALES.try_lookup_with_args(language.id(), id, &map)
    };
    found.unwrap_or_else(|| id.to_string())
}

/// The text of message `id` in the current language: `t!("free-vram")`, or with arguments,
/// `t!("gpu-title", index = 0, host = name)`. Numbers pick plural forms; text is inserted as
/// it is.
#[macro_export]
macro_rules! t {
    ($id:literal) => {
        $crate::i18n::lookup($id, &[])
    };
    ($id:literal, $($key:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::lookup($id, &[$((stringify!($key), $crate::i18n::arg($value))),+])
    };
}

/// Converts a value into a message argument.
pub fn arg(value: impl IntoArg) -> Arg {
    value.into_arg()
}

/// What can be a message argument.
pub trait IntoArg {
    /// The argument.
    fn into_arg(self) -> Arg;
}

impl IntoArg for String {
    fn into_arg(self) -> Arg {
        FluentValue::String(Cow::Owned(self))
    }
}

impl IntoArg for &String {
    fn into_arg(self) -> Arg {
        FluentValue::String(Cow::Owned(self.clone()))
    }
}

impl IntoArg for &str {
    fn into_arg(self) -> Arg {
        FluentValue::String(Cow::Owned(self.to_string()))
    }
}

impl IntoArg for Cow<'_, str> {
    fn into_arg(self) -> Arg {
        FluentValue::String(Cow::Owned(self.into_owned()))
    }
}

macro_rules! number_args {
    ($($t:ty),*) => {$(
        impl IntoArg for $t {
            fn into_arg(self) -> Arg {
                FluentValue::from(self as f64)
            }
        }
    )*};
}
number_args!(u8, u16, u32, u64, usize, i32, i64, f32, f64);

/// Every message id of a locale's catalogue, from its `.ftl` files (for the completeness test
/// and the CLI's help).
pub fn message_ids(language: Language) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/i18n")
        .join(language.tag());
    let mut ids = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                ids.extend(text.lines().filter_map(|l| {
                    let id = l.split_once(" =")?.0;
                    (!id.is_empty()
                        && id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .then(|| id.to_string())
                }));
            }
        }
    }
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_windows_the_display_language_wins_over_unix_variables() {
        // Git for Windows sets LANG=en_US.UTF-8 for its tools; a Chinese Windows stays Chinese.
        let git_bash = |var: &str| (var == "LANG").then(|| "en_US.UTF-8".to_string());
        let chinese_windows = Some("zh-CN".to_string());
        assert_eq!(
            Language::deciding(false, git_bash, chinese_windows.clone()),
            Language::Chinese
        );
        // On Linux the variables speak first, as gettext reads them.
        assert_eq!(
            Language::deciding(true, git_bash, chinese_windows.clone()),
            Language::English
        );
        assert_eq!(
            Language::deciding(true, |_| None, chinese_windows),
            Language::Chinese
        );
        assert_eq!(
            Language::deciding(false, |_| None, Some("de-DE".into())),
            Language::English
        );
    }

    #[test]
    fn counts_pick_plural_forms_and_are_written_with_grouped_thousands() {
        let batch = |n: u64| {
            lookup_in(
                Language::English,
                "adv-template-batch",
                &[("name", "DDColor".into()), ("count", n.into())],
            )
        };
        assert_eq!(batch(1), "DDColor 1 frame at once");
        assert_eq!(batch(4096), "DDColor 4,096 frames at once");
        let zh = lookup_in(
            Language::Chinese,
            "adv-template-batch",
            &[("name", "DDColor".into()), ("count", 4096u64.into())],
        );
        assert!(zh.contains("4,096"), "{zh}");
    }

    #[test]
    fn locale_names_pick_the_language() {
        assert_eq!(
            Language::from_locale("zh_CN.UTF-8"),
            Some(Language::Chinese)
        );
        assert_eq!(Language::from_locale("zh-Hans"), Some(Language::Chinese));
        assert_eq!(Language::from_locale("zh_TW"), Some(Language::Chinese));
        assert_eq!(
            Language::from_locale("en_GB.UTF-8"),
            Some(Language::English)
        );
        assert_eq!(Language::from_locale("C"), None);
        assert_eq!(Language::from_locale("de_DE"), None);
    }

    #[test]
    fn every_catalogue_parses_without_errors() {
        for language in Language::ALL {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("assets/i18n")
                .join(language.tag());
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                if let Err((_, errors)) =
                    fluent_templates::fluent_bundle::FluentResource::try_new(text.clone())
                {
                    let where_: Vec<String> = errors
                        .iter()
                        .map(|e| {
                            let line = text[..e.pos.start.min(text.len())].lines().count();
                            format!("line {line}: {:?}", e.kind)
                        })
                        .collect();
                    panic!("{}: {where_:?}", entry.path().display());
                }
            }
        }
    }

    #[test]
    fn every_message_exists_in_every_locale() {
        let english = message_ids(Language::English);
        let chinese = message_ids(Language::Chinese);
        assert!(english.len() > 50, "{}", english.len());
        let missing: Vec<_> = english.iter().filter(|id| !chinese.contains(id)).collect();
        let extra: Vec<_> = chinese.iter().filter(|id| !english.contains(id)).collect();
        assert!(missing.is_empty(), "missing in zh-CN: {missing:?}");
        assert!(extra.is_empty(), "only in zh-CN: {extra:?}");
        // And each one resolves in both, given its arguments (a syntax error would leave it
        // out of the bundle).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/i18n/en-US");
        let source: String = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap() + "\n")
            .collect();
        for id in &english {
            let start = source.find(&format!("\n{id} =")).map_or(0, |i| i + 1);
            let block: String = source[start..]
                .lines()
                .enumerate()
                .take_while(|(i, l)| *i == 0 || l.starts_with(' ') || l.is_empty())
                .map(|(_, l)| l)
                .collect();
            let names: Vec<&'static str> = block
                .split('$')
                .skip(1)
                .map(|rest| {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    &*Box::leak(name.into_boxed_str())
                })
                .collect();
            let args: Vec<(&'static str, Arg)> =
                names.iter().map(|n| (*n, FluentValue::from(2.0))).collect();
            for language in Language::ALL {
                let text = lookup_in(language, id, &args);
                assert_ne!(&text, id, "{id} does not resolve in {}", language.tag());
                assert!(!text.contains("{$"), "{id} in {}: {text}", language.tag());
            }
        }
    }
}
