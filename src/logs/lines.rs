//! Reading a log the way users save them, one bounded line at a time.
//!
//! Logs arrive as UTF-8, UTF-8 with a BOM, or UTF-16 with a BOM (PowerShell's `>` and
//! `Out-File` on Windows PowerShell 5), with CRLF line ends and ANSI colour codes from
//! coloured consoles. [`LogLines`] turns any of them into plain text lines without ever holding
//! more than one line: a line longer than [`MAX_LINE_BYTES`] is cut (the rest is skipped), so
//! a 2 GB file without a newline costs 64 KiB, not 2 GB.

use std::io::{BufRead, BufReader, Read};

/// Longest line kept; the rest of a longer line is skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The text encoding a log was saved in, from its byte-order mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a BOM (and anything else, read leniently).
    Utf8,
    /// UTF-16, little-endian (Windows).
    Utf16Le,
    /// UTF-16, big-endian.
    Utf16Be,
}

/// Turns UTF-16 bytes into UTF-8 bytes as they are read.
struct Utf16ToUtf8<R> {
    inner: R,
    big_endian: bool,
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    high_surrogate: Option<u16>,
}

impl<R: Read> Read for Utf16ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            let mut chunk = [0u8; 8192];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.pending.extend_from_slice(&chunk[..n]);
            let whole = self.pending.len() / 2 * 2;
            for pair in self.pending[..whole].chunks_exact(2) {
                let unit = if self.big_endian {
                    u16::from_be_bytes([pair[0], pair[1]])
                } else {
                    u16::from_le_bytes([pair[0], pair[1]])
                };
                let c = match (self.high_surrogate.take(), unit) {
                    (None, 0xD800..=0xDBFF) => {
                        self.high_surrogate = Some(unit);
                        continue;
                    }
                    (Some(high), 0xDC00..=0xDFFF) => char::from_u32(
                        0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00),
                    ),
                    (_, 0xD800..=0xDFFF) => None,
                    (_, unit) => char::from_u32(u32::from(unit)),
                };
                let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut utf8 = [0u8; 4];
                self.out
                    .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
            self.pending.drain(..whole);
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Where a JSON escape sequence stands between two reads.
#[derive(Clone, Copy)]
enum Escape {
    None,
    Backslash,
    /// `\u` and the hex digits read so far (count, value); a high surrogate waits in `high`.
    Unicode {
        digits: u8,
        value: u32,
    },
}

/// Turns a log saved as one JSON string (ComfyUI's `/internal/logs` answer: every console
/// write as `"<timestamp> - <text>"`, joined, `\n` escaped) back into its lines as it is read.
struct JsonEscapes<R> {
    inner: R,
    state: Escape,
    out: Vec<u8>,
    out_pos: usize,
}

impl<R: BufRead> Read for JsonEscapes<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(0);
            }
            let n = chunk.len();
            for &b in chunk {
                self.state = match (self.state, b) {
                    (Escape::None, b'\\') => Escape::Backslash,
                    (Escape::None, b) => {
                        self.out.push(b);
                        Escape::None
                    }
                    (Escape::Backslash, b'u') => Escape::Unicode {
                        digits: 0,
                        value: 0,
                    },
                    (Escape::Backslash, b) => {
                        self.out.push(match b {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' | b'f' => b' ',
                            other => other, // \" \\ \/ and anything else as itself
                        });
                        Escape::None
                    }
                    (Escape::Unicode { digits, value }, b) => {
                        let digit = (b as char).to_digit(16).unwrap_or(0);
                        let value = value * 16 + digit;
                        if digits + 1 < 4 {
                            Escape::Unicode {
                                digits: digits + 1,
                                value,
                            }
                        } else {
                            // Surrogates (emoji) become the replacement character: a log's
                            // words and numbers are what matter here.
                            let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
                            let mut utf8 = [0u8; 4];
                            self.out
                                .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                            Escape::None
                        }
                    }
                };
            }
            self.inner.consume(n);
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Lines of a log, decoded, without CR, ANSI escape sequences or NULs.
pub struct LogLines {
    reader: Box<dyn BufRead + Send>,
    /// The encoding found.
    pub encoding: Encoding,
    /// Lines cut at [`MAX_LINE_BYTES`] so far.
    pub cut_lines: usize,
    line: Vec<u8>,
}

impl LogLines {
    /// Reads `source`, finding its encoding from the first bytes.
    pub fn new(source: impl Read + Send + 'static) -> std::io::Result<Self> {
        let mut reader = BufReader::with_capacity(64 * 1024, source);
        let head = reader.fill_buf()?;
        let encoding = match head {
            [0xFF, 0xFE, ..] => Encoding::Utf16Le,
            [0xFE, 0xFF, ..] => Encoding::Utf16Be,
            _ => Encoding::Utf8,
        };
        let reader: Box<dyn BufRead + Send> = match encoding {
            Encoding::Utf8 => {
                if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    reader.consume(3);
                }
                let head = reader.fill_buf()?;
                let start = head.iter().position(|b| !b.is_ascii_whitespace());
                let json_string = start
                    .is_some_and(|i| head[i] == b'"' || head[i..].starts_with(br#"{"entries""#));
                if json_string {
                    Box::new(BufReader::with_capacity(
                        64 * 1024,
                        JsonEscapes {
                            inner: reader,
                            state: Escape::None,
                            out: Vec::new(),
                            out_pos: 0,
                        },
                    ))
                } else {
                    Box::new(reader)
                }
            }
            Encoding::Utf16Le | Encoding::Utf16Be => {
                reader.consume(2);
                Box::new(BufReader::with_capacity(
                    64 * 1024,
                    Utf16ToUtf8 {
                        inner: reader,
                        big_endian: encoding == Encoding::Utf16Be,
                        pending: Vec::new(),
                        out: Vec::new(),
                        out_pos: 0,
                        high_surrogate: None,
                    },
                ))
            }
        };
        Ok(LogLines {
            reader,
            encoding,
            cut_lines: 0,
            line: Vec::with_capacity(1024),
        })
    }

    /// Reads text already in memory (tests, pasted text).
    pub fn from_text(text: &str) -> Self {
        let owned = text.as_bytes().to_vec();
        LogLines::new(std::io::Cursor::new(owned)).expect("reading memory cannot fail")
    }

    /// The next line, or `None` at the end. A carriage return that does not end the line
    /// (tqdm's progress bars redraw themselves with one) starts it again, as on a terminal:
    /// what follows the last one is the line, so an error printed after a thousand redraws is
    /// neither lost in them nor cut off with them at [`MAX_LINE_BYTES`].
    pub fn next_line(&mut self) -> std::io::Result<Option<String>> {
        self.line.clear();
        let mut cut = false;
        let mut any = false;
        // A CR ended the bytes read so far: text after it redraws the line.
        let mut carriage_return = false;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            any = true;
            let end = buf.iter().position(|b| *b == b'\n');
            let take = end.unwrap_or(buf.len());
            let chunk = &buf[..take];
            // The last CR followed by text in this chunk; CRs just before the LF (CR LF,
            // CR CR LF) keep the text before them.
            let redraw = chunk
                .iter()
                .enumerate()
                .rev()
                .skip_while(|(_, b)| **b == b'\r')
                .find(|(_, b)| **b == b'\r')
                .map(|(i, _)| i + 1);
            let has_text = chunk.iter().any(|b| *b != b'\r');
            let at = match redraw {
                Some(at) => Some(at),
                None if carriage_return && has_text => Some(0),
                None => None,
            };
            if at.is_some() {
                self.line.clear();
                cut = false;
            }
            let text = &chunk[at.unwrap_or(0)..];
            let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
            for (kept, b) in text.iter().filter(|b| **b != b'\r').enumerate() {
                if kept == room {
                    cut = true;
                    break;
                }
                self.line.push(*b);
            }
            if let Some(last) = chunk.last() {
                carriage_return = *last == b'\r';
            }
            self.reader
                .consume(if end.is_some() { take + 1 } else { take });
            if end.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if cut {
            self.cut_lines += 1;
        }
        Ok(Some(clean(&String::from_utf8_lossy(&self.line))))
    }
}

impl Iterator for LogLines {
    type Item = std::io::Result<String>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

/// A line without its CR, NULs and ANSI escape sequences (CSI `ESC [ … final`, OSC
/// `ESC ] … BEL|ESC \`, and two-byte `ESC x`).
pub fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                            if c == '\u{1b}' {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\r' | '\0' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: Vec<u8>) -> Vec<String> {
        LogLines::new(std::io::Cursor::new(bytes))
            .unwrap()
            .map(|l| l.unwrap())
            .collect()
    }

    #[test]
    fn utf16_with_bom_crlf_and_colours_read_as_plain_text() {
        let text = "\u{1b}[31mtorch.OutOfMemoryError\u{1b}[0m: CUDA out of memory.\r\nnext — ✓\r\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
        let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
        utf8_bom.extend(text.as_bytes());
        let expected = vec![
            "torch.OutOfMemoryError: CUDA out of memory.".to_string(),
            "next — ✓".to_string(),
        ];
        assert_eq!(all(le), expected);
        assert_eq!(all(be), expected);
        assert_eq!(all(utf8_bom), expected);
        assert_eq!(all(text.as_bytes().to_vec()), expected);
    }

    #[test]
    fn astral_characters_survive_utf16() {
        let text = "emoji 😀 ok\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(all(le), vec!["emoji 😀 ok".to_string()]);
    }

    #[test]
    fn an_endless_line_costs_only_the_cap() {
        let mut bytes = vec![b'x'; MAX_LINE_BYTES * 3];
        bytes.extend_from_slice(b"\nshort\n");
        let mut lines = LogLines::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(lines.next_line().unwrap().unwrap().len(), MAX_LINE_BYTES);
        assert_eq!(lines.next_line().unwrap().unwrap(), "short");
        assert_eq!(lines.next_line().unwrap(), None);
        assert_eq!(lines.cut_lines, 1);
    }

    #[test]
    fn osc_titles_and_bare_escapes_are_removed() {
        assert_eq!(clean("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(clean("\u{1b}]2;t\u{1b}\\x"), "x");
        assert_eq!(clean("a\u{1b}[1;32mb\u{1b}[Kc"), "abc");
        assert_eq!(clean("unterminated \u{1b}["), "unterminated ");
    }

    /// Hands out one byte per read, so every chunk boundary is exercised.
    struct OneByte(std::io::Cursor<Vec<u8>>);

    impl Read for OneByte {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn a_carriage_return_redraws_the_line_as_a_terminal_does() {
        let text = b"bar 1%\rbar 50%\rbar 99%error here\nnext\r\nwin\r\r\nend\r".to_vec();
        let expected = ["bar 99%error here", "next", "win", "end"];
        assert_eq!(all(text.clone()), expected);
        let one_by_one: Vec<String> = LogLines::new(OneByte(std::io::Cursor::new(text)))
            .unwrap()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(one_by_one, expected);
    }

    #[test]
    fn a_log_saved_as_one_json_string_reads_as_its_lines() {
        let json = br#""2026-12-01T10:00:00 - got prompt\n2026-12-01T10:00:01 - caf\u00e9 \"quoted\" \\path\n""#;
        let lines = all(json.to_vec());
        assert_eq!(
            lines,
            [
                "\"2026-12-01T10:00:00 - got prompt",
                "2026-12-01T10:00:01 - café \"quoted\" \\path",
                "\""
            ]
        );
    }
}
