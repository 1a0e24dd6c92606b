//! Text that came from outside (agents, ComfyUI, process names, log files) made safe to show.
//!
//! Such text may carry terminal escape sequences (which retitle the terminal, clear the screen or
//! hide text), other control characters, or Unicode bidirectional controls (which reorder what
//! is shown). [`sanitize`] replaces each with a visible `\u{…}` escape, so the text reads the
//! same in a terminal, in the window and in a CSV file, and can never act on any of them.

use std::borrow::Cow;

/// Longest text kept from one outside field; the rest is cut with "…".
pub const MAX_FIELD_CHARS: usize = 512;

/// True for characters that must not reach a terminal or the window as themselves.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200E}' | '\u{200F}' | '\u{061C}'      // directional marks
            | '\u{202A}'..='\u{202E}'                 // embeddings and overrides
            | '\u{2066}'..='\u{2069}'                 // isolates
            | '\u{2028}' | '\u{2029}'                 // line and paragraph separators
            | '\u{FEFF}')
}

/// `text` with every control, bidi-control and separator character shown as `\u{XX}`, cut
/// to [`MAX_FIELD_CHARS`]. Borrowed when nothing needed changing.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    sanitize_within(text, MAX_FIELD_CHARS)
}

/// [`sanitize`] keeping up to `max_chars` characters: a longer text is cut at the last word
/// boundary before that (mid-word only when one word is that long), with "…".
pub fn sanitize_within(text: &str, max_chars: usize) -> Cow<'_, str> {
    let long = text.chars().nth(max_chars).is_some();
    if !long && !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let kept = if long {
        let end = text
            .char_indices()
            .nth(max_chars)
            .map_or(text.len(), |(i, _)| i);
        let head = &text[..end];
        // Cut at a space (when a space comes after the first half); mid-word otherwise.
        let at_word = head
            .rfind(char::is_whitespace)
            .filter(|&i| i >= end / 2)
            .unwrap_or(end);
        head[..at_word].trim_end()
    } else {
        text
    };
    let mut out = String::with_capacity(kept.len() + 8);
    for c in kept.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    if long {
        out.push('…');
    }
    Cow::Owned(out)
}

/// [`sanitize`] into an owned string.
pub fn sanitized(text: &str) -> String {
    sanitize(text).into_owned()
}

/// A serde helper: `#[serde(deserialize_with = "crate::text::safe_string")]` on fields that
/// arrive from outside, so no consumer can forget to clean them.
pub fn safe_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw: String = serde::Deserialize::deserialize(d)?;
    Ok(sanitized(&raw))
}

/// [`safe_string`] for optional fields.
pub fn safe_opt_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(raw.map(|s| sanitized(&s)))
}

/// [`safe_string`] for lists of strings.
pub fn safe_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let raw: Vec<String> = serde::Deserialize::deserialize(d)?;
    Ok(raw.iter().map(|s| sanitized(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_controls_become_visible() {
        assert_eq!(sanitize("python3"), "python3");
        assert!(matches!(sanitize("python3"), Cow::Borrowed(_)));
        assert_eq!(
            sanitize("\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"
        );
        assert_eq!(sanitize("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(sanitize("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
        assert_eq!(sanitize("line\nbreak\r"), "line\\u{a}break\\u{d}");
        assert_eq!(sanitize("c1 \u{9b}31m"), "c1 \\u{9b}31m");
        assert_eq!(sanitize("中文 ok"), "中文 ok");
    }

    #[test]
    fn long_fields_are_cut_at_a_word() {
        let long = "x".repeat(10_000);
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(cut.ends_with('…'));
        let words = "allocated memory ".repeat(40);
        let cut = sanitize_within(&words, 100);
        assert!(
            cut.ends_with("memory…") || cut.ends_with("allocated…"),
            "{cut}"
        );
        assert!(cut.chars().count() <= 101);
        assert_eq!(sanitize_within("short", 100), "short");
    }
}
