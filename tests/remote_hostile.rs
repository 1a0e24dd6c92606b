//! Hostile remote hosts (the second attack review): an impostor `vramdeck serve` on loopback
//! (tests/fixtures/hostile_serve.py) naming thousands of GPUs, fresh GPU ids on every poll,
//! timestamps decades away, and a flapping host answering 27 MB of history. The window must
//! stay small, keep sampling this machine's GPUs at its pace, and say what it left out. The
//! SSH path's hostile nvidia-smi is in tests/remote_ssh.rs.

mod common;

use common::{Process, python_fixture};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use vramdeck::remote::bounds::MAX_GPUS_PER_HOST;
use vramdeck::remote::fleet::{Fleet, FleetSource};
use vramdeck::remote::{HostConfig, HostState, HostStatus};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{self, Sampler};
use vramdeck::telemetry::sim::SimulatedGpus;

/// The hostile serve in `mode`; its address.
fn hostile(mode: &str) -> (Process, String) {
    let (process, port) = python_fixture("hostile_serve.py", &[mode], None);
    (process, format!("http://127.0.0.1:{port}"))
}

fn add(fleet: &Fleet, address: &str) {
    fleet
        .add(HostConfig {
            address: address.into(),
            token: Some("0".repeat(64)),
        })
        .unwrap();
}

/// The demo's GPUs on this machine.
const LOCAL: usize = 3;

/// This machine's (simulated) GPUs and `fleet`, sampled every 200 ms as the window does;
/// also counts the readings.
fn window_sampler(fleet: &Fleet) -> (Sampler, Arc<AtomicUsize>) {
    let local = SimulatedGpus::demo("test");
    let source = FleetSource::new(Some(Box::new(local)), "", fleet.clone());
    let readings = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&readings);
    let sampler = Sampler::spawn(
        Box::new(source),
        Duration::from_millis(200),
        HistoryConfig::default(),
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
        },
    );
    (sampler, readings)
}

fn state_of(fleet: &Fleet, address: &str) -> HostState {
    fleet
        .hosts()
        .into_iter()
        .find(|(c, _)| c.address == address)
        .unwrap()
        .1
}

/// Waits up to 30 s for `done` on the host's state.
fn wait_for(fleet: &Fleet, address: &str, what: &str, done: impl Fn(&HostState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = state_of(fleet, address);
        if done(&state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {:?} {:?}",
            state.status,
            state.problem
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// GPUs in the newest reading, and the most any reading had, over `seconds`.
fn watch(sampler: &Sampler, seconds: u64) -> (usize, usize) {
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut now = 0;
    while Instant::now() < until {
        now = sampler::lock(&sampler.telemetry())
            .latest
            .as_ref()
            .map_or(0, |s| s.gpus.len());
        most = most.max(now);
        std::thread::sleep(Duration::from_millis(50));
    }
    (now, most)
}

#[test]
fn a_host_naming_thousands_of_gpus_gets_places_for_sixty_four_and_local_gpus_keep_their_pace() {
    let (_many, many) = hostile("many:5000");
    let (_huge, huge) = hostile("many:20000");
    let fleet = Fleet::default();
    add(&fleet, &many);
    add(&fleet, &huge);
    let (sampler, readings) = window_sampler(&fleet);
    wait_for(&fleet, &many, "the cap said", |s| s.problem.is_some());
    let said = state_of(&fleet, &many).problem.unwrap();
    assert!(said.contains("more than 64 GPUs"), "{said}");
    // 20,000 GPUs are a 12 MB snapshot: more than a real box sends, refused before parsing.
    wait_for(
        &fleet,
        &huge,
        "the size refused",
        |s| matches!(&s.status, HostStatus::Retrying { error, .. } if error.contains("larger than")),
    );
    let before = readings.load(Ordering::SeqCst);
    let (now, most) = watch(&sampler, 5);
    let during = readings.load(Ordering::SeqCst) - before;
    assert_eq!(now, LOCAL + MAX_GPUS_PER_HOST);
    assert_eq!(most, LOCAL + MAX_GPUS_PER_HOST);
    // 25 readings are due in 5 s at 200 ms: this machine's GPUs are not held up.
    assert!(during >= 15, "only {during} readings in 5 s");
    let rss = resident_mib();
    assert!(rss < 500.0, "{rss:.0} MiB resident");
}

#[test]
fn fresh_gpu_ids_on_every_poll_refuse_the_host_and_nothing_of_it_is_kept() {
    let (_churn, churn) = hostile("churn");
    let fleet = Fleet::default();
    add(&fleet, &churn);
    let (sampler, _) = window_sampler(&fleet);
    wait_for(&fleet, &churn, "refused", |s| {
        matches!(s.status, HostStatus::Refused(_))
    });
    let HostStatus::Refused(why) = state_of(&fleet, &churn).status else {
        unreachable!()
    };
    assert!(why.contains("named its GPUs anew"), "{why}");
    let (now, most) = watch(&sampler, 2);
    assert_eq!(now, LOCAL, "the refused host's places are gone");
    assert!(most <= LOCAL + MAX_GPUS_PER_HOST, "{most}");
    let history_gpus = sampler::lock(&sampler.telemetry()).history.gpu_count();
    assert_eq!(history_gpus, LOCAL);
    let rss = resident_mib();
    assert!(rss < 500.0, "{rss:.0} MiB resident");
}

#[test]
fn long_ids_at_fresh_indices_refuse_the_host_and_the_window_stays_flat_for_a_minute() {
    // The third review's attack: the same 64 ids of 60,000 characters at fresh indices on
    // every poll grew the window by 7.5 MB/s; beside it a host keeping its long ids in place.
    let (_reindex, reindex) = hostile("reindex");
    let (_long, long) = hostile("longids");
    let fleet = Fleet::default();
    add(&fleet, &reindex);
    add(&fleet, &long);
    let (sampler, _) = window_sampler(&fleet);
    wait_for(&fleet, &reindex, "refused", |s| {
        matches!(s.status, HostStatus::Refused(_))
    });
    wait_for(&fleet, &long, "live", |s| s.gpus.len() == MAX_GPUS_PER_HOST);
    let ids: Vec<usize> = state_of(&fleet, &long)
        .gpus
        .iter()
        .map(|g| g.uuid.as_ref().map_or(0, String::len))
        .collect();
    assert!(
        ids.iter()
            .all(|&n| n <= vramdeck::remote::bounds::MAX_ID_CHARS),
        "{ids:?}"
    );
    std::thread::sleep(Duration::from_secs(5));
    let settled = resident_mib();
    let (now, most) = watch(&sampler, 55);
    let grown = resident_mib() - settled;
    assert_eq!(now, LOCAL + MAX_GPUS_PER_HOST, "the well-placed host stays");
    assert!(most <= LOCAL + MAX_GPUS_PER_HOST, "{most}");
    // Before the fix: 7.5 MB/s, over 400 MB in this minute.
    assert!(grown < 24.0, "the window grew {grown:.1} MiB in 55 s");
}

#[test]
fn readings_dated_decades_away_are_dropped_and_the_plot_keeps_moving() {
    let (_future, future) = hostile("future");
    let fleet = Fleet::default();
    add(&fleet, &future);
    let (sampler, _) = window_sampler(&fleet);
    wait_for(&fleet, &future, "live", |s| s.status == HostStatus::Live);
    std::thread::sleep(Duration::from_secs(2));
    let now = vramdeck::telemetry::unix_seconds(SystemTime::now());
    let telemetry = sampler.telemetry();
    let t = sampler::lock(&telemetry);
    assert_eq!(t.history.gpu_count(), LOCAL + 1);
    let points = t.history.readings(2, now - 86_400.0 * 400.0, f64::MAX);
    assert!(!points.is_empty());
    let newest = points.iter().map(|p| p.0).fold(f64::MIN, f64::max);
    let oldest = points.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    // Neither the 2096 back-fill nor -1e308 got in: the remote plot runs on today's time.
    assert!(newest <= now + 60.0, "{newest} > {now}");
    assert!(oldest >= now - 86_400.0 - 120.0, "{oldest}");
}

#[test]
fn a_flapping_host_sending_huge_history_costs_a_bounded_read_each_time() {
    let (_flap, flap) = hostile("flapping");
    let fleet = Fleet::default();
    add(&fleet, &flap);
    let (sampler, readings) = window_sampler(&fleet);
    wait_for(&fleet, &flap, "live", |s| s.status == HostStatus::Live);
    let before = readings.load(Ordering::SeqCst);
    let (now, _) = watch(&sampler, 5);
    assert_eq!(now, LOCAL + 1);
    assert!(readings.load(Ordering::SeqCst) - before >= 15);
    // Each reconnect asks for the gap only and reads no more than the gap can hold: the 27 MB
    // answer is never taken in (it would be about 600,000 points of back-fill).
    let telemetry = sampler.telemetry();
    let t = sampler::lock(&telemetry);
    let now = vramdeck::telemetry::unix_seconds(SystemTime::now());
    let kept = t.history.readings(2, now - 3600.0, now + 60.0).len();
    assert!(kept < 1_000, "{kept} points kept");
    drop(t);
    let rss = resident_mib();
    assert!(rss < 500.0, "{rss:.0} MiB resident");
}
