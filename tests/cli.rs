//! The command line as a user types it: options only where they mean something, numbers
//! checked, and a file named on the command line opening in the window.

mod common;
use common::vramdeck;

#[test]
fn demo_is_offered_only_where_it_changes_something() {
    // Commands that read a GPU take it, before or after the command name.
    let (out, err, ok) = vramdeck(&["log", "--demo", "--count", "1"], None);
    assert!(ok, "{err}");
    assert!(out.lines().count() >= 2, "{out}");
    assert!(err.contains("demo mode"), "{err}");
    let (_, err, ok) = vramdeck(&["--demo", "advise", "--workload", "ddcolor"], None);
    assert!(ok, "{err}");
    // Reading a log or listing agents has no GPU to simulate: refused, not ignored.
    let (_, err, ok) = vramdeck(&["analyze", "--demo", "tests/fixtures/x.log"], None);
    assert!(!ok);
    assert!(err.contains("unexpected argument '--demo'"), "{err}");
    let (help, _, _) = vramdeck(&["agents", "--help"], None);
    assert!(!help.contains("--demo"), "{help}");
}

#[test]
fn numbers_out_of_range_are_refused_with_the_range() {
    let (_, err, ok) = vramdeck(&["log", "--demo", "--interval-ms", "0"], None);
    assert!(!ok);
    assert!(err.contains("0 is not in 100..=5000"), "{err}");
    let (_, err, ok) = vramdeck(&["bench", "--demo", "--sample-calls", "0"], None);
    assert!(!ok);
    assert!(err.contains("0 is not in 1.."), "{err}");
    let (_, err, ok) = vramdeck(
        &[
            "advise",
            "--margin",
            "150",
            "--free-mib",
            "1000",
            "--total-mib",
            "2000",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("margin"), "{err}");
}

#[test]
fn help_says_that_no_command_opens_the_window_and_how_to_open_a_log() {
    let (help, _, ok) = vramdeck(&["--help"], None);
    assert!(ok);
    assert!(
        help.contains("Without a subcommand, vramdeck opens its window"),
        "{help}"
    );
    assert!(help.contains("[FILE]"), "{help}");
    assert!(help.contains("--open <FILE>"), "{help}");
}

#[test]
fn a_file_on_the_command_line_goes_to_the_window() {
    // No display in CI: the window cannot open, but the file was taken as one to open (not
    // refused as an unknown command), and a missing file is named before any window opens.
    let (_, err, ok) = vramdeck(&["tests/fixtures/no-such-log.csv"], None);
    assert!(!ok);
    assert!(err.contains("no-such-log.csv"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    let (_, err, ok) = vramdeck(&["--open", "a.csv", "b.csv"], None);
    assert!(!ok);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn output_into_a_pipe_that_closed_ends_quietly() {
    // `vramdeck agents | head`: the reader is gone before vramdeck writes.
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    for args in [&["agents"][..], &["advise", "--demo"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
            .args(args)
            .env("VRAMDECK_CONFIG_DIR", dir.path())
            .env("VRAMDECK_AGENT_DIR", dir.path().join("agents"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let quiet = out.status.success() || out.status.signal() == Some(libc::SIGPIPE);
        assert!(quiet, "{args:?}: {:?} {stderr}", out.status);
    }
}
