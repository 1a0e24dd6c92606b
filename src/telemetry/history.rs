//! Bounded, tiered history of every GPU's readings.
//!
//! Recent samples are kept raw (10 minutes by default); older ones survive as per-second and
//! per-10-second buckets of min / max / mean, so 24 hours of 10 Hz sampling costs about a
//! megabyte per GPU and plotting any window reads at most a few thousand entries.

use super::GpuSample;
use std::collections::VecDeque;

/// Number of metrics kept per sample.
pub const METRIC_COUNT: usize = 5;

/// A plotted quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// VRAM used, MiB.
    VramUsedMib,
    /// GPU utilisation, %.
    GpuUtil,
    /// Memory-controller utilisation, %.
    MemoryUtil,
    /// Temperature, °C.
    Temperature,
    /// Power draw, W.
    Power,
}

impl Metric {
    /// Every metric, in storage order.
    pub const ALL: [Metric; METRIC_COUNT] = [
        Metric::VramUsedMib,
        Metric::GpuUtil,
        Metric::MemoryUtil,
        Metric::Temperature,
        Metric::Power,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// One sample's metrics; `NaN` marks a reading the GPU did not report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Values(pub [f32; METRIC_COUNT]);

impl Values {
    /// Extracts the kept metrics from a reading.
    pub fn from_sample(s: &GpuSample) -> Self {
        let opt = |v: Option<f32>| v.unwrap_or(f32::NAN);
        Values([
            s.memory.used.mib() as f32,
            opt(s.gpu_util.map(|p| p.0)),
            opt(s.memory_util.map(|p| p.0)),
            opt(s.temperature.map(|c| c.0)),
            opt(s.power.map(|w| w.0)),
        ])
    }

    /// The value of one metric (`NaN` when not reported).
    pub fn get(&self, metric: Metric) -> f32 {
        self.0[metric.slot()]
    }
}

#[derive(Clone, Copy, Debug)]
struct RawPoint {
    t: f64,
    values: Values,
}

/// Aggregate of the samples that fell into one fixed-width time slot.
///
/// Kept small (80 bytes) because a day of history is ~12,000 of these per GPU: a 10 s bucket
/// holds at most 100 readings at 10 Hz, so an `f32` sum keeps the mean within a few millionths
/// and a `u16` counts them.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    start: f64,
    min: [f32; METRIC_COUNT],
    max: [f32; METRIC_COUNT],
    sum: [f32; METRIC_COUNT],
    count: [u16; METRIC_COUNT],
}

impl Bucket {
    fn new(start: f64) -> Self {
        Bucket {
            start,
            min: [f32::INFINITY; METRIC_COUNT],
            max: [f32::NEG_INFINITY; METRIC_COUNT],
            sum: [0.0; METRIC_COUNT],
            count: [0; METRIC_COUNT],
        }
    }

    fn add(&mut self, values: &Values) {
        for (i, &v) in values.0.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            self.min[i] = self.min[i].min(v);
            self.max[i] = self.max[i].max(v);
            self.sum[i] += v;
            // A clock stepping backwards piles readings into one bucket; saturate, never wrap.
            self.count[i] = self.count[i].saturating_add(1);
        }
    }
}

/// A ring of equal-width buckets.
#[derive(Clone, Debug)]
struct Tier {
    width: f64,
    capacity: usize,
    buckets: VecDeque<Bucket>,
    dropped_any: bool,
}

impl Tier {
    fn push(&mut self, t: f64, values: &Values) {
        let start = (t / self.width).floor() * self.width;
        match self.buckets.back_mut() {
            Some(last) if last.start == start => last.add(values),
            // A clock stepping backwards lands in the open bucket instead of breaking order.
            Some(last) if start < last.start => last.add(values),
            _ => {
                let mut bucket = Bucket::new(start);
                bucket.add(values);
                self.buckets.push_back(bucket);
                if self.buckets.len() > self.capacity {
                    self.buckets.pop_front();
                    self.dropped_any = true;
                }
            }
        }
    }

    fn covers(&self, t0: f64) -> bool {
        !self.dropped_any || self.buckets.front().is_some_and(|b| b.start <= t0)
    }
}

/// How much history to keep.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryConfig {
    /// Raw samples younger than this many seconds are kept.
    pub raw_seconds: f64,
    /// Upper bound on raw samples per GPU, whatever the interval.
    pub raw_capacity: usize,
    /// Aggregate tiers as (bucket width in seconds, number of buckets), finest first.
    pub tiers: Vec<(f64, usize)>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            raw_seconds: 600.0,
            // 10 minutes at the fastest interval (100 ms).
            raw_capacity: 6_000,
            // 1 s buckets for an hour, 10 s buckets for a day.
            tiers: vec![(1.0, 3_600), (10.0, 8_640)],
        }
    }
}

/// History of one GPU.
#[derive(Clone, Debug)]
struct GpuHistory {
    raw: VecDeque<RawPoint>,
    raw_dropped_any: bool,
    tiers: Vec<Tier>,
}

/// min / mean / max of a metric over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowStats {
    /// Smallest value.
    pub min: f64,
    /// Mean value (weighted by samples).
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

/// Bounded history of every GPU.
#[derive(Clone, Debug)]
pub struct History {
    config: HistoryConfig,
    gpus: Vec<GpuHistory>,
    samples_total: u64,
}

impl Default for History {
    fn default() -> Self {
        History::new(HistoryConfig::default())
    }
}

impl History {
    /// An empty history with the given retention.
    pub fn new(config: HistoryConfig) -> Self {
        History {
            config,
            gpus: Vec::new(),
            samples_total: 0,
        }
    }

    /// Records one reading of every GPU taken at `t` (seconds since the UNIX epoch).
    pub fn push(&mut self, t: f64, gpus: &[GpuSample]) {
        for (slot, sample) in gpus.iter().enumerate() {
            // A sleeping GPU or a silent remote host was not read: a gap, not a drop to zero.
            if sample.is_current() {
                self.push_values(slot, t, Values::from_sample(sample));
            }
        }
        self.samples_total += 1;
    }

    /// Records one GPU's metrics at `t`. `slot` is the GPU's position in the snapshot.
    pub fn push_values(&mut self, slot: usize, t: f64, values: Values) {
        while self.gpus.len() <= slot {
            self.gpus.push(GpuHistory {
                // The live ring (6,000) is reserved exactly; an imported log's (millions of
                // rows) grows as rows arrive, so a small file does not reserve 160 MB.
                raw: VecDeque::with_capacity(self.config.raw_capacity.min(1 << 16) + 1),
                raw_dropped_any: false,
                tiers: self
                    .config
                    .tiers
                    .iter()
                    .map(|&(width, capacity)| Tier {
                        width,
                        capacity,
                        // Exactly what the ring holds (plus the one pushed before the oldest
                        // is dropped): growth by doubling would reserve up to twice that.
                        // Pages are only resident once written, so a young history stays small.
                        buckets: VecDeque::with_capacity(capacity + 1),
                        dropped_any: false,
                    })
                    .collect(),
            });
        }
        let gpu = &mut self.gpus[slot];
        // A clock stepping backwards (NTP, someone setting the time) must not break the time
        // order every query relies on: such a reading is filed at the newest time seen.
        let t = gpu.raw.back().map_or(t, |last| t.max(last.t));
        gpu.raw.push_back(RawPoint { t, values });
        let horizon = t - self.config.raw_seconds;
        while gpu.raw.len() > self.config.raw_capacity
            || gpu.raw.front().is_some_and(|p| p.t < horizon)
        {
            gpu.raw.pop_front();
            gpu.raw_dropped_any = true;
        }
        for tier in &mut gpu.tiers {
            tier.push(t, &values);
        }
    }

    /// Forgets the GPU at `slot`; the ones after it move up a place (a remote host left).
    pub fn remove_gpu(&mut self, slot: usize) {
        if slot < self.gpus.len() {
            self.gpus.remove(slot);
        }
    }

    /// Number of GPUs seen.
    pub fn gpu_count(&self) -> usize {
        self.gpus.len()
    }

    /// Number of snapshots recorded since start.
    pub fn samples_total(&self) -> u64 {
        self.samples_total
    }

    /// Time of the oldest reading still held for a GPU, in any tier.
    pub fn oldest(&self, slot: usize) -> Option<f64> {
        let gpu = self.gpus.get(slot)?;
        let tier_oldest = gpu
            .tiers
            .iter()
            .filter_map(|t| t.buckets.front())
            .map(|b| b.start);
        gpu.raw
            .front()
            .map(|p| p.t)
            .into_iter()
            .chain(tier_oldest)
            .reduce(f64::min)
    }

    /// Time of the newest reading.
    pub fn newest(&self, slot: usize) -> Option<f64> {
        self.gpus.get(slot)?.raw.back().map(|p| p.t)
    }

    /// Entries held across all GPUs and tiers (for memory accounting and tests).
    pub fn stored_entries(&self) -> usize {
        self.gpus
            .iter()
            .map(|g| g.raw.len() + g.tiers.iter().map(|t| t.buckets.len()).sum::<usize>())
            .sum()
    }

    /// Points of `metric` for GPU `slot` within `[t0, t1]`, at most two per column (the
    /// column's minimum and maximum, in time order) so peaks survive any zoom level.
    pub fn series(
        &self,
        slot: usize,
        metric: Metric,
        t0: f64,
        t1: f64,
        columns: usize,
    ) -> Vec<[f64; 2]> {
        let mut out = Vec::with_capacity(columns * 2);
        if let Some(items) = self.aggregates(slot, metric, t0, t1) {
            decimate(
                items.map(|a| (a.t, a.min, a.max)),
                t0,
                t1,
                columns,
                &mut out,
            );
        }
        out
    }

    /// `metric` of GPU `slot` within `[t0, t1]` from the finest store that covers it, in time
    /// order: one [`Aggregate`] per raw reading, or one per bucket (at its middle) with a
    /// reported value. `None` for an unknown GPU.
    fn aggregates(&self, slot: usize, metric: Metric, t0: f64, t1: f64) -> Option<Aggregates<'_>> {
        let gpu = self.gpus.get(slot)?;
        let m = metric.slot();
        Some(match choose_source(gpu, t0) {
            Source::Raw => {
                let from = gpu.raw.partition_point(|p| p.t < t0);
                Box::new(
                    gpu.raw
                        .range(from..)
                        .take_while(move |p| p.t <= t1)
                        .filter(move |p| !p.values.0[m].is_nan())
                        .map(move |p| {
                            let v = p.values.0[m];
                            Aggregate {
                                t: p.t,
                                min: v,
                                max: v,
                                sum: f64::from(v),
                                count: 1,
                            }
                        }),
                )
            }
            Source::Tier(i) => {
                let tier = &gpu.tiers[i];
                let from = tier.buckets.partition_point(|b| b.start + tier.width <= t0);
                let half = tier.width / 2.0;
                Box::new(
                    tier.buckets
                        .range(from..)
                        .take_while(move |b| b.start <= t1)
                        .filter(move |b| b.count[m] > 0)
                        .map(move |b| Aggregate {
                            t: b.start + half,
                            min: b.min[m],
                            max: b.max[m],
                            sum: f64::from(b.sum[m]),
                            count: u32::from(b.count[m]),
                        }),
                )
            }
        })
    }

    /// `metric` for GPU `slot` within `[t0, t1]` as at most one [`Column`] per plot column:
    /// the mean a line passes through and the min..max range a band covers, so a busy day
    /// reads as a line inside its spread instead of a solid block, and no peak is lost.
    pub fn columns(
        &self,
        slot: usize,
        metric: Metric,
        t0: f64,
        t1: f64,
        columns: usize,
    ) -> Vec<Column> {
        let mut out = Vec::new();
        if let Some(items) = self.aggregates(slot, metric, t0, t1) {
            columns_of(items, t0, t1, columns, &mut out);
        }
        out
    }

    /// Every stored reading of GPU `slot` within `[t0, t1]`, from the finest store covering it:
    /// raw samples, or bucket means (at the bucket's middle) further back.
    pub fn readings(&self, slot: usize, t0: f64, t1: f64) -> Vec<(f64, Values)> {
        let Some(gpu) = self.gpus.get(slot) else {
            return Vec::new();
        };
        match choose_source(gpu, t0) {
            Source::Raw => {
                let from = gpu.raw.partition_point(|p| p.t < t0);
                gpu.raw
                    .range(from..)
                    .take_while(|p| p.t <= t1)
                    .map(|p| (p.t, p.values))
                    .collect()
            }
            Source::Tier(i) => {
                let tier = &gpu.tiers[i];
                let from = tier.buckets.partition_point(|b| b.start + tier.width <= t0);
                tier.buckets
                    .range(from..)
                    .take_while(|b| b.start <= t1)
                    .map(|b| {
                        let mean = std::array::from_fn(|m| {
                            if b.count[m] == 0 {
                                f32::NAN
                            } else {
                                b.sum[m] / b.count[m] as f32
                            }
                        });
                        (b.start + tier.width / 2.0, Values(mean))
                    })
                    .collect()
            }
        }
    }

    /// min / mean / max of `metric` over `[t0, t1]` for GPU `slot`; `None` with no data.
    pub fn stats(&self, slot: usize, metric: Metric, t0: f64, t1: f64) -> Option<WindowStats> {
        let mut acc = StatsAccumulator::default();
        for a in self.aggregates(slot, metric, t0, t1)? {
            acc.add(a.min, a.max, a.sum, a.count);
        }
        acc.finish()
    }
}

/// One raw reading or one bucket of a metric: where it sits and what it holds.
struct Aggregate {
    t: f64,
    min: f32,
    max: f32,
    sum: f64,
    count: u32,
}

type Aggregates<'a> = Box<dyn Iterator<Item = Aggregate> + 'a>;

enum Source {
    Raw,
    Tier(usize),
}

/// The finest store that still holds everything from `t0` on; the coarsest one otherwise.
fn choose_source(gpu: &GpuHistory, t0: f64) -> Source {
    let raw_covers = !gpu.raw_dropped_any || gpu.raw.front().is_some_and(|p| p.t <= t0);
    if raw_covers {
        return Source::Raw;
    }
    match gpu.tiers.iter().position(|t| t.covers(t0)) {
        Some(i) => Source::Tier(i),
        None if gpu.tiers.is_empty() => Source::Raw,
        None => Source::Tier(gpu.tiers.len() - 1),
    }
}

#[derive(Default)]
struct StatsAccumulator {
    min: f32,
    max: f32,
    sum: f64,
    count: u64,
}

impl StatsAccumulator {
    fn add(&mut self, min: f32, max: f32, sum: f64, count: u32) {
        if self.count == 0 {
            (self.min, self.max) = (min, max);
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.sum += sum;
        self.count += count as u64;
    }

    fn finish(self) -> Option<WindowStats> {
        (self.count > 0).then(|| WindowStats {
            min: self.min as f64,
            mean: self.sum / self.count as f64,
            max: self.max as f64,
        })
    }
}

/// One plot column of a metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    /// When: the mean time of the readings in the column (a lone reading sits where it was).
    pub t: f64,
    /// Lowest value in the column.
    pub min: f64,
    /// Mean value in the column.
    pub mean: f64,
    /// Highest value in the column.
    pub max: f64,
}

#[derive(Clone, Copy)]
struct ColumnSums {
    column: usize,
    min: f32,
    max: f32,
    sum: f64,
    t_sum: f64,
    count: u64,
}

impl ColumnSums {
    fn finish(self) -> Column {
        let n = self.count as f64;
        Column {
            t: self.t_sum / n,
            min: self.min as f64,
            mean: self.sum / n,
            max: self.max as f64,
        }
    }
}

/// Folds time-ordered aggregates inside `[t0, t1]` into at most one [`Column`] per column.
/// Items outside the range, empty or `NaN`, are skipped.
fn columns_of(
    items: impl Iterator<Item = Aggregate>,
    t0: f64,
    t1: f64,
    columns: usize,
    out: &mut Vec<Column>,
) {
    let columns = columns.max(1);
    let span = t1 - t0;
    if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return;
    }
    let scale = columns as f64 / span;
    let mut current: Option<ColumnSums> = None;
    for Aggregate {
        t,
        min: lo,
        max: hi,
        sum,
        count,
    } in items
    {
        if !(t0..=t1).contains(&t) || lo.is_nan() || hi.is_nan() || count == 0 || sum.is_nan() {
            continue;
        }
        let column = (((t - t0) * scale) as usize).min(columns - 1);
        match &mut current {
            Some(c) if c.column == column => {
                c.min = c.min.min(lo);
                c.max = c.max.max(hi);
                c.sum += sum;
                c.t_sum += t * count as f64;
                c.count += u64::from(count);
            }
            _ => {
                if let Some(done) = current.take() {
                    out.push(done.finish());
                }
                current = Some(ColumnSums {
                    column,
                    min: lo,
                    max: hi,
                    sum,
                    t_sum: t * count as f64,
                    count: u64::from(count),
                });
            }
        }
    }
    if let Some(done) = current {
        out.push(done.finish());
    }
}

/// Reduces time-ordered `(t, min, max)` items inside `[t0, t1]` to at most two points per
/// column: the column's lowest and highest value, each at the time it occurred. Items outside
/// the range and `NaN` values are skipped. Appends to `out`.
pub fn decimate(
    items: impl Iterator<Item = (f64, f32, f32)>,
    t0: f64,
    t1: f64,
    columns: usize,
    out: &mut Vec<[f64; 2]>,
) {
    let columns = columns.max(1);
    let span = t1 - t0;
    if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return;
    }
    let scale = columns as f64 / span;
    let flat_run = FLAT_RUN_COLUMNS / scale;
    let mut current: Option<ColumnExtremes> = None;
    for (t, lo, hi) in items {
        if !(t0..=t1).contains(&t) || lo.is_nan() || hi.is_nan() {
            continue;
        }
        let column = (((t - t0) * scale) as usize).min(columns - 1);
        match &mut current {
            Some(c) if c.column == column => c.add(t, lo, hi),
            _ => {
                if let Some(done) = current.take() {
                    done.emit(out, flat_run);
                }
                current = Some(ColumnExtremes {
                    column,
                    min: (t, lo),
                    max: (t, hi),
                });
            }
        }
    }
    if let Some(done) = current {
        done.emit(out, flat_run);
    }
}

/// Longest level stretch, in columns, drawn without a point in between: long enough that an idle
/// GPU's flat lines cost a few points instead of one per pixel, short enough that hovering
/// anywhere on the line finds a point within a few pixels.
const FLAT_RUN_COLUMNS: f64 = 8.0;

/// Appends `p`, dropping the middle of a level run: three equal values in a row draw the same
/// line as the outer two.
fn push_point(out: &mut Vec<[f64; 2]>, p: [f64; 2], flat_run: f64) {
    if let [.., first, last] = out.as_mut_slice()
        && first[1] == p[1]
        && last[1] == p[1]
        && p[0] - first[0] <= flat_run
    {
        *last = p;
        return;
    }
    out.push(p);
}

struct ColumnExtremes {
    column: usize,
    min: (f64, f32),
    max: (f64, f32),
}

impl ColumnExtremes {
    fn add(&mut self, t: f64, lo: f32, hi: f32) {
        if lo < self.min.1 {
            self.min = (t, lo);
        }
        if hi > self.max.1 {
            self.max = (t, hi);
        }
    }

    fn emit(self, out: &mut Vec<[f64; 2]>, flat_run: f64) {
        let (a, b) = if self.min.0 <= self.max.0 {
            (self.min, self.max)
        } else {
            (self.max, self.min)
        };
        push_point(out, [a.0, a.1 as f64], flat_run);
        if a != b {
            push_point(out, [b.0, b.1 as f64], flat_run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vram(v: f32) -> Values {
        Values([v, 50.0, 20.0, 60.0, 300.0])
    }

    fn filled(config: HistoryConfig, seconds: f64, hz: f64, f: impl Fn(f64) -> f32) -> History {
        let mut h = History::new(config);
        let n = (seconds * hz) as usize;
        for i in 0..n {
            let t = 1_000_000.0 + i as f64 / hz;
            h.push_values(0, t, vram(f(t)));
        }
        h
    }

    #[test]
    fn decimation_keeps_at_most_two_points_per_column_and_the_peaks() {
        let items = (0..100_000).map(|i| {
            let v = if i == 54_321 { 1_000.0 } else { (i % 7) as f32 };
            (i as f64, v, v)
        });
        let mut out = Vec::new();
        decimate(items, 0.0, 100_000.0, 500, &mut out);
        assert!(out.len() <= 1_000, "{} points", out.len());
        assert!(out.iter().any(|p| p[1] == 1_000.0), "the spike survived");
        assert!(out.windows(2).all(|w| w[0][0] <= w[1][0]), "time ordered");
    }

    #[test]
    fn level_stretches_keep_their_ends_and_a_point_every_few_columns() {
        // An idle GPU: 500 MiB for 600 s, a job's 9,000 MiB from 300 s on.
        let items = (0..600).map(|i| {
            let v = if i < 300 { 500.0 } else { 9_000.0 };
            (i as f64, v, v)
        });
        let mut out = Vec::new();
        decimate(items, 0.0, 600.0, 600, &mut out);
        assert!(out.len() <= 2 * 600 / 8 + 4, "{} points", out.len());
        assert_eq!(out.first(), Some(&[0.0, 500.0]));
        assert_eq!(out.last(), Some(&[599.0, 9_000.0]));
        // The step is drawn where it happened, not smeared across a merged stretch.
        assert!(out.contains(&[299.0, 500.0]) && out.contains(&[300.0, 9_000.0]));
        let widest = out
            .windows(2)
            .map(|w| w[1][0] - w[0][0])
            .fold(0.0, f64::max);
        assert!(widest <= 8.0, "a gap of {widest} columns between points");
    }

    #[test]
    fn columns_give_the_mean_line_and_the_spread_of_each_column() {
        // 100 s at 10 Hz alternating 0 / 1,000 MiB, drawn on 10 columns.
        let h = filled(HistoryConfig::default(), 100.0, 10.0, |t| {
            if ((t * 10.0).round() as i64) % 2 == 0 {
                0.0
            } else {
                1_000.0
            }
        });
        let (t0, t1) = (1_000_000.0, 1_000_100.0);
        let cols = h.columns(0, Metric::VramUsedMib, t0, t1, 10);
        assert_eq!(cols.len(), 10);
        for c in &cols {
            assert_eq!((c.min, c.max), (0.0, 1_000.0));
            assert!((c.mean - 500.0).abs() < 1.0, "{c:?}");
        }
        assert!(cols.windows(2).all(|w| w[0].t < w[1].t));
    }

    #[test]
    fn a_lone_reading_is_a_column_where_it_was_taken() {
        let mut h = History::new(HistoryConfig::default());
        h.push_values(0, 1_000_010.0, vram(7_987.0));
        let cols = h.columns(0, Metric::VramUsedMib, 1_000_000.0, 1_000_060.0, 600);
        assert_eq!(
            cols,
            vec![Column {
                t: 1_000_010.0,
                min: 7_987.0,
                mean: 7_987.0,
                max: 7_987.0
            }]
        );
    }

    #[test]
    fn columns_from_aggregates_weight_the_mean_by_readings() {
        // A day at 1 Hz: older than the raw store, drawn from the 10 s tier.
        let h = filled(HistoryConfig::default(), 86_400.0, 1.0, |t| {
            if t < 1_043_235.0 { 1_000.0 } else { 3_000.0 }
        });
        let cols = h.columns(0, Metric::VramUsedMib, 1_000_000.0, 1_086_400.0, 1_000);
        assert!(cols.len() <= 1_000 && cols.len() > 900, "{}", cols.len());
        let step = cols
            .iter()
            .find(|c| c.min < c.max)
            .expect("the column holding the step");
        assert_eq!((step.min, step.max), (1_000.0, 3_000.0));
        assert!(step.mean > 1_000.0 && step.mean < 3_000.0);
        assert!(cols.iter().filter(|c| c.min < c.max).count() == 1);
    }

    #[test]
    fn decimation_passes_sparse_data_through_unchanged() {
        let items = [(1.0, 5.0, 5.0), (2.0, 6.0, 6.0), (3.0, f32::NAN, f32::NAN)];
        let mut out = Vec::new();
        decimate(items.into_iter(), 0.0, 10.0, 1_000, &mut out);
        assert_eq!(out, vec![[1.0, 5.0], [2.0, 6.0]]);
    }

    #[test]
    fn decimation_of_an_empty_or_inverted_range_yields_nothing() {
        let mut out = Vec::new();
        decimate([(1.0, 1.0, 1.0)].into_iter(), 5.0, 5.0, 10, &mut out);
        decimate([(1.0, 1.0, 1.0)].into_iter(), 6.0, 5.0, 10, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_clock_stepping_backwards_keeps_readings_in_time_order() {
        let mut h = History::default();
        for (t, v) in [(100.0, 1.0), (101.0, 2.0), (50.0, 3.0), (102.0, 4.0)] {
            h.push_values(0, t, vram(v));
        }
        let points = h.series(0, Metric::VramUsedMib, 0.0, 200.0, 1_000);
        assert!(points.windows(2).all(|w| w[0][0] <= w[1][0]), "{points:?}");
        // The stepped-back reading is kept, filed at the newest time seen.
        assert!(points.contains(&[101.0, 3.0]), "{points:?}");
        assert_eq!(
            h.stats(0, Metric::VramUsedMib, 0.0, 200.0).unwrap().max,
            4.0
        );
    }

    #[test]
    fn a_bucket_stays_at_80_bytes() {
        // 8 GPUs x 24 h is ~100,000 buckets: each byte here is 0.1 MB of resident memory.
        assert!(std::mem::size_of::<Bucket>() <= 80);
    }

    #[test]
    fn bucket_means_survive_the_compact_sum() {
        let h = filled(HistoryConfig::default(), 7_200.0, 10.0, |t| {
            if (t as u64) % 2 == 0 {
                196_607.0
            } else {
                196_608.0
            }
        });
        let now = h.newest(0).unwrap();
        // Two hours back is served from the 10 s tier: 100 readings per bucket.
        let stats = h
            .stats(0, Metric::VramUsedMib, now - 7_000.0, now - 3_700.0)
            .unwrap();
        assert!((stats.mean - 196_607.5).abs() < 0.5, "{}", stats.mean);
        assert_eq!((stats.min, stats.max), (196_607.0, 196_608.0));
    }

    #[test]
    fn raw_history_is_bounded_by_time_and_capacity() {
        let h = filled(HistoryConfig::default(), 3_600.0, 10.0, |_| 1.0);
        let newest = h.newest(0).unwrap();
        let raw = h.gpus[0].raw.len();
        assert!(raw <= 6_000, "{raw}");
        assert!(newest - h.gpus[0].raw.front().unwrap().t <= 600.0);
    }

    #[test]
    fn day_of_10hz_sampling_stays_small() {
        let h = filled(HistoryConfig::default(), 86_400.0, 10.0, |t| {
            (t % 100.0) as f32
        });
        // 6,000 raw + 3,600 one-second + 8,640 ten-second entries, not 864,000 samples.
        assert!(
            h.stored_entries() <= 6_000 + 3_600 + 8_640 + 2,
            "{}",
            h.stored_entries()
        );
        let newest = h.newest(0).unwrap();
        assert!(newest - h.oldest(0).unwrap() >= 86_390.0);
    }

    #[test]
    fn each_window_is_drawn_from_the_finest_store_that_covers_it() {
        let h = filled(HistoryConfig::default(), 86_400.0, 10.0, |t| {
            (t % 100.0) as f32
        });
        let now = h.newest(0).unwrap();
        for window in [60.0, 600.0, 3_600.0, 86_400.0] {
            let points = h.series(0, Metric::VramUsedMib, now - window, now, 1_000);
            assert!(!points.is_empty());
            assert!(points.len() <= 2_000, "{window}: {}", points.len());
            let first = points.first().unwrap()[0];
            let last = points.last().unwrap()[0];
            // The plotted range spans (nearly) the whole window, whichever tier served it.
            assert!(
                first - (now - window) < window * 0.01 + 10.0,
                "{window}: starts {first}"
            );
            assert!(now - last < window * 0.01 + 10.0, "{window}: ends {last}");
        }
    }

    #[test]
    fn aggregates_keep_min_max_and_mean() {
        // A sawtooth 0..99 every 100 s: over a day, min 0, max 99, mean ≈ 49.5.
        let h = filled(HistoryConfig::default(), 86_400.0, 10.0, |t| {
            (t % 100.0).floor() as f32
        });
        let now = h.newest(0).unwrap();
        let s = h
            .stats(0, Metric::VramUsedMib, now - 86_400.0, now)
            .unwrap();
        assert_eq!(s.min, 0.0);
        assert_eq!(s.max, 99.0);
        assert!((s.mean - 49.5).abs() < 0.5, "{}", s.mean);
    }

    #[test]
    fn unreported_metrics_are_gaps_not_zeros() {
        let mut h = History::default();
        for i in 0..10 {
            h.push_values(0, i as f64, Values([1.0, f32::NAN, 0.0, 0.0, 0.0]));
        }
        assert!(h.series(0, Metric::GpuUtil, 0.0, 10.0, 100).is_empty());
        assert!(h.stats(0, Metric::GpuUtil, 0.0, 10.0).is_none());
        assert_eq!(h.series(0, Metric::VramUsedMib, 0.0, 10.0, 100).len(), 10);
    }

    #[test]
    fn unknown_gpu_has_no_series() {
        let h = History::default();
        assert!(h.series(3, Metric::Power, 0.0, 1.0, 10).is_empty());
        assert!(h.oldest(3).is_none());
    }
}
