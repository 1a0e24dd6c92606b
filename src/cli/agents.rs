//! `vramdeck agents` and `vramdeck free`: the release side, headless. Everything printed that
//! came from an agent or ComfyUI was sanitised when it was decoded (see `text`).

use super::{ComfyArgs, FreeArgs};
use crate::release::FreeLevel;
use crate::release::comfyui::ComfyUi;
use crate::release::discovery::{self, AgentDir};
use crate::release::free::{self, FollowStep, Follower, FreeRequest, FreeTarget};
use crate::units::{Bytes, MemoryUnit};
use std::time::{Duration, Instant};

fn comfy_from(args: &ComfyArgs) -> anyhow::Result<Option<ComfyUi>> {
    if args.comfyui.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    Ok(Some(ComfyUi::parse(&args.comfyui)?))
}

fn bytes(b: Option<u64>) -> String {
    b.map(|b| MemoryUnit::MiB.format(Bytes(b)))
        .unwrap_or_else(|| "n/a".into())
}

/// `vramdeck agents`: one line per agent, then problems and ComfyUI.
pub fn agents_command(args: &ComfyArgs) -> anyhow::Result<()> {
    let dir = AgentDir::from_env();
    let found = discovery::discover(&dir, free::HELLO_TIMEOUT);
    println!("agents in {}:", dir.path().display());
    if found.agents.is_empty() {
        println!("  none running");
    }
    for a in &found.agents {
        let i = &a.info;
        println!(
            "  pid {:>7}  {:<20} {:<24} torch reserved {:>12}  allocated {:>12}  levels {}{}{}",
            i.pid,
            i.process_name,
            i.label.as_deref().unwrap_or("-"),
            bytes(i.reserved),
            bytes(i.allocated),
            i.levels.join(","),
            // An onnxruntime process (FaceFusion) says what it holds on the next line; that
            // it lacks torch is no news there.
            i.torch_missing_reason
                .as_deref()
                .filter(|_| i.onnxruntime.is_none())
                .map(|r| format!("  ({r})"))
                .unwrap_or_default(),
            i.pending
                .as_deref()
                .map(|p| format!("  pending: {p}"))
                .unwrap_or_default()
        );
        if let Some(app) = &i.app {
            let port = app
                .port
                .map(|p| format!(" on port {p}"))
                .unwrap_or_default();
            let models = match (app.models_loaded, app.models_bytes) {
                (Some(n), Some(b)) => format!(
                    ", {} loaded ({})",
                    crate::units::count(n.into(), "model", "models"),
                    bytes(Some(b))
                ),
                (Some(n), None) => format!(
                    ", {} loaded",
                    crate::units::count(n.into(), "model", "models")
                ),
                (None, _) => String::new(),
            };
            println!("           inside {}{port}{models}", app.name);
        }
        if let Some(onnx) = &i.onnxruntime {
            println!("           {}", onnx.summary());
            for session in &onnx.sessions {
                println!("             {}", session.describe());
            }
        }
        if let Some(does) = &i.does {
            for level in [FreeLevel::Cache, FreeLevel::Unload] {
                if let Some(words) = does.get(level) {
                    println!("           {}: {words}", level.as_str());
                }
            }
        }
    }
    for stale in &found.removed_stale {
        println!("  removed stale socket {}", stale.display());
    }
    for problem in &found.problems {
        println!("  problem: {problem}");
    }
    let Some(comfy) = comfy_from(args)? else {
        return Ok(());
    };
    match comfy.system_stats(free::HELLO_TIMEOUT) {
        Ok(stats) => {
            let agent = found.agents.iter().find(|a| free::is_agent_of(a, &comfy));
            for d in stats.devices {
                let memory = if d.has_vram() {
                    format!(
                        "VRAM free {} of {}, torch reserved {}",
                        bytes(Some(d.vram_free)),
                        bytes(Some(d.vram_total)),
                        bytes(Some(d.torch_vram_total))
                    )
                } else {
                    d.describe_kind().to_string()
                };
                println!("ComfyUI at {}: {} — {memory}", comfy.found_at(), d.name);
            }
            match agent {
                Some(a) => println!(
                    "  its vramdeck agent is pid {} above: freed through it (cache and unload)",
                    a.endpoint.pid
                ),
                None => println!(
                    "  no vramdeck agent inside: only `--level unload` can free it (over HTTP)"
                ),
            }
        }
        Err(e) => println!("ComfyUI: {e}"),
    }
    Ok(())
}

/// `vramdeck free`: frees, follows a deferred release (ComfyUI busy with a prompt) until it
/// happened or `--wait` ran out, then prints the measured result.
pub fn free_command(args: &FreeArgs, demo: bool) -> anyhow::Result<()> {
    let target = match args.pid {
        Some(pid) => FreeTarget::Agent(pid),
        None => FreeTarget::All,
    };
    let request = FreeRequest {
        target,
        level: args.level,
        agent_dir: AgentDir::from_env(),
        comfyui: comfy_from(&args.comfy)?,
    };
    let mut probe = crate::telemetry::open_source(demo);
    let mut report = free::perform(&request, &mut probe);
    if !report.pending.is_empty() {
        eprintln!("{}", report.summary());
        let mut follower = Follower::new(report, Duration::from_secs(args.wait));
        let started = Instant::now();
        let mut said = follower.report().summary();
        let mut last_word = Instant::now();
        report = loop {
            match follower.step(&mut probe) {
                FollowStep::Done(done) => break *done,
                FollowStep::Waiting => {
                    // A new state is said at once; the same one only as a short reminder.
                    let now = follower.report().summary();
                    if now != said {
                        eprintln!("{now}");
                        said = now;
                        last_word = Instant::now();
                    } else if last_word.elapsed() >= Duration::from_secs(60) {
                        eprintln!(
                            "… still waiting ({} s; up to {} s with --wait)",
                            started.elapsed().as_secs(),
                            args.wait
                        );
                        last_word = Instant::now();
                    }
                    std::thread::sleep(crate::release::worker::FOLLOW_EVERY);
                }
            }
        };
    }
    for r in &report.results {
        match &r.outcome {
            Ok(freed) if freed.skipped.is_some() => {}
            Ok(freed) => println!(
                "{}: released {}",
                r.target,
                freed
                    .reported
                    .map(|b| MemoryUnit::MiB.format(b))
                    .unwrap_or_else(|| "(not reported)".into())
            ),
            Err(e) => println!("{}: {e}", r.target),
        }
    }
    println!("{}", report.summary());
    let all_failed =
        !report.results.is_empty() && report.results.iter().all(|r| r.outcome.is_err());
    if all_failed {
        anyhow::bail!("no target released memory");
    }
    Ok(())
}
