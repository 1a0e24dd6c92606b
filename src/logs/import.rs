//! Reads CSV logs made by `nvidia-smi --query-gpu=… --format=csv[,noheader][,nounits] [-l N]`
//! or by vramdeck, into a history the live plots can draw. Bad rows are counted and reported,
//! never fatal.

use super::lines::LogLines;
use crate::telemetry::history::{History, HistoryConfig, METRIC_COUNT, Values};
use chrono::{Local, NaiveDateTime, TimeZone};
use std::collections::HashMap;

/// Most rows read from one file (about 58 days of 1 s samples): bounds memory on huge files.
pub const MAX_ROWS: usize = 5_000_000;

/// One GPU found in a log.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedGpu {
    /// Its index (or position when the log has none).
    pub index: u32,
    /// Its name, when logged.
    pub name: String,
    /// Installed memory, MiB, when logged.
    pub total_mib: Option<f64>,
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
}

impl ImportedLog {
    /// One line for the UI: "1,234 rows, 2 bad rows skipped (line 7: …)".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} rows from {} GPU(s)",
            crate::units::group_thousands(self.rows as u64),
            self.gpus.len()
        );
        if self.bad_rows > 0 {
            s.push_str(&format!(
                ", {} bad row(s) skipped ({})",
                self.bad_rows,
                self.problems.first().cloned().unwrap_or_default()
            ));
        }
        if let Some(cols) = &self.assumed_columns {
            s.push_str(&format!("; no header, columns assumed: {cols}"));
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Timestamp,
    Index,
    Name,
    Uuid,
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
        "uuid" | "gpu_uuid" | "pci.bus_id" | "gpu_bus_id" => Column::Uuid,
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
fn number(cell: &str) -> Option<f64> {
    let c = cell.trim();
    if c.starts_with('[') || c.eq_ignore_ascii_case("n/a") || c.is_empty() {
        return None;
    }
    let digits = c.trim_end_matches(|ch: char| ch.is_ascii_alphabetic() || ch == '%' || ch == ' ');
    digits.parse().ok()
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
                return Err(format!(
                    "{origin}: reading failed after {} lines: {e}",
                    importer.line_no
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

/// A CSV log being read, line by line.
pub struct CsvImporter {
    origin: String,
    line_no: usize,
    columns: Option<std::rc::Rc<[Column]>>,
    assumed_columns: Option<String>,
    slots: HashMap<String, usize>,
    gpus: Vec<ImportedGpu>,
    history: History,
    rows: usize,
    bad_rows: usize,
    problems: Vec<String>,
    span: (f64, f64),
    last_time: Option<f64>,
    position_in_group: u32,
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
            last_time: None,
            position_in_group: 0,
        }
    }

    fn bad(&mut self, why: String) {
        self.bad_rows += 1;
        if self.problems.len() < 10 {
            self.problems.push(format!("line {}: {why}", self.line_no));
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
                    self.bad("not a CSV row of a known layout".into());
                    return;
                }
            }
        }
        let cols = self
            .columns
            .clone()
            .unwrap_or_else(|| std::rc::Rc::from([]));
        if cells.len() != cols.len() {
            self.bad(format!(
                "{} cells where the header has {}",
                cells.len(),
                cols.len()
            ));
            return;
        }
        if self.rows >= MAX_ROWS {
            self.bad(format!("past the {MAX_ROWS}-row limit"));
            return;
        }
        let cell = |c: Column| cols.iter().position(|x| *x == c).map(|p| cells[p]);
        let t = match cell(Column::Timestamp) {
            Some(ts) => match timestamp(ts) {
                Some(t) => t,
                None => {
                    self.bad(format!(
                        "unreadable timestamp {:?}",
                        crate::text::sanitize(ts)
                    ));
                    return;
                }
            },
            // No timestamp column: one row a second, in file order.
            None => self.rows as f64,
        };
        let Some(used) = cell(Column::MemoryUsed).and_then(number) else {
            self.bad("no readable memory.used".into());
            return;
        };
        // Rows of one reading share a timestamp; without an index, position tells GPUs apart.
        if self.last_time == Some(t) {
            self.position_in_group += 1;
        } else {
            self.position_in_group = 0;
            self.last_time = Some(t);
        }
        let index = cell(Column::Index).and_then(number).map(|n| n as u32);
        let key = cell(Column::Uuid)
            .map(str::to_string)
            .or(index.map(|i| i.to_string()))
            .unwrap_or_else(|| format!("#{}", self.position_in_group));
        let position = self.position_in_group;
        let gpus = &mut self.gpus;
        let slot = *self.slots.entry(key).or_insert_with(|| {
            gpus.push(ImportedGpu {
                index: index.unwrap_or(position),
                name: crate::text::sanitized(cell(Column::Name).unwrap_or("GPU")),
                total_mib: None,
            });
            gpus.len() - 1
        });
        if let Some(total) = cell(Column::MemoryTotal).and_then(number) {
            self.gpus[slot].total_mib = Some(total);
        }
        let metric = |c: Column| {
            cell(c)
                .and_then(number)
                .map(|v| v as f32)
                .unwrap_or(f32::NAN)
        };
        let values: [f32; METRIC_COUNT] = [
            used as f32,
            metric(Column::GpuUtil),
            metric(Column::MemoryUtil),
            metric(Column::Temperature),
            metric(Column::Power),
        ];
        self.history.push_values(slot, t, Values(values));
        self.span = (self.span.0.min(t), self.span.1.max(t));
        self.rows += 1;
    }

    /// Ends the import.
    pub fn finish(self) -> Result<ImportedLog, String> {
        if self.rows == 0 {
            return Err(match self.problems.first() {
                Some(p) => format!(
                    "{}: no readable rows ({} bad; {p})",
                    self.origin, self.bad_rows
                ),
                None => format!("{}: no rows", self.origin),
            });
        }
        Ok(ImportedLog {
            origin: self.origin,
            gpus: self.gpus,
            history: self.history,
            span: self.span,
            rows: self.rows,
            bad_rows: self.bad_rows,
            problems: self.problems,
            assumed_columns: self.assumed_columns,
        })
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
