//! Per-process GPU memory as Windows' graphics kernel counts it (WDDM), for the NVIDIA driver's
//! WDDM mode, where NVML reports every process's memory as not available.
//!
//! Task Manager reads the same numbers: the performance counter set "GPU Process Memory", one
//! instance per process and adapter, named `pid_<pid>_luid_0x<high>_0x<low>_phys_<n>` (a
//! process that uses two adapters, or two physical parts of one linked adapter, has several),
//! with `Local Usage` (resident memory on the card) and `Non Local Usage` (resident system
//! memory the GPU reaches through the bus: the CUDA sysmem fallback's spill, and pinned host
//! memory). Those are Task Manager's "Dedicated/Shared GPU memory"; the set's `Dedicated Usage`
//! and `Shared Usage` are what a process has committed, which for the desktop window manager
//! and other graphics programs is many times what they hold (System Informer moved to the
//! resident pair in PR #2971 after its issue #2389: dwm at 1,576 MB committed, 188 MB in Task
//! Manager). The reader itself is Windows-only (`platform::gpu_memory`); what it reads is
//! turned into per-process numbers here, on every platform, so the parsing runs in every test
//! run.

use crate::telemetry::{ProcessInfo, ProcessKind};
use crate::units::{Bytes, MIB};
use std::collections::HashMap;

/// A display adapter's locally unique id (Windows' LUID: a high and a low part).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Luid {
    /// `HighPart` (signed in Windows' headers; its bits as printed in instance names).
    pub high: u32,
    /// `LowPart`.
    pub low: u32,
}

/// One process's memory on one adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// On the card.
    pub dedicated: Bytes,
    /// In system memory, reached by the GPU over the bus.
    pub shared: Bytes,
}

/// `pid_11928_luid_0x00000000_0x0000D3B4_phys_0` → (11928, LUID); hex in either case.
pub fn parse_instance(name: &str) -> Option<(u32, Luid)> {
    let rest = name.strip_prefix("pid_")?;
    let (pid, rest) = rest.split_once("_luid_0x")?;
    let (high, rest) = rest.split_once("_0x")?;
    let (low, _phys) = rest.split_once("_phys_")?;
    Some((
        pid.parse().ok()?,
        Luid {
            high: u32::from_str_radix(high, 16).ok()?,
            low: u32::from_str_radix(low, 16).ok()?,
        },
    ))
}

/// Adds up one counter's instances (as PDH returns them: name and value) per adapter and pid.
/// Instances that are not a process's (or negative or non-finite values) are skipped.
pub fn per_process(
    dedicated: &[(String, f64)],
    shared: &[(String, f64)],
) -> HashMap<Luid, HashMap<u32, ProcessMemory>> {
    let mut out: HashMap<Luid, HashMap<u32, ProcessMemory>> = HashMap::new();
    let mut add = |items: &[(String, f64)], shared: bool| {
        for (name, value) in items {
            let Some((pid, luid)) = parse_instance(name) else {
                continue;
            };
            if !value.is_finite() || *value < 0.0 {
                continue;
            }
            let bytes = Bytes(*value as u64);
            let entry = out.entry(luid).or_default().entry(pid).or_default();
            if shared {
                entry.shared = Bytes(entry.shared.0.saturating_add(bytes.0));
            } else {
                entry.dedicated = Bytes(entry.dedicated.0.saturating_add(bytes.0));
            }
        }
    };
    add(dedicated, false);
    add(shared, true);
    out
}

/// Below this a process's dedicated memory is the desktop's bookkeeping, not a job's.
const LISTED_FROM: Bytes = Bytes(MIB);

/// Puts WDDM's numbers into NVML's process list of that adapter: NVML's memory where it says
/// (TCC mode, or a driver that reports), WDDM's where it says "not available", shared memory
/// from WDDM always; a process WDDM counts with at least 1 MiB on the card but NVML did not
/// list (graphics work NVML leaves out) is added.
pub fn apply(list: &mut Vec<ProcessInfo>, memory: &HashMap<u32, ProcessMemory>) {
    for row in list.iter_mut() {
        if let Some(m) = memory.get(&row.pid) {
            row.used = row.used.or(Some(m.dedicated));
            row.shared = Some(m.shared);
        }
    }
    let mut missing: Vec<(&u32, &ProcessMemory)> = memory
        .iter()
        .filter(|(pid, m)| m.dedicated >= LISTED_FROM && !list.iter().any(|r| r.pid == **pid))
        .collect();
    missing.sort_by_key(|(pid, _)| **pid);
    for (pid, m) in missing {
        list.push(ProcessInfo {
            pid: *pid,
            used: Some(m.dedicated),
            shared: Some(m.shared),
            kind: ProcessKind::Graphics,
            visible: true,
            ..Default::default()
        });
    }
    crate::telemetry::sort_largest_first(list);
}

/// Reading `typeperf` captures in tests (the fixtures under tests/fixtures/wddm/).
#[cfg(test)]
pub(crate) mod typeperf {
    /// One counter's column of a `typeperf` capture (PDH-CSV 4.0): the header row names each
    /// counter `\\HOST\Set(instance)\Counter`, the next row holds the values, all quoted.
    pub fn column(csv: &str, counter: &str) -> Vec<(String, f64)> {
        let mut rows = csv.lines().filter(|l| l.starts_with('"')).map(|l| {
            l.trim()
                .trim_matches('"')
                .split("\",\"")
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let header = rows.next().unwrap();
        let values = rows.next().unwrap();
        header
            .iter()
            .zip(&values)
            .skip(1)
            .filter(|(h, _)| h.ends_with(&format!(")\\{counter}")))
            .map(|(h, v)| {
                let instance = &h[h.find('(').unwrap() + 1..h.rfind(')').unwrap()];
                (instance.to_string(), v.trim().parse().unwrap())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::GIB;

    const CAPTURE: &str = include_str!("../../tests/fixtures/wddm/typeperf-gpu-process-memory.csv");

    #[test]
    fn dwm_shows_what_task_manager_shows_resident_not_committed() {
        // The resident pair, as the reader asks for it: dwm's 188 + 4 MiB on the NVIDIA card.
        let local = typeperf::column(CAPTURE, "Local Usage");
        let non_local = typeperf::column(CAPTURE, "Non Local Usage");
        let resident = per_process(&local, &non_local);
        let nvidia = Luid {
            high: 0,
            low: 0xD3B4,
        };
        assert_eq!(resident[&nvidia][&4410].dedicated, Bytes(192 * MIB));
        assert_eq!(resident[&nvidia][&4410].shared, Bytes(48 * MIB));
        // The committed pair would have shown 1,588 MiB for it.
        let committed = per_process(
            &typeperf::column(CAPTURE, "Dedicated Usage"),
            &typeperf::column(CAPTURE, "Shared Usage"),
        );
        assert_eq!(committed[&nvidia][&4410].dedicated, Bytes(1_588 * MIB));
    }

    #[test]
    fn a_typeperf_capture_gives_each_process_its_dedicated_and_shared_memory() {
        let dedicated = typeperf::column(CAPTURE, "Local Usage");
        let shared = typeperf::column(CAPTURE, "Non Local Usage");
        assert_eq!(dedicated.len(), 6);
        let adapters = per_process(&dedicated, &shared);
        let nvidia = Luid {
            high: 0,
            low: 0xD3B4,
        };
        let on_nvidia = &adapters[&nvidia];
        // python.exe (ComfyUI portable): the card full and 5.5 GiB spilled into system memory.
        let comfy = on_nvidia[&11928];
        assert_eq!(comfy.dedicated, Bytes(23_090_691_072));
        assert_eq!(comfy.shared, Bytes(5_905_580_032));
        // A process on two physical parts of the adapter is added up.
        assert_eq!(on_nvidia[&4410].dedicated, Bytes(188 * MIB + 4 * MIB));
        // The integrated GPU's LUID is another adapter.
        assert_eq!(adapters.len(), 2);
        assert!(
            adapters[&Luid {
                high: 0,
                low: 0xA1F0
            }]
                .contains_key(&4410)
        );
    }

    #[test]
    fn wddm_fills_what_nvml_leaves_unavailable_and_keeps_what_it_says() {
        let memory = HashMap::from([
            (
                10,
                ProcessMemory {
                    dedicated: Bytes(20 * GIB),
                    shared: Bytes(5 * GIB),
                },
            ),
            (
                20,
                ProcessMemory {
                    dedicated: Bytes(3 * GIB),
                    shared: Bytes(0),
                },
            ),
            (
                30,
                ProcessMemory {
                    dedicated: Bytes(200 * MIB),
                    shared: Bytes(0),
                },
            ),
            (
                40,
                ProcessMemory {
                    dedicated: Bytes(4096),
                    shared: Bytes(0),
                },
            ),
        ]);
        let mut list = vec![
            ProcessInfo {
                pid: 10,
                used: None, // WDDM mode: NVML says N/A
                ..Default::default()
            },
            ProcessInfo {
                pid: 20,
                used: Some(Bytes(2 * GIB)), // NVML said: kept
                ..Default::default()
            },
        ];
        apply(&mut list, &memory);
        let pids: Vec<u32> = list.iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![10, 20, 30], "40's 4 KiB is not a job");
        assert_eq!(list[0].used, Some(Bytes(20 * GIB)));
        assert_eq!(list[0].shared, Some(Bytes(5 * GIB)));
        assert_eq!(list[1].used, Some(Bytes(2 * GIB)));
        assert_eq!(list[2].kind, ProcessKind::Graphics);
    }

    #[test]
    fn other_instances_and_bad_values_are_skipped() {
        assert_eq!(
            parse_instance("pid_7_luid_0x00000001_0x0000d3b4_phys_1"),
            Some((
                7,
                Luid {
                    high: 1,
                    low: 0xD3B4
                }
            ))
        );
        for bad in [
            "luid_0x00000000_0x0000D3B4_phys_0", // "GPU Adapter Memory"'s instance
            "_Total",
            "pid_x_luid_0x0_0x1_phys_0",
            "pid_1_luid_0xZZ_0x1_phys_0",
            "",
        ] {
            assert_eq!(parse_instance(bad), None, "{bad}");
        }
        let items = vec![
            ("pid_1_luid_0x0_0x1_phys_0".to_string(), f64::NAN),
            ("pid_1_luid_0x0_0x1_phys_0".to_string(), -5.0),
            ("_Total".to_string(), 1e12),
        ];
        let out = per_process(&items, &[]);
        assert!(
            out.values()
                .all(|m| m.values().all(|p| p.dedicated == Bytes(0)))
        );
    }
}
