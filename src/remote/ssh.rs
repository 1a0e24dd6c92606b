//! The feed of a host with nothing but the NVIDIA driver on it: one long-lived
//! `ssh HOST nvidia-smi --query-gpu=… --format=csv,noheader,nounits -lms N` through the system
//! ssh client (the user's keys, agent and ~/.ssh/config), its rows read with the CSV import's
//! cell rules. Field names are nvidia-smi's own (`nvidia-smi --help-query-gpu`), limited to
//! ones every driver of the last years knows: an unknown field makes nvidia-smi print nothing.

use super::bounds::GpuIds;
use super::{HostStatus, Shared, nap};
use crate::logs::import::number;
use crate::telemetry::{GpuSample, MemoryReading, RemoteOrigin};
use crate::units::{Bytes, Celsius, MIB, MegaHertz, Percent, Watts};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The fields asked for, in order.
pub const FIELDS: &str = "index,uuid,pci.bus_id,name,memory.used,memory.total,memory.free,\
utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem,\
fan.speed";
/// nvidia-smi's interval, ms.
pub const INTERVAL_MS: u64 = 1_000;
/// A longer line is not nvidia-smi's.
const MAX_LINE: usize = 4_096;

/// The command line run on the host (after `ssh … HOST`).
pub fn remote_command() -> String {
    format!("nvidia-smi --query-gpu={FIELDS} --format=csv,noheader,nounits -lms {INTERVAL_MS}")
}

/// One row of the query as a sample; `None` for a line that is not one.
pub fn parse_row(line: &str, host: &str) -> Option<GpuSample> {
    let cells: Vec<&str> = line.split(',').map(str::trim).collect();
    if cells.len() != FIELDS.split(',').count() {
        return None;
    }
    let n = |i: usize| number(cells[i]);
    let mib = |i: usize| n(i).map(|v| Bytes((v.max(0.0) as u64).saturating_mul(MIB)));
    let index = n(0).filter(|i| *i >= 0.0 && *i < 1024.0)? as u32;
    let used = mib(4)?;
    let total = mib(5)?;
    let text = |i: usize| {
        let c = cells[i];
        (!c.is_empty() && !c.starts_with('[')).then(|| crate::text::sanitized(c))
    };
    Some(GpuSample {
        index,
        uuid: text(1),
        pci_bus_id: text(2),
        name: text(3).unwrap_or_else(|| format!("GPU {index}")),
        memory: MemoryReading {
            used,
            total,
            free: mib(6).unwrap_or(total.saturating_sub(used)),
            reserved: Bytes(0),
        },
        gpu_util: n(7).map(|v| Percent(v as f32)),
        memory_util: n(8).map(|v| Percent(v as f32)),
        temperature: n(9).map(|v| Celsius(v as f32)),
        power: n(10).map(|v| Watts(v as f32)),
        power_limit: n(11).map(|v| Watts(v as f32)),
        sm_clock: n(12).map(|v| MegaHertz(v as u32)),
        memory_clock: n(13).map(|v| MegaHertz(v as u32)),
        fan: n(14).map(|v| Percent(v as f32)),
        remote: Some(RemoteOrigin {
            host: host.to_string(),
            index,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The feed's loop; returns when the host is removed.
pub(super) fn run(target: &str, shared: &Shared) {
    let host = shared.lock().name.clone();
    {
        let mut state = shared.lock();
        state.interval = Duration::from_millis(INTERVAL_MS);
        state.note = Some(crate::t!("remote-over-ssh"));
    }
    let mut failures = 0u32;
    // Kept across reconnects: a host that renames its GPUs is refused for good.
    let mut ids = GpuIds::default();
    while !shared.stopped() {
        let error = match read_once(target, &host, shared, &mut ids) {
            Ok(()) => crate::t!("remote-smi-stopped"),
            Err(e) => e,
        };
        if shared.stopped() || ids.refused().is_some() {
            break;
        }
        let heard = shared.lock().status == HostStatus::Live;
        if heard {
            failures = 0;
        }
        let wait = shared.failed(error, &mut failures);
        nap(shared, wait);
    }
}

/// Runs ssh until it ends; Ok when it ran and then stopped, Err with its words otherwise.
fn read_once(target: &str, host: &str, shared: &Shared, ids: &mut GpuIds) -> Result<(), String> {
    let mut command = Command::new("ssh");
    // An ssh config file to use instead of ~/.ssh/config (ssh finds that through the
    // password database, not $HOME, so tests and unusual set-ups name theirs here).
    if let Some(config) = std::env::var_os("VRAMDECK_SSH_CONFIG") {
        command.arg("-F").arg(config);
    }
    let mut child = command
        .args([
            // Never ask for a password or a host key on a terminal the window does not have.
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=2",
            "-T",
            "--",
            target,
        ])
        .arg(remote_command())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e} (install openssh-client)"))?;
    shared.child.store(child.id(), Ordering::SeqCst);
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(e) = stderr {
            let _ = e.take(16 * 1024).read_to_string(&mut text);
        }
        text
    });
    let mut reader = BufReader::new(child.stdout.take().ok_or("ssh has no output")?);
    let mut line = Vec::new();
    let mut rows = 0u64;
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => break,
            Ok(_) if line.len() > MAX_LINE => break,
            Ok(_) => {}
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&line);
        let Some(sample) = parse_row(&text, host) else {
            continue;
        };
        rows += 1;
        // Each row is one GPU's reading: admitted one by one, as the API's readings are.
        let admitted = ids.admit(vec![sample], false);
        if let Some(why) = ids.refused() {
            shared.refuse(why);
            break;
        }
        let mut state = shared.lock();
        if admitted.problem.is_some() {
            state.problem = admitted.problem;
        }
        let Some(sample) = admitted.gpus.into_iter().next() else {
            continue;
        };
        // One place per GPU id: the same id at another index replaces its old row.
        let key = super::gpu_key(&sample);
        state
            .gpus
            .retain(|g| g.index == sample.index || super::gpu_key(g) != key);
        match state.gpus.iter_mut().find(|g| g.index == sample.index) {
            Some(slot) => *slot = sample,
            None => {
                state.gpus.push(sample);
                state.gpus.sort_by_key(|g| g.index);
            }
        }
        state.status = HostStatus::Live;
        state.last_reading = Some(Instant::now());
    }
    let _ = child.kill();
    let status = child.wait();
    shared.child.store(0, Ordering::SeqCst);
    let said = errors.join().unwrap_or_default();
    let said = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    if rows > 0 {
        return Ok(());
    }
    // The host's address heads the line wherever this is shown; ssh's own words follow.
    Err(match (said.is_empty(), status) {
        (false, _) => said,
        (true, Ok(s)) => crate::t!("remote-ssh-ended", status = s.to_string()),
        (true, Err(e)) => format!("ssh: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_the_query_becomes_a_sample() {
        // As nvidia-smi 580 prints it for an H100 with these fields and nounits.
        let row = "0, GPU-5b2f0c3e-1111-2222-3333-444455556666, 00000000:19:00.0, NVIDIA H100 80GB HBM3, 2261, 81559, 78790, 37, 4, 34, 71.52, 700.00, 1980, 2619, [N/A]";
        let g = parse_row(row, "box").unwrap();
        assert_eq!(g.index, 0);
        assert_eq!(
            g.uuid.as_deref(),
            Some("GPU-5b2f0c3e-1111-2222-3333-444455556666")
        );
        assert_eq!(g.pci_bus_id.as_deref(), Some("00000000:19:00.0"));
        assert_eq!(g.memory.used, Bytes(2261 * MIB));
        assert_eq!(g.memory.total, Bytes(81559 * MIB));
        assert_eq!(g.power, Some(Watts(71.52)));
        assert_eq!(g.fan, None);
        assert_eq!(g.remote.as_ref().unwrap().host, "box");
    }

    #[test]
    fn real_output_of_the_query_reads_row_by_row() {
        let text = include_str!("../../tests/fixtures/smi/query-h100-580.txt");
        let rows: Vec<GpuSample> = text.lines().filter_map(|l| parse_row(l, "h100")).collect();
        // Every line but the provenance comment is a reading.
        assert_eq!(rows.len(), text.lines().count() - 1, "{text}");
        let g = &rows[0];
        assert_eq!(g.name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.memory.total, Bytes(81_559 * MIB));
        assert_eq!(g.memory.free, Bytes(81_079 * MIB));
        assert_eq!(g.power_limit, Some(Watts(700.0)));
        assert_eq!(g.memory_clock, Some(MegaHertz(2_619)));
        assert_eq!(g.fan, None);
    }

    #[test]
    fn lines_that_are_not_rows_are_skipped() {
        assert!(parse_row("", "h").is_none());
        assert!(
            parse_row(
                "Failed to initialize NVML: Driver/library version mismatch",
                "h"
            )
            .is_none()
        );
        let no_memory = "0, GPU-x, 0:1:0.0, G, [N/A], 8192, 100, 1, 1, 30, 10, 100, 100, 100, 10";
        assert!(parse_row(no_memory, "h").is_none());
    }

    #[test]
    fn the_remote_command_names_each_field_once() {
        let fields: Vec<&str> = FIELDS.split(',').collect();
        let mut unique = fields.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), fields.len());
        assert!(remote_command().ends_with("--format=csv,noheader,nounits -lms 1000"));
    }
}
