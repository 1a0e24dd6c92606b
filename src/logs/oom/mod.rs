//! Finds CUDA out-of-memory events in any log users paste (ComfyUI's console and popup text,
//! WebUI logs, PyTorch tracebacks of every era, onnxruntime) and says, with the numbers, what
//! caused each and what to change. Formats: see [`parse`]; causes and advice: see [`advice`].
//!
//! Reading is streamed (bounded lines, UTF-8 or UTF-16, CRLF, colour codes) and memory stays
//! bounded: the last lines for context, and at most [`MAX_EVENTS`] distinct events — the same
//! failure with the same numbers again (a job retrying) is counted, not kept.

pub mod advice;
pub mod parse;

pub use advice::Cause;
pub use parse::{Era, Numbers, OomKind, OtherProcess};

use super::lines::LogLines;
use crate::units::Bytes;
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;
use regex::Regex;
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

/// A workload recognised from the lines around an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognised {
    /// Preset id.
    pub preset_id: String,
    /// Input size, when the log says.
    pub size: Option<u32>,
    /// Batch (frames processed at once, for FaceFusion its execution threads), when the log says.
    pub batch: Option<u32>,
    /// Settings in the log the seed articles warn about.
    pub hints: Vec<String>,
}

/// One failure found in the log, with its numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct OomEvent {
    /// 1-based line number (of its first occurrence).
    pub line: usize,
    /// How many more times the same failure, with the same numbers, appeared later (a job
    /// that retried, or a message printed twice); such repeats are counted, not kept.
    pub repeats: u64,
    /// What failed.
    pub kind: OomKind,
    /// The line itself, trimmed, cut and sanitised.
    pub text: String,
    /// Which era's format the message has (tells which allocator settings exist).
    pub era: Era,
    /// The numbers the message carried.
    pub numbers: Numbers,
    /// The main cause, as far as the numbers tell.
    pub cause: Cause,
    /// The workload, when recognised.
    pub workload: Option<Recognised>,
    /// What to change, most useful first.
    pub advice: Vec<String>,
}

/// The result of reading a whole log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analysis {
    /// Distinct events in file order, at most [`MAX_EVENTS`].
    pub events: Vec<OomEvent>,
    /// Lines read.
    pub lines: usize,
    /// Distinct events past [`MAX_EVENTS`], counted but not kept.
    pub more_events: u64,
    /// Lines longer than the reader keeps, cut.
    pub cut_lines: usize,
}

impl Analysis {
    /// Every event found, repeats included.
    pub fn total_events(&self) -> u64 {
        self.events
            .iter()
            .map(|e| e.repeats.saturating_add(1))
            .fold(self.more_events, u64::saturating_add)
    }
}

/// Most distinct events kept from one log (memory stays bounded on any log).
pub const MAX_EVENTS: usize = 500;
/// Lines before an event searched for the workload that ran.
const CONTEXT_LINES: usize = 60;
/// Lines after an event's first line that may belong to its message (the cudaMallocAsync
/// backend's takes seven lines; other messages get wrapped).
const FOLLOWING_LINES: usize = 7;

/// Reads a whole log held in memory. Never fails: unreadable parts are simply not events.
pub fn analyze(text: &str, catalogue: &Catalogue, calibration: &Calibration) -> Analysis {
    let mut analyzer = Analyzer::new(catalogue, calibration);
    let mut lines = LogLines::from_text(text);
    while let Ok(Some(line)) = lines.next_line() {
        analyzer.feed(&line);
    }
    analyzer.finish(lines.cut_lines)
}

/// Reads a log from a file or pipe, one bounded line at a time.
pub fn analyze_reader(
    source: impl std::io::Read + Send + 'static,
    catalogue: &Catalogue,
    calibration: &Calibration,
) -> std::io::Result<Analysis> {
    let mut analyzer = Analyzer::new(catalogue, calibration);
    let mut lines = LogLines::new(source)?;
    while let Some(line) = lines.next_line()? {
        analyzer.feed(&line);
    }
    Ok(analyzer.finish(lines.cut_lines))
}

/// Longest quote of a failure's line (PyTorch 2.x's messages run to 700 characters); a longer
/// one is cut at a word, with "…".
pub const MAX_QUOTE_CHARS: usize = 1_200;
/// Lines within which ComfyUI's traceback repeats the failure it reported on its
/// "!!! Exception during processing !!!" line (execution.py logs the message, then the
/// traceback, whose last line is the same exception).
const ECHO_LINES: usize = 400;

/// An event whose message may continue on the next lines.
struct Open {
    kind: OomKind,
    line_no: usize,
    lines: Vec<String>,
    context: String,
    /// The device the log named last before this failure.
    device: Option<u32>,
}

/// A failure ComfyUI reported on its "!!! Exception during processing !!!" line: the same
/// failure at the end of the traceback that follows is that failure, not a second one.
struct Echo {
    key: (OomKind, Numbers),
    lines_left: usize,
}

/// The streaming analyser: feed it lines, then finish.
pub struct Analyzer<'a> {
    catalogue: &'a Catalogue,
    calibration: &'a Calibration,
    recent: VecDeque<String>,
    open: Option<Open>,
    seen: HashMap<(OomKind, Numbers), usize>,
    analysis: Analysis,
    /// The CUDA device the log named last ("Device: cuda:1 …", `device='cuda:1'`).
    device: Option<u32>,
    echo: Option<Echo>,
}

impl<'a> Analyzer<'a> {
    /// An analyser that advises with `catalogue` and `calibration`.
    pub fn new(catalogue: &'a Catalogue, calibration: &'a Calibration) -> Self {
        Analyzer {
            catalogue,
            calibration,
            recent: VecDeque::new(),
            open: None,
            seen: HashMap::new(),
            analysis: Analysis::default(),
            device: None,
            echo: None,
        }
    }

    /// Reads the next line.
    pub fn feed(&mut self, raw: &str) {
        self.analysis.lines += 1;
        // A JSON string pasted from ComfyUI's history or websocket carries "\n" escapes.
        let unescaped;
        let line = if raw.contains("\\n") && parse::classify(raw).is_some() {
            unescaped = raw.replace("\\n", " ");
            unescaped.as_str()
        } else {
            raw
        };
        if let Some(echo) = &mut self.echo {
            echo.lines_left = echo.lines_left.saturating_sub(1);
            if echo.lines_left == 0 {
                self.echo = None;
            }
        }
        if let Some(device) = stated_device(line) {
            self.device = Some(device);
        }
        let mut starts = parse::classify(line);
        // ggml's and XLA's follow-up lines belong to the failure they follow.
        if starts.is_some()
            && self
                .open
                .as_ref()
                .is_some_and(|o| parse::continues(o.kind, line))
        {
            starts = None;
        }
        // A new failure ends the one before: its lines are not the earlier message's.
        if starts.is_some()
            && let Some(open) = self.open.take()
        {
            self.close(open);
        }
        if let Some(open) = &mut self.open {
            open.lines.push(line.to_string());
            if open.lines.len() > FOLLOWING_LINES
                && let Some(open) = self.open.take()
            {
                self.close(open);
            }
        }
        if let Some(kind) = starts {
            let mut context = self.recent.iter().cloned().collect::<Vec<_>>().join("\n");
            context.push('\n');
            context.push_str(line);
            self.open = Some(Open {
                kind,
                line_no: self.analysis.lines,
                lines: vec![line.to_string()],
                context,
                device: self.device,
            });
        }
        self.recent.push_back(line.to_string());
        if self.recent.len() > CONTEXT_LINES {
            self.recent.pop_front();
        }
    }

    /// Ends the log: an event still waiting for more lines is read as it is.
    pub fn finish(mut self, cut_lines: usize) -> Analysis {
        if let Some(open) = self.open.take() {
            self.close(open);
        }
        self.analysis.cut_lines = cut_lines;
        self.analysis
    }

    fn close(&mut self, open: Open) {
        let lines: Vec<&str> = open.lines.iter().map(String::as_str).collect();
        let (mut numbers, era) = parse::numbers(open.kind, &lines);
        // cuBLAS, cuDNN and CUDA runtime errors name no GPU; the log's last device line does.
        if numbers.gpu.is_none() {
            numbers.gpu = open.device;
        }
        // XLA's exception repeats the allocation its BFC allocator has just reported, with only
        // the byte count: the same failure.
        if open.kind == OomKind::Xla
            && numbers.limit.is_none()
            && self.analysis.events.last().is_some_and(|e| {
                e.kind == OomKind::Xla
                    && e.numbers.requested == numbers.requested
                    && self.analysis.lines.saturating_sub(e.line) <= ECHO_LINES
            })
        {
            return;
        }
        let key = (open.kind, numbers.clone());
        let comfy_report = lines[0].contains("!!! Exception during processing !!!");
        // ComfyUI's traceback ends with the failure it has just reported: the same one.
        if !comfy_report && self.echo.as_ref().is_some_and(|e| e.key == key) {
            self.echo = None;
            return;
        }
        self.echo = comfy_report.then(|| Echo {
            key: key.clone(),
            lines_left: ECHO_LINES,
        });
        // The same failure with the same numbers again is one event seen again (a retrying
        // job): counted before the costlier reading of its context.
        if let Some(&i) = self.seen.get(&key) {
            let first = &mut self.analysis.events[i];
            first.repeats = first.repeats.saturating_add(1);
            return;
        }
        if self.analysis.events.len() >= MAX_EVENTS {
            self.analysis.more_events = self.analysis.more_events.saturating_add(1);
            return;
        }
        let first_line = open.lines[0].trim();
        let mut event = OomEvent {
            line: open.line_no,
            repeats: 0,
            kind: open.kind,
            // From a file anyone may have written: no escape reaches a terminal.
            text: crate::text::sanitize_within(first_line, MAX_QUOTE_CHARS).into_owned(),
            era,
            cause: advice::diagnose(open.kind, &numbers),
            numbers,
            workload: recognise(&open.context, self.catalogue),
            advice: Vec::new(),
        };
        let max_split_hint = lines.iter().any(|l| l.contains("max_split_size_mb"));
        event.advice = advice::advise(&event, max_split_hint, self.catalogue, self.calibration);
        self.seen.insert(key, self.analysis.events.len());
        self.analysis.events.push(event);
    }
}

/// The CUDA device a line names as the one in use: ComfyUI's start-up "Device: cuda:1 NVIDIA …"
/// (model_management.py), "Using device: cuda:1", `device='cuda:1'` in a traceback's frame.
fn stated_device(line: &str) -> Option<u32> {
    static P: OnceLock<Regex> = OnceLock::new();
    let p = P.get_or_init(|| {
        Regex::new(r#"(?i)\bdevice\s*[:=]\s*(?:torch\.device\()?['"]?cuda:(\d{1,2})\b"#)
            .expect("pattern")
    });
    p.captures(line)?.get(1)?.as_str().parse().ok()
}

struct WorkloadPatterns {
    ddcolor_size: Regex,
    batch: Regex,
    threads: Regex,
}

fn workload_patterns() -> &'static WorkloadPatterns {
    static P: OnceLock<WorkloadPatterns> = OnceLock::new();
    P.get_or_init(|| WorkloadPatterns {
        ddcolor_size: Regex::new(r"(?i)\bsize\s*[=:]\s*(\d{3,4})\b").expect("pattern"),
        batch: Regex::new(r"(?i)\bbatch(?:_size)?\s*[=: ]\s*(\d{1,3})\b").expect("pattern"),
        threads: Regex::new(r"--execution-thread-count[ =](\d{1,3})\b").expect("pattern"),
    })
}

fn recognise(context: &str, catalogue: &Catalogue) -> Option<Recognised> {
    let p = workload_patterns();
    let lower = context.to_lowercase();
    let mut hints = Vec::new();
    let last_number = |re: &Regex| {
        re.captures_iter(context)
            .last()
            .and_then(|c| c[1].parse::<u32>().ok())
    };
    let mut batch = last_number(&p.batch);
    let id = if lower.contains("ddcolor") {
        "ddcolor".to_string()
    } else if lower.contains("facefusion") {
        // FaceFusion processes as many frames at once as it has execution threads.
        batch = last_number(&p.threads);
        "facefusion-fp16".to_string()
    } else if (lower.contains("wan2.1") || lower.contains("wan2.2") || lower.contains("wan 2."))
        // Without the model size the preset would be a guess: say nothing rather than mislead.
        && (lower.contains("14b") || lower.contains("1.3b"))
    {
        let i2v = lower.contains("i2v") || lower.contains("a14b");
        let big = lower.contains("14b");
        let hd = lower.contains("720p") || lower.contains("height=720");
        let unquantised = lower.contains("quant_linear=false");
        if big && hd {
            hints.push(crate::t!("oom-hint-720p-14b"));
        }
        match (i2v, big, hd, unquantised) {
            (true, ..) => "wan22-i2v-a14b",
            (false, true, _, true) => "wan21-t2v-14b-480p",
            (false, true, ..) => "wan21-t2v-14b-480p-quant",
            (false, false, true, _) => "wan21-t2v-1.3b-720p",
            _ => "wan21-t2v-1.3b-480p",
        }
        .to_string()
    } else {
        return None;
    };
    catalogue.get(&id)?;
    Some(Recognised {
        preset_id: id,
        size: last_number(&p.ddcolor_size),
        batch,
        hints,
    })
}

impl OomEvent {
    /// "line 12: PyTorch CUDA out of memory (and 3 times more)".
    pub fn headline(&self) -> String {
        match self.repeats {
            0 => crate::t!(
                "logs-event",
                line = self.line.to_string(),
                kind = self.kind.text()
            ),
            n => crate::t!(
                "logs-event-repeats",
                repeats = n,
                line = self.line.to_string(),
                kind = self.kind.text()
            ),
        }
    }

    /// Bytes the failing allocation asked for.
    pub fn requested(&self) -> Option<Bytes> {
        self.numbers.requested
    }

    /// The numbers in one line ("requested 2.0 GiB · GPU 0 · total 79.2 GiB · …"); `None` when
    /// the message carried none.
    pub fn numbers_line(&self) -> Option<String> {
        let n = &self.numbers;
        let mut parts = Vec::new();
        let mut put = |label: fn(String) -> String, v: Option<Bytes>| {
            if let Some(b) = v {
                parts.push(label(advice::fmt(b)));
            }
        };
        put(|v| crate::t!("oom-num-requested", v = v), n.requested);
        put(|v| crate::t!("oom-num-total", v = v), n.total);
        put(|v| crate::t!("oom-num-free", v = v), n.free);
        put(|v| crate::t!("oom-num-allocated", v = v), n.allocated);
        put(
            |v| crate::t!("oom-num-private-pools", v = v),
            n.private_pools,
        );
        put(|v| crate::t!("oom-num-reserved", v = v), n.reserved);
        put(
            |v| crate::t!("oom-num-other-allocations", v = v),
            n.other_allocations,
        );
        let own = n.process_in_use.map(|b| match n.self_listed_as {
            Some(pid) => crate::t!(
                "oom-num-self-listed",
                pid = pid.to_string(),
                v = advice::fmt(b)
            ),
            None => crate::t!("oom-num-self", v = advice::fmt(b)),
        });
        put(|v| crate::t!("oom-num-limit", v = v), n.limit);
        // This process's share goes before the limit, as it does in PyTorch's message.
        if let Some(own) = own {
            let at = parts.len() - usize::from(n.limit.is_some());
            parts.insert(at, own);
        }
        if let Some(g) = n.gpu {
            parts.insert(1.min(parts.len()), format!("GPU {g}"));
        }
        if let Some(rank) = n.rank {
            parts.push(crate::t!("oom-num-rank", rank = rank.to_string()));
        }
        parts.extend(n.others.iter().map(|o| {
            crate::t!(
                "oom-num-other",
                pid = o.pid.to_string(),
                v = advice::fmt(o.used)
            )
        }));
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

impl Analysis {
    /// "1 event in 19 lines", "3 events in 1,000 lines (2 distinct; repeats are counted)".
    pub fn summary(&self) -> String {
        let (lines, n) = (
            self.lines as u64,
            crate::units::group_thousands(self.lines as u64),
        );
        if self.events.is_empty() {
            return crate::t!("oom-summary-none", lines = lines, n = n);
        }
        let total = self.total_events();
        let distinct = self.events.len() as u64 + self.more_events;
        let summary = crate::t!(
            "oom-summary",
            events = total,
            e = crate::units::group_thousands(total),
            lines = lines,
            n = n
        );
        if total > distinct {
            return crate::t!(
                "oom-summary-repeats",
                summary = summary,
                distinct = crate::units::group_thousands(distinct)
            );
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Analysis {
        analyze(text, &Catalogue::load(None), &Calibration::default())
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..300 {
            let len = (round * 37) % 2_000;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if round % 3 == 0 {
                text.push_str("CUDA out of memory. Tried to allocate 99999999999999999999 GiB (GPU 4294967296");
            }
            let _ = run(&text);
        }
    }

    #[test]
    fn a_retried_failure_is_one_event_with_a_count() {
        let line = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.02 GiB is free.\n";
        let a = run(&line.repeat(1_000));
        assert_eq!(a.events.len(), 1);
        assert_eq!(a.events[0].repeats, 999);
        assert_eq!(a.total_events(), 1_000);
    }
}
