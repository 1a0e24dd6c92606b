//! `vramdeck serve`: the headless sampler on a GPU box, answering Prometheus (`/metrics`, in
//! dcgm-exporter's names) and the desktop app (`/api/v1/…`), with Free VRAM relayed to the
//! box's own agents and ComfyUI. No window code runs here: the binary starts on a box without
//! GL or X libraries (they are only loaded when a window opens).

mod http;
pub mod metrics;
mod state;
pub mod token;

use crate::release::discovery::AgentDir;
use crate::release::free::TelemetryProbe;
use crate::release::worker::ReleaseWorker;
use crate::telemetry::history::HistoryConfig;
use crate::telemetry::sampler::Sampler;
use clap::Args;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use state::ServeState;

/// The port dcgm-exporter uses is 9400; ours is next to it so both can run on one box.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9401";

/// Options of `vramdeck serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on. Anything but loopback exposes the box to the network:
    /// every request then needs the token; put TLS in front (README: reverse proxy or SSH).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Milliseconds between readings, 100 to 5000.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(100..=5_000))]
    pub interval_ms: u64,
    /// The token file (made, 0600, on first start).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// No token at all: /metrics only (the JSON API and every action are off). Refused
    /// unless listening on loopback.
    #[arg(long)]
    pub no_token: bool,
    /// Let /metrics be read without the token on loopback (Prometheus convention), so a
    /// scraper needs no credentials; everyone on this machine can then read the metrics.
    /// The JSON API keeps needing the token. Refused off loopback.
    #[arg(long)]
    pub metrics_without_token: bool,
    /// Another name this server answers to (repeatable): the public name a reverse proxy
    /// forwards in the Host header. Requests for any other name get 421, which keeps
    /// DNS-rebinding web pages out. IP addresses, localhost and this box's hostname are
    /// always answered.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Turn every action (Free VRAM) off; readings and metrics only.
    #[arg(long)]
    pub readonly: bool,
    /// The name this box goes by in metrics and on the desktop's cards (default: hostname).
    #[arg(long)]
    pub name: Option<String>,
    /// Where ComfyUI listens on this box (loopback only); "none" to leave it alone.
    #[arg(long, default_value = crate::release::comfyui::DEFAULT_ADDRESS)]
    pub comfyui: String,
    /// Where Ollama listens (loopback only; "none": leave it alone).
    #[arg(long, default_value = "localhost")]
    pub ollama: String,
    /// Where Stable Diffusion WebUI / Forge listens with --api (loopback only; "none": leave
    /// it alone).
    #[arg(long, default_value = "localhost")]
    pub a1111: String,
    /// The other engines: "auto" (each at its default ports), "none", or
    /// "vllm=127.0.0.1:8001,llama-server=localhost:8081".
    #[arg(long, default_value = "auto")]
    pub engines: String,
    /// When an app on this box asks for room before a job (vramdeck_agent.need): off, caches
    /// (empty the other apps' caches) or models (then their idle models too).
    #[arg(long, value_enum, default_value_t = crate::release::arbiter::RoomPolicy::Off)]
    pub make_room: crate::release::arbiter::RoomPolicy,
    /// An app never freed to make room for another ("Ollama", "ComfyUI", an agent's label);
    /// repeat for several.
    #[arg(long, value_name = "APP")]
    pub make_room_keep: Vec<String>,
    /// What is done when one app asks, instead of --make-room: APP=off|caches|models;
    /// repeat for several.
    #[arg(long, value_name = "APP=POLICY", value_parser = room_for_app)]
    pub make_room_for: Vec<(String, crate::release::arbiter::RoomPolicy)>,
    /// Leave engines put to sleep to make room (vLLM, SGLang) asleep when the job that asked
    /// has ended, instead of waking them.
    #[arg(long)]
    pub no_hand_back: bool,
    /// Print the token (to set up a client) and exit.
    #[arg(long)]
    pub print_token: bool,
    #[command(flatten)]
    pub demo: crate::cli::DemoArg,
}

/// How the server guards itself, decided from the arguments before anything listens.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// The bearer token; `None` with `--no-token` (then only /metrics is served).
    pub token: Option<String>,
    /// /metrics needs the token too (everywhere unless `--metrics-without-token` or
    /// `--no-token` on loopback).
    pub metrics_need_token: bool,
    /// Actions are off.
    pub readonly: bool,
    /// Names (besides IP addresses and localhost) the Host header may carry.
    pub host_names: Vec<String>,
}

/// Decides the policy: the token guards the JSON API and actions on every interface; /metrics
/// may go without it on loopback only, when asked.
pub fn policy(args: &ServeArgs) -> anyhow::Result<Policy> {
    let loopback = args.listen.ip().is_loopback();
    if args.no_token && !loopback {
        anyhow::bail!(
            "refusing to listen on {} without a token: anyone who can reach this address \
             would read the box and its processes. Drop --no-token (the token is then \
             required for every request), or listen on 127.0.0.1 and reach it over SSH \
             (ssh -L 9401:127.0.0.1:9401 box)",
            args.listen
        );
    }
    if args.metrics_without_token && !loopback {
        anyhow::bail!(
            "refusing --metrics-without-token on {}: off loopback every request needs the \
             token (Prometheus sends it with `authorization: {{credentials_file: …}}`)",
            args.listen
        );
    }
    let token = if args.no_token {
        None
    } else {
        let path = args
            .token_file
            .clone()
            .or_else(token::default_path)
            .ok_or_else(|| {
                anyhow::anyhow!("no config directory for the token; pass --token-file")
            })?;
        Some(token::load_or_create(&path)?)
    };
    let mut host_names = vec![host_name(None)];
    host_names.extend(args.name.iter().cloned());
    host_names.extend(args.allow_hosts.iter().cloned());
    Ok(Policy {
        metrics_need_token: !(args.metrics_without_token || args.no_token),
        readonly: args.readonly || token.is_none(),
        token,
        host_names: host_names
            .iter()
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect(),
    })
}

/// `--make-room-for APP=POLICY`.
fn room_for_app(text: &str) -> Result<(String, crate::release::arbiter::RoomPolicy), String> {
    use clap::ValueEnum;
    let (app, policy) = text
        .rsplit_once('=')
        .filter(|(app, _)| !app.trim().is_empty())
        .ok_or_else(|| crate::t!("serve-room-for-form"))?;
    let policy = crate::release::arbiter::RoomPolicy::from_str(policy.trim(), true)
        .map_err(|_| crate::t!("serve-room-for-form"))?;
    Ok((app.trim().to_string(), policy))
}

/// The box's name: `--name`, else the kernel's hostname.
pub fn host_name(given: Option<&str>) -> String {
    if let Some(name) = given {
        return crate::text::sanitized(name);
    }
    match crate::platform::process::host_name() {
        Some(name) => crate::text::sanitized(&name),
        None => "localhost".into(),
    }
}

/// `vramdeck serve`.
pub fn serve_command(args: &ServeArgs, demo: bool) -> anyhow::Result<()> {
    let policy = policy(args)?;
    if args.make_room == crate::release::arbiter::RoomPolicy::Ask
        || args
            .make_room_for
            .iter()
            .any(|(_, p)| *p == crate::release::arbiter::RoomPolicy::Ask)
    {
        anyhow::bail!(crate::t!("serve-ask-needs-window"));
    }
    if args.print_token {
        match &policy.token {
            Some(t) => println!("{t}"),
            None => anyhow::bail!("--no-token: there is no token"),
        }
        return Ok(());
    }
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let host = host_name(args.name.as_deref());
    let source = crate::telemetry::open_source(demo);
    let kind = source.kind();
    let sampler = Sampler::spawn(
        source,
        Duration::from_millis(args.interval_ms),
        HistoryConfig::default(),
        || {},
    );
    let telemetry = sampler.telemetry();
    let worker = ReleaseWorker::spawn(
        AgentDir::from_env(),
        args.comfyui.clone(),
        Box::new(TelemetryProbe(telemetry.clone())),
        || {},
    );
    worker.send(crate::release::worker::WorkerCommand::SetAppAddresses {
        ollama: args.ollama.clone(),
        a1111: args.a1111.clone(),
        engines: args.engines.clone(),
    });
    // A read-only box frees nothing, for anyone.
    if !args.readonly {
        worker.send(crate::release::worker::WorkerCommand::SetRoomKeep(
            args.make_room_keep.clone(),
        ));
        worker.send(crate::release::worker::WorkerCommand::SetHandBack(
            !args.no_hand_back,
        ));
        worker.send(crate::release::worker::WorkerCommand::SetRoomPolicyByApp(
            args.make_room_for.iter().cloned().collect(),
        ));
        worker.send(crate::release::worker::WorkerCommand::SetRoomPolicy(
            args.make_room,
        ));
    }
    let state = Arc::new(ServeState::new(
        host.clone(),
        telemetry,
        policy.clone(),
        worker,
    ));
    state::spawn_event_pump(Arc::clone(&state));
    let address = listener.local_addr()?;
    eprintln!(
        "vramdeck serve: {host} on http://{address} ({}) — /metrics, /api/v1/",
        kind.describe()
    );
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "WARNING: listening on {address}, which other machines can reach. Every request \
             needs the token (Authorization: Bearer …), but the traffic is plain HTTP: put a \
             TLS reverse proxy in front or use an SSH tunnel (see README)."
        );
    }
    if policy.token.is_none() {
        eprintln!("--no-token: only /metrics is served; the JSON API needs a token");
    } else if !policy.metrics_need_token {
        eprintln!("/metrics is open to every user of this machine (--metrics-without-token)");
    }
    match (&policy.token, policy.readonly) {
        (_, true) => eprintln!("actions are off (read-only)"),
        (Some(_), false) => {
            eprintln!("Free VRAM needs the token: `vramdeck serve --print-token` shows it")
        }
        (None, false) => {}
    }
    http::run(listener, state)?;
    drop(sampler);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(extra);
        Wrap::parse_from(argv).args
    }

    #[test]
    fn make_room_for_takes_app_equals_policy() {
        use crate::release::arbiter::RoomPolicy;
        let a = args(&[
            "--make-room-for",
            "ComfyUI=models",
            "--make-room-for",
            "FaceFusion (FP16) = Caches",
        ]);
        assert_eq!(
            a.make_room_for,
            [
                ("ComfyUI".to_string(), RoomPolicy::Models),
                ("FaceFusion (FP16)".to_string(), RoomPolicy::Caches)
            ]
        );
        for bad in ["ComfyUI", "=models", "ComfyUI=sometimes"] {
            let parsed = Wrap::try_parse_from(["serve", "--make-room-for", bad]);
            let e = parsed.err().expect(bad).to_string();
            assert!(e.contains("APP=POLICY"), "{bad}: {e}");
        }
    }

    #[test]
    fn off_loopback_without_a_token_refuses_to_start() {
        let e = policy(&args(&["--listen", "0.0.0.0:9401", "--no-token"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("refusing to listen on 0.0.0.0:9401 without a token"),
            "{e}"
        );
    }

    #[test]
    fn off_loopback_every_request_needs_the_token_and_without_one_actions_are_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        let p = policy(&args(&[
            "--listen",
            "0.0.0.0:9401",
            "--token-file",
            file.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(p.metrics_need_token && p.token.is_some() && !p.readonly);
        let p = policy(&args(&["--no-token"])).unwrap();
        assert!(!p.metrics_need_token && p.token.is_none() && p.readonly);
    }

    #[test]
    fn metrics_go_without_the_token_only_on_loopback_and_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        let file = file.to_str().unwrap();
        let p = policy(&args(&["--token-file", file])).unwrap();
        assert!(p.metrics_need_token, "the default guards /metrics too");
        let p = policy(&args(&["--token-file", file, "--metrics-without-token"])).unwrap();
        assert!(!p.metrics_need_token && p.token.is_some());
        let e = policy(&args(&[
            "--token-file",
            file,
            "--listen",
            "0.0.0.0:9401",
            "--metrics-without-token",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("refusing --metrics-without-token"), "{e}");
        let p = policy(&args(&[
            "--token-file",
            file,
            "--allow-host",
            "GPU.Example.org.",
        ]))
        .unwrap();
        assert!(p.host_names.contains(&"gpu.example.org".to_string()));
    }
}
