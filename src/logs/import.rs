//! Reads CSV logs made by `nvidia-smi --query-gpu=… --format=csv[,noheader][,nounits] [-l N]`
//! or by vramdeck, into a history the live plots can draw. Bad rows are counted and reported,
//! never fatal; a file that yields nothing says why.
//!
//! Telling GPUs apart: by `uuid` or `pci.bus_id` when logged, else by `index`. Without any of
//! them, by position within one pass of the `-l` loop: nvidia-smi stamps each GPU of a pass a
//! few milliseconds apart (vramdeck stamps them alike), and passes are the loop interval apart,
//! so the import learns the gap between passes from the first rows ([`passes`]).

use super::lines::LogLines;
use crate::telemetry::history::{History, HistoryConfig, Metric, Values};
use chrono::{Local, NaiveDateTime, TimeZone};
use std::collections::HashMap;
use std::rc::Rc;

/// Most rows read from one file (about 58 days of 1 s samples): bounds memory on huge files.
pub const MAX_ROWS: usize = 5_000_000;
/// Rows looked at before deciding how many GPUs a log without ids interleaves.
const LEARN_ROWS: usize = 64;

/// One GPU found in a log.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedGpu {
    /// Its index: logged, or the order it first appeared in.
    pub index: u32,
    /// Its name, when logged.
    pub name: String,
    /// Its `uuid` or `pci.bus_id`, when logged.
    pub id: Option<String>,
    /// Installed memory, MiB, when logged.
    pub total_mib: Option<f64>,
    /// Rows read for it.
    pub rows: usize,
    /// Rows whose memory.used was readable (unified-memory devices print `[N/A]`).
    pub rows_with_memory: usize,
}

impl ImportedGpu {
    /// "GPU 1 · NVIDIA H200 (00000000:19:00.0)".
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("GPU {} · {} ({id})", self.index, self.name),
            None => format!("GPU {} · {}", self.index, self.name),
        }
    }
}

/// A log read into memory.
#[derive(Clone, Debug)]
pub struct ImportedLog {
    /// Where it came from.
    pub origin: String,
    /// GPUs in slot order.
    pub gpus: Vec<ImportedGpu>,
    /// Every row, kept raw.
    pub history: History,
    /// Earliest and latest time (UNIX seconds).
    pub span: (f64, f64),
    /// Rows read.
    pub rows: usize,
    /// Rows skipped.
    pub bad_rows: usize,
    /// The first few problems, with line numbers.
    pub problems: Vec<String>,
    /// Set when the file had no header and columns were assumed.
    pub assumed_columns: Option<String>,
    /// How GPUs were told apart when the log names none (see the module's doc).
    pub grouping: Option<String>,
}

impl ImportedLog {
    /// One line for the UI: "1,234 rows from 2 GPUs, 2 bad rows skipped (line 7: …)".
    pub fn summary(&self) -> String {
        let mut s = crate::t!("import-summary", rows = self.rows, gpus = self.gpus.len());
        if self.bad_rows > 0 {
            s.push_str(", ");
            s.push_str(&crate::t!(
                "import-bad",
                bad = self.bad_rows,
                first = self.problems.first().cloned().unwrap_or_default()
            ));
        }
        if let Some(cols) = &self.assumed_columns {
            s.push_str("; ");
            s.push_str(&crate::t!("import-assumed", columns = cols));
        }
        if let Some(how) = &self.grouping {
            s.push_str(&format!("; {how}"));
        }
        s
    }

    /// Peak and mean of a metric over the whole log for one GPU, `None` when never logged.
    pub fn stats(&self, slot: usize, metric: Metric) -> Option<(f64, f64)> {
        let s = self.history.stats(slot, metric, self.span.0, self.span.1)?;
        Some((s.max, s.mean))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Timestamp,
    Index,
    Name,
    Id,
    MemoryUsed,
    MemoryTotal,
    GpuUtil,
    MemoryUtil,
    Temperature,
    Power,
    Other,
}

fn column(name: &str) -> Column {
    let key = name
        .split('[')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match key.as_str() {
        "timestamp" => Column::Timestamp,
        "index" => Column::Index,
        "name" | "gpu_name" => Column::Name,
        "uuid" | "gpu_uuid" | "pci.bus_id" | "gpu_bus_id" => Column::Id,
        "memory.used" => Column::MemoryUsed,
        "memory.total" => Column::MemoryTotal,
        "utilization.gpu" => Column::GpuUtil,
        "utilization.memory" => Column::MemoryUtil,
        "temperature.gpu" => Column::Temperature,
        "power.draw" => Column::Power,
        _ => Column::Other,
    }
}

fn is_header(line: &str) -> bool {
    let l = line.trim_start().to_ascii_lowercase();
    l.starts_with("timestamp,") || l.starts_with("index,") || l.contains("memory.used")
}

/// Columns assumed for a header-less file, by column count.
fn assumed(count: usize) -> Option<&'static str> {
    match count {
        7 => Some(
            "timestamp, index, name, memory.used, memory.total, utilization.gpu, temperature.gpu",
        ),
        5 => Some("timestamp, memory.used, memory.total, utilization.gpu, temperature.gpu"),
        _ => None,
    }
}

/// A cell as a number: units and percent signs dropped; `[N/A]`-style cells are `None`.
pub(crate) fn number(cell: &str) -> Option<f64> {
    let c = cell.trim();
    if c.starts_with('[') || c.eq_ignore_ascii_case("n/a") || c.is_empty() {
        return None;
    }
    let digits = c.trim_end_matches(|ch: char| ch.is_ascii_alphabetic() || ch == '%' || ch == ' ');
    digits.parse().ok().filter(|v: &f64| v.is_finite())
}

/// nvidia-smi's markers for a field the GPU does not report: `[N/A]`, `[Not Supported]`, …
fn not_available(cell: &str) -> bool {
    let c = cell.trim();
    (c.starts_with('[') && c.ends_with(']')) || c.eq_ignore_ascii_case("n/a")
}

fn timestamp(cell: &str) -> Option<f64> {
    let c = cell.trim();
    for format in [
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(c, format) {
            let local = Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.timestamp_millis() as f64 / 1_000.0);
            return local.or_else(|| Some(naive.and_utc().timestamp_millis() as f64 / 1_000.0));
        }
    }
    None
}

/// Reads a CSV log held in memory. Fails only when nothing in it is usable.
pub fn import_csv(text: &str, origin: &str) -> Result<ImportedLog, String> {
    let mut importer = CsvImporter::new(origin);
    let mut lines = LogLines::from_text(text);
    while let Ok(Some(line)) = lines.next_line() {
        importer.feed(&line);
    }
    importer.finish()
}

/// Reads a CSV log from a file or pipe, one bounded line at a time.
pub fn import_reader(
    source: impl std::io::Read + Send + 'static,
    origin: &str,
) -> Result<ImportedLog, String> {
    let mut importer = CsvImporter::new(origin);
    let mut lines = LogLines::new(source).map_err(|e| format!("{origin}: {e}"))?;
    loop {
        match lines.next_line() {
            Ok(Some(line)) => importer.feed(&line),
            Ok(None) => break,
            Err(e) => {
                return Err(crate::t!(
                    "import-read-failed",
                    origin = origin,
                    lines = importer.line_no,
                    error = e.to_string()
                ));
            }
        }
    }
    importer.finish()
}

/// True when `line` looks like the start of an nvidia-smi / vramdeck CSV log (a header, or a
/// row of a known header-less layout): how a log is told from a console log before reading it.
pub fn looks_like_csv(line: &str) -> bool {
    let line = line.trim();
    if is_header(line) {
        return true;
    }
    let cells: Vec<&str> = line.split(',').map(str::trim).collect();
    assumed(cells.len()).is_some() && timestamp(cells[0]).is_some()
}

/// How a row says which GPU it belongs to.
#[derive(Clone, Debug, PartialEq)]
enum Which {
    /// `uuid` or `pci.bus_id`.
    Id(String),
    /// `index`.
    Index(u32),
    /// Nothing: its position in the loop's pass tells.
    Position,
}

/// One readable row, before it is filed under a GPU.
#[derive(Clone, Debug)]
struct Row {
    t: Option<f64>,
    which: Which,
    name: Option<String>,
    total_mib: Option<f64>,
    values: Values,
}

/// A CSV log being read, line by line.
pub struct CsvImporter {
    origin: String,
    line_no: usize,
    columns: Option<Rc<[Column]>>,
    assumed_columns: Option<String>,
    slots: HashMap<String, usize>,
    gpus: Vec<ImportedGpu>,
    history: History,
    rows: usize,
    bad_rows: usize,
    problems: Vec<String>,
    span: (f64, f64),
    /// Rows without ids, held until the interleaving is learnt.
    learning: Vec<Row>,
    passes: Option<passes::Passes>,
}

impl CsvImporter {
    /// An empty import named after `origin`.
    pub fn new(origin: &str) -> Self {
        CsvImporter {
            origin: origin.to_string(),
            line_no: 0,
            columns: None,
            assumed_columns: None,
            slots: HashMap::new(),
            gpus: Vec::new(),
            history: History::new(HistoryConfig {
                raw_seconds: f64::INFINITY,
                raw_capacity: MAX_ROWS,
                tiers: vec![],
            }),
            rows: 0,
            bad_rows: 0,
            problems: Vec::new(),
            span: (f64::INFINITY, f64::NEG_INFINITY),
            learning: Vec::new(),
            passes: None,
        }
    }

    fn bad(&mut self, why: String) {
        self.bad_rows += 1;
        if self.problems.len() < 10 {
            self.problems.push(crate::t!(
                "import-problem-line",
                line = self.line_no.to_string(),
                why = why
            ));
        }
    }

    /// Reads the next line.
    pub fn feed(&mut self, raw_line: &str) {
        self.line_no += 1;
        let line = raw_line.trim();
        if line.is_empty() {
            return;
        }
        if is_header(line) {
            self.columns = Some(line.split(',').map(column).collect());
            return;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if self.columns.is_none() {
            match assumed(cells.len()) {
                Some(names) if timestamp(cells[0]).is_some() => {
                    self.columns = Some(names.split(", ").map(column).collect());
                    self.assumed_columns = Some(names.to_string());
                }
                _ => {
                    self.bad(crate::t!("import-unknown-layout"));
                    return;
                }
            }
        }
        let cols = self.columns.clone().unwrap_or_else(|| Rc::from([]));
        if cells.len() != cols.len() {
            self.bad(crate::t!(
                "import-cells",
                cells = cells.len(),
                header = cols.len()
            ));
            return;
        }
        if self.rows + self.learning.len() >= MAX_ROWS {
            self.bad(crate::t!("import-row-limit", limit = MAX_ROWS));
            return;
        }
        let cell = |c: Column| cols.iter().position(|x| *x == c).map(|p| cells[p]);
        let t = match cell(Column::Timestamp) {
            Some(ts) => match timestamp(ts) {
                Some(t) => Some(t),
                None => {
                    self.bad(crate::t!(
                        "import-bad-timestamp",
                        cell = format!("{:?}", crate::text::sanitize(ts))
                    ));
                    return;
                }
            },
            None => None,
        };
        let metric = |c: Column| {
            cell(c)
                .and_then(number)
                .map(|v| v as f32)
                .unwrap_or(f32::NAN)
        };
        let values = Values([
            metric(Column::MemoryUsed),
            metric(Column::GpuUtil),
            metric(Column::MemoryUtil),
            metric(Column::Temperature),
            metric(Column::Power),
        ]);
        // A unified-memory device prints [N/A] for memory.used: its other series still count.
        // Anything else there that is not a number is a damaged row.
        if let Some(used) = cell(Column::MemoryUsed)
            && number(used).is_none()
            && !not_available(used)
        {
            self.bad(crate::t!(
                "import-bad-memory",
                cell = format!("{:?}", crate::text::sanitize(used))
            ));
            return;
        }
        if values.0.iter().all(|v| v.is_nan()) {
            self.bad(crate::t!("import-no-value"));
            return;
        }
        let which = match (cell(Column::Id), cell(Column::Index).and_then(number)) {
            (Some(id), _) if !id.is_empty() => Which::Id(crate::text::sanitized(id)),
            (_, Some(i)) if i >= 0.0 && i < f64::from(u32::MAX) => Which::Index(i as u32),
            _ => Which::Position,
        };
        let row = Row {
            t,
            which,
            name: cell(Column::Name).map(crate::text::sanitized),
            total_mib: cell(Column::MemoryTotal).and_then(number),
            values,
        };
        if row.which == Which::Position && self.passes.is_none() {
            self.learning.push(row);
            if self.learning.len() >= LEARN_ROWS {
                self.learn();
            }
            return;
        }
        self.file(row);
    }

    /// Decides how rows without ids interleave GPUs, then files the rows held so far.
    fn learn(&mut self) {
        let signature = |r: &Row| {
            format!(
                "{}|{}",
                r.name.as_deref().unwrap_or(""),
                r.total_mib.unwrap_or(f64::NAN)
            )
        };
        let times: Vec<Option<f64>> = self.learning.iter().map(|r| r.t).collect();
        let signatures: Vec<String> = self.learning.iter().map(signature).collect();
        self.passes = Some(passes::Passes::learn(&times, &signatures));
        for row in std::mem::take(&mut self.learning) {
            self.file(row);
        }
    }

    /// Files one row under its GPU.
    fn file(&mut self, row: Row) {
        let key = match &row.which {
            Which::Id(id) => format!("id:{id}"),
            Which::Index(i) => format!("index:{i}"),
            Which::Position => {
                let position = self.passes.as_mut().map_or(0, |p| p.position(row.t));
                // Rows naming different GPUs (another name or size) are never one GPU, whatever
                // their place in the pass says.
                format!(
                    "position:{position}:{}|{}",
                    row.name.as_deref().unwrap_or(""),
                    row.total_mib.map_or(String::new(), |t| t.to_string())
                )
            }
        };
        let index = match &row.which {
            Which::Index(i) => *i,
            _ => self.slots.len() as u32,
        };
        let gpus = &mut self.gpus;
        let slot = *self.slots.entry(key).or_insert_with(|| {
            gpus.push(ImportedGpu {
                index,
                name: row.name.clone().unwrap_or_else(|| "GPU".into()),
                id: match &row.which {
                    Which::Id(id) => Some(id.clone()),
                    _ => None,
                },
                total_mib: None,
                rows: 0,
                rows_with_memory: 0,
            });
            gpus.len() - 1
        });
        let gpu = &mut self.gpus[slot];
        if let Some(total) = row.total_mib {
            gpu.total_mib = Some(total);
        }
        gpu.rows += 1;
        if !row.values.0[0].is_nan() {
            gpu.rows_with_memory += 1;
        }
        // No timestamp column: one reading a second, in file order (per GPU).
        let t = row.t.unwrap_or((gpu.rows - 1) as f64);
        self.history.push_values(slot, t, row.values);
        self.span = (self.span.0.min(t), self.span.1.max(t));
        self.rows += 1;
    }

    /// Ends the import.
    pub fn finish(mut self) -> Result<ImportedLog, String> {
        if !self.learning.is_empty() {
            self.learn();
        }
        if self.rows == 0 {
            return Err(match self.problems.first() {
                Some(p) => crate::t!(
                    "import-no-readable-rows",
                    origin = &self.origin,
                    bad = self.bad_rows,
                    first = p
                ),
                None => crate::t!("import-no-rows", origin = &self.origin),
            });
        }
        let grouping = self.passes.as_ref().and_then(|p| p.describe());
        Ok(ImportedLog {
            origin: self.origin,
            gpus: self.gpus,
            history: self.history,
            span: self.span,
            rows: self.rows,
            bad_rows: self.bad_rows,
            problems: self.problems,
            assumed_columns: self.assumed_columns,
            grouping,
        })
    }
}

/// Learning how a log without GPU ids interleaves its GPUs.
pub mod passes {
    /// Rows of one pass of nvidia-smi's loop are stamped this close together (it reads the GPUs
    /// one after another; vramdeck stamps them alike); passes are the loop interval apart.
    pub const WITHIN_PASS_SECONDS: f64 = 0.05;

    /// How rows of one pass of the loop are recognised.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Passes {
        /// GPUs per pass.
        pub gpus: usize,
        /// A step in time longer than this starts a new pass.
        pub gap: Option<f64>,
        /// How it was learnt, for the summary (a message id).
        pub how: &'static str,
        last_t: Option<f64>,
        next: usize,
    }

    impl Passes {
        /// Learns from the first rows' times and GPU signatures (name and total memory).
        pub fn learn(times: &[Option<f64>], signatures: &[String]) -> Self {
            let all_timed: Option<Vec<f64>> = times.iter().copied().collect();
            if let Some(times) = all_timed
                && let Some((gpus, gap)) = from_times(&times)
            {
                return Passes::new(gpus, Some(gap), "import-by-time");
            }
            match period(signatures) {
                Some(p) if p > 1 => Passes::new(p, None, "import-by-order"),
                _ => Passes::new(1, None, ""),
            }
        }

        fn new(gpus: usize, gap: Option<f64>, how: &'static str) -> Self {
            Passes {
                gpus,
                gap,
                how,
                last_t: None,
                next: 0,
            }
        }

        /// The position in its pass of the next row, stamped `t`.
        pub fn position(&mut self, t: Option<f64>) -> usize {
            let new_pass = match (self.gap, self.last_t, t) {
                (Some(gap), Some(last), Some(t)) => t - last > gap || self.next >= self.gpus,
                // Too few rows to learn the passes: rows stamped within a pass's few
                // milliseconds of each other are different GPUs of one pass.
                (None, Some(last), Some(t)) => t - last > WITHIN_PASS_SECONDS,
                _ => self.next >= self.gpus,
            };
            if t.is_some() {
                self.last_t = t;
            }
            if new_pass {
                self.next = 0;
            }
            let position = self.next;
            self.next += 1;
            position
        }

        /// A sentence for the import's summary, when more than one GPU was found this way.
        pub fn describe(&self) -> Option<String> {
            (self.gpus > 1).then(|| {
                crate::t!(
                    "import-per-pass",
                    gpus = self.gpus,
                    how = crate::i18n::lookup(self.how, &[])
                )
            })
        }
    }

    /// GPUs per pass and the pass gap, when the time steps fall into two clearly separate
    /// groups (within a pass: milliseconds; between passes: the loop interval).
    fn from_times(times: &[f64]) -> Option<(usize, f64)> {
        let steps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).max(0.0)).collect();
        let mut sorted = steps.clone();
        sorted.sort_by(f64::total_cmp);
        // The widest ratio between neighbouring step sizes splits "within" from "between".
        let (split, ratio) = sorted
            .windows(2)
            .enumerate()
            .map(|(i, w)| (i, (w[1] + 1e-6) / (w[0] + 1e-6)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let (small, big) = (sorted[split], sorted[split + 1]);
        // Within a pass, GPUs are milliseconds apart; between passes, the loop interval. A
        // lone long step (logging paused) is no pattern: passes must be common.
        let big_steps = steps.len() - split - 1;
        if ratio < 4.0
            || big < WITHIN_PASS_SECONDS
            || small > WITHIN_PASS_SECONDS
            || big_steps * 17 < steps.len()
        {
            return None;
        }
        let gap = (small.max(1e-3) * big).sqrt();
        // GPUs per pass: the most common run length between big steps.
        let mut runs: std::collections::HashMap<usize, usize> = Default::default();
        let mut run = 1;
        for s in &steps {
            if *s > gap {
                *runs.entry(run).or_default() += 1;
                run = 1;
            } else {
                run += 1;
            }
        }
        let gpus = runs.into_iter().max_by_key(|&(len, n)| (n, len))?.0;
        (gpus > 1).then_some((gpus, gap))
    }

    /// The shortest period after which the signatures repeat, if they do.
    fn period(signatures: &[String]) -> Option<usize> {
        (1..=signatures.len() / 2)
            .find(|&p| (p..signatures.len()).all(|i| signatures[i] == signatures[i - p]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_and_without_units_and_not_available_markers() {
        assert_eq!(number("10859 MiB"), Some(10_859.0));
        assert_eq!(number(" 7 %"), Some(7.0));
        assert_eq!(number("301.52 W"), Some(301.52));
        assert_eq!(number("43"), Some(43.0));
        assert_eq!(number("[N/A]"), None);
        assert_eq!(number("[Not Supported]"), None);
        assert_eq!(number("lots"), None);
        assert_eq!(number("inf"), None);
    }

    #[test]
    fn passes_are_learnt_from_millisecond_steps_between_second_steps() {
        let mut times = Vec::new();
        for pass in 0..10 {
            for gpu in 0..3 {
                times.push(Some(pass as f64 + gpu as f64 * 0.004));
            }
        }
        let sig = vec![String::new(); times.len()];
        let p = passes::Passes::learn(&times, &sig);
        assert_eq!(p.gpus, 3);
        // One GPU logged every second: no interleaving.
        let one: Vec<Option<f64>> = (0..10).map(|s| Some(s as f64)).collect();
        assert_eq!(
            passes::Passes::learn(&one, &vec![String::new(); 10]).gpus,
            1
        );
        // One GPU whose logging paused for an hour once: still one GPU.
        let paused: Vec<Option<f64>> = (0..64)
            .map(|s| Some(s as f64 + if s > 30 { 3_600.0 } else { 0.0 }))
            .collect();
        assert_eq!(
            passes::Passes::learn(&paused, &vec![String::new(); 64]).gpus,
            1
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..300usize {
            let mut text = String::from("timestamp, index, memory.used [MiB]\n");
            for _ in 0..(round % 50) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let bytes = seed.to_le_bytes();
                text.push_str(&String::from_utf8_lossy(&bytes));
                text.push_str(if seed % 3 == 0 { "\n" } else { "," });
            }
            let _ = import_csv(&text, "fuzz");
        }
    }
}
