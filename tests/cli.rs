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
        #[cfg(unix)]
        let killed_by_sigpipe = {
            use std::os::unix::process::ExitStatusExt;
            out.status.signal() == Some(libc::SIGPIPE)
        };
        #[cfg(not(unix))]
        let killed_by_sigpipe = false;
        let quiet = out.status.success() || killed_by_sigpipe;
        assert!(quiet, "{args:?}: {:?} {stderr}", out.status);
    }
}

/// `vramdeck` with `args` under the locale `lang` (LANG, as a Chinese desktop sets it), with
/// settings in a fresh folder: (stdout, stderr, success).
fn in_locale(lang: &str, args: &[&str]) -> (String, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(args)
        .env("VRAMDECK_CONFIG_DIR", dir.path())
        .env("VRAMDECK_DATA_DIR", dir.path())
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", lang)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.success(),
    )
}

#[test]
fn a_chinese_locale_gets_chinese_help_reports_and_errors_and_json_stays_english() {
    let (help, _, ok) = in_locale("zh_CN.UTF-8", &["--help"]);
    assert!(ok);
    assert!(help.contains("说明现在哪些工作负载预设放得进"), "{help}");
    let (out, err, ok) = in_locale(
        "zh_CN.UTF-8",
        &["advise", "--free-mib", "8000", "--total-mib", "12000"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("假设的显卡") && out.contains("空闲"), "{out}");
    assert!(out.contains("[放得下]") || out.contains("[很紧]"), "{out}");
    let (_, err, ok) = in_locale("zh_CN.UTF-8", &["analyze", "/nonexistent/x.log"]);
    assert!(!ok);
    assert!(err.starts_with("vramdeck："), "{err}");
    // --lang wins over the locale; machine-readable output never follows either.
    let (out, _, ok) = in_locale(
        "zh_CN.UTF-8",
        &[
            "--lang",
            "en",
            "advise",
            "--free-mib",
            "8000",
            "--total-mib",
            "12000",
        ],
    );
    assert!(ok);
    assert!(out.contains("what-if card"), "{out}");
    let (json, err, ok) = in_locale(
        "zh_CN.UTF-8",
        &[
            "analyze",
            "--json",
            "tests/fixtures/logs/comfyui_ddcolor_oom.log",
        ],
    );
    assert!(ok, "{err}");
    assert!(json.contains("\"advice\""), "{json}");
    assert!(
        !json.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{json}"
    );
    // A locale the app does not speak, or C, is English.
    let (out, _, _) = in_locale(
        "de_DE.UTF-8",
        &["advise", "--free-mib", "8000", "--total-mib", "12000"],
    );
    assert!(out.contains("what-if card"), "{out}");
}
