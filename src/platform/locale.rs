//! Where the user's language is read from on this OS.

/// Whether the Unix locale variables (LC_ALL, LC_MESSAGES, LANG) speak for the user. On Windows
/// they do not: they are Unix conventions that Git Bash, MSYS2 and Python installers set for
/// their own tools (`LANG=en_US.UTF-8` by default in Git for Windows), so a Chinese Windows user
/// would get English. There the language comes from Windows' own display language (and
/// `--lang` or the window's choice override it).
pub const UNIX_LOCALE_VARIABLES_APPLY: bool = cfg!(not(windows));

/// The OS's own idea of the user's language (Windows: the display language, through
/// `GetUserPreferredUILanguages`; elsewhere the locale), as a BCP 47 tag.
pub fn system_locale() -> Option<String> {
    sys_locale::get_locale()
}
