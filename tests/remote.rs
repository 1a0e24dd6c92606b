//! Remote hosts in the window's source: a real `vramdeck serve` process read over its API
//! (cards, back-fill after a reconnect, stale marking, Free VRAM with the token). The SSH
//! source has its own test binary (tests/remote_ssh.rs).

mod common;

use common::{demo_serve, demo_serve_named, free_port};
use std::time::{Duration, Instant};
use vramdeck::remote::fleet::{Fleet, FleetSource};
use vramdeck::remote::{HostConfig, HostStatus};
use vramdeck::telemetry::GpuSource;

/// GPUs of a demo box (`vramdeck serve --demo`).
const DEMO: usize = 3;

/// A fleet watching the demo serve on `port`, with the token it keeps in `dir`.
fn fleet_with_box(dir: &std::path::Path, port: u16) -> Fleet {
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    let fleet = Fleet::default();
    fleet
        .add(HostConfig {
            address: format!("http://127.0.0.1:{port}"),
            token: Some(token.trim().into()),
        })
        .unwrap();
    fleet
}

/// Samples `source` until `done` holds for the samples (or panics after `seconds`).
fn sample_until(
    source: &mut FleetSource,
    seconds: u64,
    what: &str,
    done: impl Fn(&[vramdeck::telemetry::GpuSample]) -> bool,
) -> Vec<vramdeck::telemetry::GpuSample> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let gpus = source.sample().unwrap();
        if done(&gpus) {
            return gpus;
        }
        assert!(Instant::now() < deadline, "{what}: {gpus:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_serve_host_shows_its_gpus_goes_stale_when_it_stops_and_back_fills_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = demo_serve(dir.path(), port);
    // Let the box collect some history before the window connects.
    std::thread::sleep(Duration::from_secs(2));
    let fleet = fleet_with_box(dir.path(), port);
    let mut source = FleetSource::new(None, "no NVIDIA driver here", fleet.clone());
    let gpus = sample_until(&mut source, 20, "the box's GPUs", |g| {
        g.len() == DEMO && g.iter().all(|g| g.is_current())
    });
    for (slot, g) in gpus.iter().enumerate() {
        assert_eq!(g.index, slot as u32);
        let r = g.remote.as_ref().unwrap();
        assert_eq!(r.host, "gpu-box");
        assert_eq!(g.title(), format!("gpu-box · GPU {}", r.index));
        assert!(g.uuid.is_some());
    }
    // First contact fills history with what the box saw before.
    let first = source.take_backfill();
    assert_eq!(first.len(), DEMO, "{first:?}");
    assert!(first.iter().all(|b| b.points.len() >= 5), "{first:?}");

    // The box stops: after three intervals its cards say stale, and keep their place.
    drop(server);
    let stale = sample_until(&mut source, 20, "stale cards", |g| {
        g.len() == DEMO
            && g.iter()
                .all(|g| g.remote.as_ref().unwrap().stale_seconds.is_some())
    });
    assert!(stale.iter().all(|g| !g.is_current()));
    let (_, state) = fleet.hosts().remove(0);
    // Said in the user's words: nothing answers on that port now.
    assert!(
        matches!(&state.status, HostStatus::Retrying { error, .. }
            if error.starts_with("connection refused: is `vramdeck serve` running")
                || error.starts_with("could not connect")),
        "{:?}",
        state.status
    );

    // It comes back (same token file): live again, and the gap is back-filled.
    server = demo_serve(dir.path(), port);
    std::thread::sleep(Duration::from_secs(2));
    sample_until(&mut source, 40, "live again", |g| {
        g.len() == DEMO && g.iter().all(|g| g.is_current())
    });
    let refill = source.take_backfill();
    assert!(!refill.is_empty(), "no back-fill after the reconnect");
    assert!(refill.iter().all(|b| b.slot < DEMO));
    drop(server);
}

#[test]
fn free_vram_goes_to_the_host_with_its_token_and_a_wrong_token_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = demo_serve(dir.path(), port);
    let fleet = fleet_with_box(dir.path(), port);
    let mut source = FleetSource::new(None, "test", fleet.clone());
    sample_until(&mut source, 20, "connected", |g| g.len() == DEMO);
    // Two hosts may call themselves the same: Free VRAM goes by the address added.
    fleet.free(
        &format!("http://127.0.0.1:{port}"),
        vramdeck::release::FreeLevel::Cache,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = loop {
        let (_, state) = fleet.hosts().remove(0);
        if let Some(free) = state.free.filter(|f| !f.running) {
            break free;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    };
    // No agent on the box: the box's own words come back.
    assert_eq!(outcome.outcome.as_deref(), Some("nothing"), "{outcome:?}");
    assert!(outcome.summary.unwrap().starts_with("Nothing to free"));

    let wrong = Fleet::default();
    wrong
        .add(HostConfig {
            address: format!("http://127.0.0.1:{port}"),
            token: Some("0".repeat(64)),
        })
        .unwrap();
    wrong.free(
        &format!("http://127.0.0.1:{port}"),
        vramdeck::release::FreeLevel::Cache,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, state) = wrong.hosts().remove(0);
        if let Some(free) = state.free.filter(|f| !f.running) {
            assert_eq!(free.outcome.as_deref(), Some("failed"));
            assert!(free.summary.unwrap().contains("the token was refused"));
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn removing_a_host_removes_its_cards_and_their_history_places() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = demo_serve(dir.path(), port);
    let fleet = fleet_with_box(dir.path(), port);
    let address = format!("http://127.0.0.1:{port}");
    assert!(
        fleet
            .add(HostConfig {
                address: address.clone(),
                token: None
            })
            .is_err()
    );
    let local = vramdeck::telemetry::sim::SimulatedGpus::demo("test");
    let mut source = FleetSource::new(Some(Box::new(local)), "", fleet.clone());
    let gpus = sample_until(&mut source, 20, "local and remote", |g| g.len() == 2 * DEMO);
    assert!(gpus[..DEMO].iter().all(|g| g.remote.is_none()));
    assert!(gpus[DEMO..].iter().all(|g| g.remote.is_some()));
    fleet.remove(&address);
    let gpus = source.sample().unwrap();
    assert_eq!(gpus.len(), DEMO);
    assert_eq!(source.take_removed(), vec![5, 4, 3]);
}

#[test]
fn two_hosts_side_by_side_keep_their_own_cards_and_one_leaves_cleanly() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let _a = demo_serve_named(dir_a.path(), port_a, "box-a");
    let _b = demo_serve_named(dir_b.path(), port_b, "box-b");
    let fleet = fleet_with_box(dir_a.path(), port_a);
    let token_b = std::fs::read_to_string(dir_b.path().join("token")).unwrap();
    fleet
        .add(HostConfig {
            address: format!("http://127.0.0.1:{port_b}"),
            token: Some(token_b.trim().into()),
        })
        .unwrap();
    let local = vramdeck::telemetry::sim::SimulatedGpus::demo("test");
    let mut source = FleetSource::new(Some(Box::new(local)), "", fleet.clone());
    let gpus = sample_until(&mut source, 20, "local, box-a and box-b", |g| {
        g.len() == 3 * DEMO && g.iter().all(|g| g.is_current())
    });
    let titles: Vec<String> = gpus.iter().map(|g| g.title()).collect();
    for expected in [
        "GPU 0",
        "GPU 1",
        "box-a · GPU 0",
        "box-a · GPU 1",
        "box-b · GPU 0",
        "box-b · GPU 1",
        "box-b · GPU 2",
    ] {
        assert!(titles.iter().any(|t| t == expected), "{titles:?}");
    }
    // Each host's GPUs are where that host's cards are, whichever answered first.
    let first_a = titles.iter().position(|t| t.starts_with("box-a")).unwrap();
    fleet.remove(&format!("http://127.0.0.1:{port_a}"));
    let gpus = source.sample().unwrap();
    assert_eq!(gpus.len(), 2 * DEMO);
    assert!(gpus.iter().all(|g| !g.title().starts_with("box-a")));
    assert_eq!(
        gpus.iter()
            .filter(|g| g.title().starts_with("box-b"))
            .count(),
        DEMO
    );
    // Places are renumbered from 0 with no gap, and the sampler is told which places went.
    assert!(gpus.iter().enumerate().all(|(i, g)| g.index == i as u32));
    assert_eq!(
        source.take_removed(),
        (first_a..first_a + DEMO).rev().collect::<Vec<_>>()
    );
}

#[test]
fn two_hosts_of_one_name_each_get_only_their_own_free_vram() {
    // The attack review: Free VRAM picked its host by display name, so two hosts calling
    // themselves the same shared every click.
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let _a = demo_serve_named(dir_a.path(), port_a, "gpu-box");
    let _b = demo_serve_named(dir_b.path(), port_b, "gpu-box");
    let fleet = fleet_with_box(dir_a.path(), port_a);
    let token_b = std::fs::read_to_string(dir_b.path().join("token")).unwrap();
    let address_b = format!("http://127.0.0.1:{port_b}");
    fleet
        .add(HostConfig {
            address: address_b.clone(),
            token: Some(token_b.trim().into()),
        })
        .unwrap();
    let mut source = FleetSource::new(None, "test", fleet.clone());
    let gpus = sample_until(&mut source, 20, "both hosts", |g| g.len() == 2 * DEMO);
    // The card of B's first GPU names B's address: that is what its button frees.
    let b_card = gpus
        .iter()
        .find(|g| g.remote.as_ref().unwrap().address == address_b)
        .unwrap();
    fleet.free(
        &b_card.remote.as_ref().unwrap().address,
        vramdeck::release::FreeLevel::Cache,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hosts = fleet.hosts();
        let (a, b) = (&hosts[0].1, &hosts[1].1);
        assert!(a.free.is_none(), "A was freed too: {:?}", a.free);
        if b.free.as_ref().is_some_and(|f| !f.running) {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
}
