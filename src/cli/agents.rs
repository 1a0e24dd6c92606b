//! `vramdeck agents` and `vramdeck free`: the release side, headless. Everything printed that
//! came from an agent or ComfyUI was sanitised when it was decoded (see `text`).

use super::{ComfyArgs, FreeArgs};
use crate::release::FreeLevel;
use crate::release::comfyui::ComfyUi;
use crate::release::discovery::{self, AgentDir};
use crate::release::engines::EngineStatus;
use crate::release::free::{self, FollowStep, Follower, FreeRequest, FreeTarget};
use crate::units::{Bytes, MemoryUnit};
use std::time::{Duration, Instant};

fn comfy_from(args: &ComfyArgs) -> anyhow::Result<Option<ComfyUi>> {
    if args.comfyui.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    Ok(Some(ComfyUi::parse(&args.comfyui)?))
}

/// Ollama and the SD WebUI as the options name them; an unusable address is an error here
/// (the user typed it).
fn apps_from(args: &ComfyArgs) -> anyhow::Result<Vec<crate::release::engines::EngineHandle>> {
    let (apps, problems) =
        crate::release::engines::configured(&args.ollama, &args.a1111, &args.engines);
    match problems.into_iter().next() {
        Some(p) => anyhow::bail!(p),
        None => Ok(apps),
    }
}

fn bytes(b: Option<u64>) -> String {
    b.map(|b| MemoryUnit::MiB.format(Bytes(b)))
        .unwrap_or_else(|| "n/a".into())
}

/// `vramdeck agents`: one line per agent, then problems and ComfyUI.
pub fn agents_command(args: &ComfyArgs) -> anyhow::Result<()> {
    let dir = AgentDir::from_env();
    let found = discovery::discover(&dir, free::HELLO_TIMEOUT);
    println!(
        "{}",
        crate::t!("agents-in", dir = dir.path().display().to_string())
    );
    if found.agents.is_empty() {
        println!("  {}", crate::t!("agents-none"));
    }
    for a in &found.agents {
        let i = &a.info;
        println!(
            "  pid {:>7}  {:<20} {:<24} {} {:>12}  {} {:>12}  {} {}{}{}",
            i.pid,
            i.process_name,
            i.label.as_deref().unwrap_or("-"),
            crate::t!("agents-reserved"),
            bytes(i.reserved),
            crate::t!("agents-allocated"),
            bytes(i.allocated),
            crate::t!("agents-levels"),
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
                .map(|p| format!("  {}", crate::t!("agents-pending", what = p)))
                .unwrap_or_default()
        );
        if let Some(app) = &i.app {
            let port = app
                .port
                .map(|p| format!(" {}", crate::t!("agents-on-port", port = p.to_string())))
                .unwrap_or_default();
            let loaded = |n: u32| {
                crate::t!(
                    "agents-models-loaded",
                    count = n,
                    n = crate::units::group_thousands(n.into())
                )
            };
            let models = match (app.models_loaded, app.models_bytes) {
                (Some(n), Some(b)) => format!(", {} ({})", loaded(n), bytes(Some(b))),
                (Some(n), None) => format!(", {}", loaded(n)),
                (None, _) => String::new(),
            };
            println!(
                "           {}{port}{models}",
                crate::t!("agents-inside", app = app.name.clone())
            );
        }
        if let Some(oom) = &i.oom {
            println!(
                "           {}",
                crate::t!(
                    "agents-oom",
                    message = oom.message.clone(),
                    allocated = bytes(oom.allocated),
                    reserved = bytes(oom.reserved),
                    free = bytes(oom.free)
                )
            );
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
        println!(
            "  {}",
            crate::t!("agents-removed-stale", path = stale.display().to_string())
        );
    }
    for problem in &found.problems {
        println!(
            "  {}",
            crate::t!("agents-problem", what = problem.to_string())
        );
    }
    let engines: Vec<EngineStatus> = apps_from(args)?.iter().filter_map(print_app).collect();
    let Some(comfy) = comfy_from(args)? else {
        print_holders(&found, &engines, None);
        return Ok(());
    };
    print_holders(&found, &engines, comfy.listener_pid());
    match comfy.system_stats(free::HELLO_TIMEOUT) {
        Ok(stats) => {
            let agent = found.agents.iter().find(|a| free::is_agent_of(a, &comfy));
            for d in stats.devices {
                let memory = if d.has_vram() {
                    crate::t!(
                        "agents-comfy-vram",
                        free = bytes(Some(d.vram_free)),
                        total = bytes(Some(d.vram_total)),
                        reserved = bytes(Some(d.torch_vram_total))
                    )
                } else {
                    d.describe_kind().to_string()
                };
                println!(
                    "{}",
                    crate::t!(
                        "agents-comfy-device",
                        address = comfy.found_at().to_string(),
                        name = d.name.clone(),
                        memory = memory
                    )
                );
            }
            match agent {
                Some(a) => println!(
                    "  {}",
                    crate::t!("agents-comfy-agent", pid = a.endpoint.pid.to_string())
                ),
                None => println!("  {}", crate::t!("agents-comfy-no-agent")),
            }
        }
        Err(e) => println!("ComfyUI: {e}"),
    }
    Ok(())
}

/// One engine: where it answers (and its process), what it holds (VRAM and host memory per
/// model where it says), whether it works or sleeps, what each level does there; silent when
/// it is not running (or another program answers at its default port).
fn print_app(app: &crate::release::engines::EngineHandle) -> Option<EngineStatus> {
    let status = match app.look() {
        Ok(s) => s,
        Err(e) if crate::release::engines::not_there(&e) => return None,
        Err(e) => {
            println!("{e}");
            return None;
        }
    };
    let mut line = status.target.clone();
    if let Some(pid) = status.pid {
        line.push_str(&format!(" (pid {pid})"));
    }
    if let Some(b) = status.busy.as_deref() {
        line.push_str(&format!("  {}", crate::t!("agents-app-busy", job = b)));
    }
    if status.asleep {
        line.push_str(&format!("  [{}]", crate::t!("engine-already-asleep")));
    }
    println!("{line}");
    if status.holds.is_empty() {
        println!("  {}", crate::t!("app-nothing-loaded"));
    }
    for h in &status.holds {
        // An engine that does not say what a model holds: its processes below do.
        if h.vram == 0 && h.host == 0 {
            println!("  {}", h.what);
            continue;
        }
        println!(
            "  {}",
            crate::t!(
                "agents-app-holds",
                what = h.what.clone(),
                vram = bytes(Some(h.vram)),
                host = bytes(Some(h.host))
            )
        );
    }
    if let Some(note) = &status.note {
        println!("  {note}");
    }
    println!("  {}", status.kind.levels());
    Some(status)
}

/// Every process holding GPU memory and the app it belongs to (NVML; nothing in demo mode).
fn print_holders(found: &discovery::Discovery, engines: &[EngineStatus], comfy_pid: Option<u32>) {
    let mut source = crate::telemetry::open_source(false);
    if source.kind().is_simulated() {
        return;
    }
    let Ok(gpus) = source.sample() else { return };
    let owners = crate::release::holders::Owners::now(&found.agents, engines, comfy_pid);
    println!("{}", crate::t!("agents-holders"));
    for g in &gpus {
        for p in &g.processes {
            println!(
                "  GPU {} pid {:>7}  {:<20} {:>12}  {}",
                g.index,
                p.pid,
                p.name.chars().take(20).collect::<String>(),
                bytes(p.used.map(|b| b.0)),
                owners.describe(p.pid, &p.name)
            );
        }
    }
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
        apps: apps_from(&args.comfy)?,
        keep: Vec::new(),
        only_pids: None,
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
                            "{}",
                            crate::t!(
                                "free-still-waiting",
                                seconds = started.elapsed().as_secs().to_string(),
                                wait = args.wait.to_string()
                            )
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
            // Gave nothing back: the summary says why, once.
            Ok(freed) if freed.reported.is_none_or(|b| b.0 == 0) && !freed.notes.is_empty() => {}
            Ok(freed) => println!(
                "{}",
                crate::t!(
                    "free-target-released",
                    target = r.target.clone(),
                    amount = freed
                        .reported
                        .map(|b| MemoryUnit::MiB.format(b))
                        .unwrap_or_else(|| crate::t!("free-not-reported"))
                )
            ),
            Err(e) => println!("{}: {e}", r.target),
        }
    }
    println!("{}", report.summary_after_targets());
    let all_failed =
        !report.results.is_empty() && report.results.iter().all(|r| r.outcome.is_err());
    if all_failed {
        anyhow::bail!(crate::t!("free-none-released"));
    }
    Ok(())
}
