//! The SSH source against a real sshd on loopback running a stand-in nvidia-smi, read through
//! the system ssh client. A test binary of its own with one test: it sets an environment
//! variable, which must not race with other threads starting processes.

mod common;

use common::{Process, free_port};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vramdeck::remote::fleet::{Fleet, FleetSource};
use vramdeck::remote::{HostConfig, HostStatus};
use vramdeck::telemetry::GpuSource;

/// A throwaway sshd on loopback, as root or as this user, with a fresh host key, one
/// authorised key, and the stand-in nvidia-smi first on the PATH of its sessions.
struct Sshd {
    _process: Process,
    config: std::path::PathBuf,
}

fn sshd(dir: &Path) -> Sshd {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test needs a real sshd: apt-get install openssh-server (tests/run-all.sh does it)");
    let keygen = |path: &Path| {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    keygen(&dir.join("host_key"));
    keygen(&dir.join("user_key"));
    keygen(&dir.join("other_key"));
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(common::fixture("fake-nvidia-smi"), bin.join("nvidia-smi")).unwrap();
    // Privilege separation wants this directory when sshd starts as root.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             SetEnv PATH={d}/bin:/usr/bin:/bin FAKE_SMI_ARGS={d}/smi-args\n\
             AcceptEnv FAKE_SMI_MODE\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let process = Process(
        Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_for_port(port, "sshd");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let config = dir.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host gpu-box\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {d}/user_key\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n\
             Host hostile-box\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {d}/user_key\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  \
             SetEnv FAKE_SMI_MODE=churn\n\
             Host wrong-key\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {d}/other_key\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n",
            d = dir.display()
        ),
    )
    .unwrap();
    Sshd {
        _process: process,
        config,
    }
}

#[test]
fn a_box_with_only_nvidia_smi_is_read_over_a_real_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let sshd = sshd(dir.path());
    // SAFETY: the only test of this binary, and no other thread runs yet.
    unsafe { std::env::set_var("VRAMDECK_SSH_CONFIG", &sshd.config) };
    let fleet = Fleet::default();
    fleet
        .add(HostConfig {
            address: "ssh gpu-box".into(),
            token: None,
        })
        .unwrap();
    let mut source = FleetSource::new(None, "test", fleet.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let gpus = loop {
        let gpus = source.sample().unwrap();
        if gpus.len() == 2 && gpus.iter().all(|g| g.is_current()) {
            break gpus;
        }
        assert!(Instant::now() < deadline, "{:?}", fleet.hosts()[0].1.status);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
    assert_eq!(gpus[0].title(), "gpu-box · GPU 0");
    assert_eq!(gpus[1].memory.used.mib(), 597.0);
    assert_eq!(gpus[0].pci_bus_id.as_deref(), Some("00000000:19:00.0"));
    let args = std::fs::read_to_string(dir.path().join("smi-args")).unwrap();
    assert!(
        args.contains("--format=csv,noheader,nounits -lms 1000"),
        "{args}"
    );
    // Readings keep coming (the fake adds 1 MiB per interval).
    let before = gpus[0].memory.used.mib();
    let deadline = Instant::now() + Duration::from_secs(10);
    while source.sample().unwrap()[0].memory.used.mib() <= before {
        assert!(Instant::now() < deadline, "no newer reading");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A compromised box whose nvidia-smi names every GPU anew on every row: refused, its
    // places never more than a box can have, nothing of it kept.
    let hostile = Fleet::default();
    hostile
        .add(HostConfig {
            address: "ssh hostile-box".into(),
            token: None,
        })
        .unwrap();
    let mut hostile_source = FleetSource::new(None, "test", hostile.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    loop {
        most = most.max(hostile_source.sample().unwrap().len());
        let (_, state) = hostile.hosts().remove(0);
        if let HostStatus::Refused(why) = &state.status {
            assert!(why.contains("named its GPUs anew"), "{why}");
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", state.status);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        most <= vramdeck::remote::bounds::MAX_GPUS_PER_HOST,
        "{most}"
    );
    assert!(hostile_source.sample().unwrap().is_empty());

    // A host that refuses the key: the ssh client's own words, and no cards.
    let refused = Fleet::default();
    refused
        .add(HostConfig {
            address: "ssh wrong-key".into(),
            token: None,
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, state) = refused.hosts().remove(0);
        if let HostStatus::Retrying { error, .. } = &state.status {
            assert!(error.contains("Permission denied"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", state.status);
        std::thread::sleep(Duration::from_millis(100));
    }
}
