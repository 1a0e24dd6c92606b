//! What a remote host may put into this window. A host is another machine: a compromised or
//! broken one may name thousands of GPUs, new ids on every reading, or timestamps decades away.
//! Every GPU that gets a place in the window costs about a megabyte of history for the whole
//! session, so a host gets places only for GPUs a real box could have, and one that keeps
//! renaming its GPUs is shown as misbehaving instead of stored.

use super::gpu_key;
use crate::telemetry::GpuSample;
use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;

/// GPUs one host may have in the window. A real box has at most 16 (an HGX has 8; 16-GPU
/// chassis exist); four times that is headroom, not a target.
pub const MAX_GPUS_PER_HOST: usize = 64;
/// Processes read per remote GPU (a busy shared box has dozens).
pub const MAX_PROCESSES_PER_GPU: usize = 256;
/// Readings in a row that rename a GPU before the host is refused.
pub const RENAMES_IN_A_ROW: u32 = 3;
/// How far before now a remote reading may be dated (the back-fill reaches a day back).
pub const OLDEST_SECONDS: f64 = 24.0 * 3600.0 + 60.0;
/// How far after now a remote reading may be dated (clocks drift a little).
pub const NEWEST_SECONDS: f64 = 60.0;
/// Longest GPU id kept: NVML's UUIDs are 40 characters ("GPU-" and 36), a MIG device's 44.
pub const MAX_ID_CHARS: usize = 64;
/// Longest GPU name kept ("NVIDIA H100 80GB HBM3" is 21 characters).
pub const MAX_NAME_CHARS: usize = 96;
/// Longest process name kept (NVML gives a full path).
pub const MAX_PROCESS_NAME_CHARS: usize = 256;
/// Longest PCI address kept ("00000000:3B:00.0" is 16 characters).
pub const MAX_PCI_CHARS: usize = 32;

/// The GPU ids one host has used, deciding which of its GPUs get a place. Everything it holds
/// is bounded by [`MAX_GPUS_PER_HOST`] entries of at most [`MAX_ID_CHARS`] characters, whatever
/// the host sends: only admitted ids are remembered, each at one index.
#[derive(Debug, Default)]
pub struct GpuIds {
    admitted: HashSet<String>,
    /// Where each admitted id was last seen, and the reverse.
    index_of: HashMap<String, u32>,
    key_at_index: HashMap<u32, String>,
    renames: u32,
    refused: Option<String>,
}

/// `text` cut to `max` characters (at a character boundary).
fn clip(text: &mut String, max: usize) {
    if let Some((end, _)) = text.char_indices().nth(max) {
        text.truncate(end);
    }
}

/// A reading from a host with every string cut to what a real box sends and its process list
/// capped, so one reading costs at most a few kilobytes whatever arrived.
pub fn bounded(mut g: GpuSample) -> GpuSample {
    if let Some(id) = g.uuid.as_mut() {
        clip(id, MAX_ID_CHARS);
    }
    if let Some(pci) = g.pci_bus_id.as_mut() {
        clip(pci, MAX_PCI_CHARS);
    }
    clip(&mut g.name, MAX_NAME_CHARS);
    g.processes.truncate(MAX_PROCESSES_PER_GPU);
    for p in &mut g.processes {
        clip(&mut p.name, MAX_PROCESS_NAME_CHARS);
    }
    g
}

/// What became of one reading.
#[derive(Debug, Default, PartialEq)]
pub struct Admitted {
    /// The GPUs that keep a place, in the host's order.
    pub gpus: Vec<GpuSample>,
    /// What was left out and why, as a sentence for the hosts list.
    pub problem: Option<String>,
}

impl GpuIds {
    /// Set once the host renamed its GPUs [`RENAMES_IN_A_ROW`] readings in a row: from then
    /// on nothing it sends is stored.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Remembers admitted `key` at `index` only: whatever was at either place before is
    /// forgotten, so both maps hold at most one entry per admitted id.
    fn place(&mut self, key: String, index: u32) {
        if let Some(old_index) = self.index_of.insert(key.clone(), index)
            && old_index != index
            && self.key_at_index.get(&old_index) == Some(&key)
        {
            self.key_at_index.remove(&old_index);
        }
        if let Some(old_key) = self.key_at_index.insert(index, key.clone())
            && old_key != key
            && self.index_of.get(&old_key) == Some(&index)
        {
            self.index_of.remove(&old_key);
        }
    }

    /// Entries remembered (ids and places): bounded by a constant whatever the host sent.
    pub fn remembered(&self) -> usize {
        self.admitted.len() + self.index_of.len() + self.key_at_index.len()
    }

    /// Characters of ids remembered.
    pub fn remembered_chars(&self) -> usize {
        self.admitted.iter().map(String::len).sum::<usize>()
            + self.index_of.keys().map(String::len).sum::<usize>()
            + self.key_at_index.values().map(String::len).sum::<usize>()
    }

    /// Admits one reading of the host's GPUs. `more_than_cap` says the host named more GPUs
    /// than were read (the parser stops at [`MAX_GPUS_PER_HOST`]).
    pub fn admit(&mut self, gpus: Vec<GpuSample>, more_than_cap: bool) -> Admitted {
        if let Some(why) = &self.refused {
            return Admitted {
                gpus: Vec::new(),
                problem: Some(why.clone()),
            };
        }
        let mut renamed = false;
        let mut seen = HashSet::new();
        let mut refused_new = 0usize;
        let mut kept = Vec::with_capacity(gpus.len().min(MAX_GPUS_PER_HOST));
        for g in gpus.into_iter().take(MAX_GPUS_PER_HOST) {
            let g = bounded(g);
            let key = gpu_key(&g);
            if !seen.insert(key.clone()) {
                continue; // the same GPU twice in one reading
            }
            // A rename: another id where this one was, or this id where another index was.
            let other_here = self
                .key_at_index
                .get(&g.index)
                .is_some_and(|before| *before != key);
            let moved = self.index_of.get(&key).is_some_and(|&i| i != g.index);
            renamed |= other_here || moved;
            if !self.admitted.contains(&key) {
                if self.admitted.len() >= MAX_GPUS_PER_HOST {
                    refused_new += 1;
                    continue;
                }
                self.admitted.insert(key.clone());
            }
            self.place(key, g.index);
            kept.push(g);
        }
        self.renames = if renamed { self.renames + 1 } else { 0 };
        if self.renames >= RENAMES_IN_A_ROW {
            let why = crate::t!(
                "remote-refused-renames",
                count = RENAMES_IN_A_ROW.to_string()
            );
            self.refused = Some(why.clone());
            return Admitted {
                gpus: Vec::new(),
                problem: Some(why),
            };
        }
        let problem = if more_than_cap {
            Some(crate::t!(
                "remote-too-many-gpus",
                max = MAX_GPUS_PER_HOST.to_string()
            ))
        } else if refused_new > 0 {
            Some(crate::t!(
                "remote-new-gpus-dropped",
                total = (self.admitted.len() + refused_new).to_string(),
                new = refused_new.to_string()
            ))
        } else {
            None
        };
        Admitted {
            gpus: kept,
            problem,
        }
    }
}

/// A remote timestamp (seconds since the UNIX epoch) if it lies within a day before `now` and
/// a minute after; `None` for anything else (NaN, the year 2096, −1e308).
pub fn plausible_time(t: f64, now: f64) -> Option<f64> {
    (t.is_finite() && t >= now - OLDEST_SECONDS && t <= now + NEWEST_SECONDS).then_some(t)
}

/// A serde helper: a list read up to `N` items, the rest skipped without being built. One
/// more than `N` is kept, so the reader can tell that the list was longer.
pub fn capped<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Capped<T, const N: usize>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Capped<T, N> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N + 1).min(64));
            while out.len() <= N {
                match seq.next_element()? {
                    Some(item) => out.push(item),
                    None => return Ok(out),
                }
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(out)
        }
    }
    d.deserialize_seq(Capped::<T, N>(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, uuid: &str) -> GpuSample {
        GpuSample {
            index,
            uuid: Some(uuid.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_real_box_keeps_every_gpu_reading_after_reading() {
        let mut ids = GpuIds::default();
        for _ in 0..10 {
            let a = ids.admit(vec![gpu(0, "GPU-a"), gpu(1, "GPU-b")], false);
            assert_eq!(a.gpus.len(), 2);
            assert_eq!(a.problem, None);
        }
        // A reboot that swaps two GPUs renames once: not a misbehaving host.
        let a = ids.admit(vec![gpu(0, "GPU-b"), gpu(1, "GPU-a")], false);
        assert_eq!(a.gpus.len(), 2);
        assert!(ids.admit(vec![gpu(0, "GPU-b")], false).problem.is_none());
        assert!(ids.refused().is_none());
    }

    #[test]
    fn a_host_naming_thousands_of_gpus_gets_places_for_sixty_four() {
        let mut ids = GpuIds::default();
        let many: Vec<_> = (0..(MAX_GPUS_PER_HOST as u32 + 1))
            .map(|i| gpu(i, &format!("GPU-{i}")))
            .collect();
        let a = ids.admit(many, true);
        assert_eq!(a.gpus.len(), MAX_GPUS_PER_HOST);
        assert!(a.problem.unwrap().contains("more than 64 GPUs"));
    }

    #[test]
    fn fresh_ids_on_every_reading_refuse_the_host_and_store_nothing_more() {
        let mut ids = GpuIds::default();
        let mut admitted = 0;
        for poll in 0..100u32 {
            let fresh: Vec<_> = (0..8).map(|i| gpu(i, &format!("GPU-{poll}-{i}"))).collect();
            admitted += ids.admit(fresh, false).gpus.len();
        }
        assert!(ids.refused().unwrap().contains("named its GPUs anew"));
        // The first reading and the renaming ones before the refusal: never more than the cap.
        assert!(admitted <= MAX_GPUS_PER_HOST, "{admitted}");
        assert!(ids.admit(vec![gpu(0, "GPU-0-0")], false).gpus.is_empty());
    }

    #[test]
    fn new_gpus_beyond_the_cap_are_left_out_and_said() {
        let mut ids = GpuIds::default();
        // New ids at new indexes each time (no renaming): the cap still holds.
        for i in 0..200u32 {
            ids.admit(vec![gpu(i, &format!("GPU-{i}"))], false);
        }
        let a = ids.admit(vec![gpu(500, "GPU-500")], false);
        assert!(a.gpus.is_empty());
        assert!(a.problem.unwrap().contains("new ones are not shown"));
    }

    #[test]
    fn the_same_ids_at_fresh_indices_every_poll_are_renames_and_memory_stays_bounded() {
        let mut ids = GpuIds::default();
        let long = "G".repeat(60_000);
        let mut polls = 0u32;
        while ids.refused().is_none() && polls < 1_000 {
            let fresh: Vec<_> = (0..64u32)
                .map(|i| gpu(polls * 64 + i, &format!("GPU-{i}-{long}")))
                .collect();
            let a = ids.admit(fresh, false);
            assert!(
                a.gpus
                    .iter()
                    .all(|g| g.uuid.as_ref().unwrap().len() <= MAX_ID_CHARS)
            );
            assert!(ids.remembered() <= 3 * MAX_GPUS_PER_HOST);
            assert!(ids.remembered_chars() <= 3 * MAX_GPUS_PER_HOST * MAX_ID_CHARS);
            polls += 1;
        }
        assert!(ids.refused().unwrap().contains("named its GPUs anew"));
        assert_eq!(
            polls,
            1 + RENAMES_IN_A_ROW,
            "the first reading, then the renames"
        );
    }

    #[test]
    fn a_known_id_at_a_new_index_is_a_rename_even_when_that_index_was_never_used() {
        let mut ids = GpuIds::default();
        ids.admit(vec![gpu(0, "GPU-a")], false);
        for i in 1..=RENAMES_IN_A_ROW {
            ids.admit(vec![gpu(i * 1000, "GPU-a")], false);
        }
        assert!(ids.refused().is_some());
    }

    #[test]
    fn strings_from_a_host_are_cut_to_what_a_real_box_sends() {
        let mut g = gpu(0, &"é".repeat(1_000));
        g.name = "n".repeat(10_000);
        g.pci_bus_id = Some("p".repeat(1_000));
        g.processes = (0..1_000)
            .map(|pid| crate::telemetry::ProcessInfo {
                pid,
                name: "x".repeat(100_000),
                ..Default::default()
            })
            .collect();
        let g = bounded(g);
        assert_eq!(g.uuid.unwrap().chars().count(), MAX_ID_CHARS);
        assert_eq!(g.name.len(), MAX_NAME_CHARS);
        assert_eq!(g.pci_bus_id.unwrap().len(), MAX_PCI_CHARS);
        assert_eq!(g.processes.len(), MAX_PROCESSES_PER_GPU);
        assert!(
            g.processes
                .iter()
                .all(|p| p.name.len() == MAX_PROCESS_NAME_CHARS)
        );
    }

    #[test]
    fn timestamps_outside_a_day_before_and_a_minute_after_now_are_dropped() {
        let now = 1.8e9;
        assert_eq!(plausible_time(now - 10.0, now), Some(now - 10.0));
        assert_eq!(plausible_time(now + 30.0, now), Some(now + 30.0));
        for t in [
            f64::NAN,
            f64::INFINITY,
            -1e308,
            now + 3600.0,
            now - 3.0 * 86400.0,
            3.96e9,
        ] {
            assert_eq!(plausible_time(t, now), None, "{t}");
        }
    }

    #[test]
    fn a_capped_list_keeps_one_more_than_its_cap_and_skips_the_rest() {
        #[derive(Deserialize)]
        struct L {
            #[serde(deserialize_with = "capped::<_, _, 3>")]
            items: Vec<u32>,
        }
        let l: L = serde_json::from_str(r#"{"items":[1,2,3,4,5,6,{"x":[1]}]}"#).unwrap();
        assert_eq!(l.items, [1, 2, 3, 4]);
        let l: L = serde_json::from_str(r#"{"items":[1,2]}"#).unwrap();
        assert_eq!(l.items, [1, 2]);
    }
}
