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
    /// No token at all: reads only, every action off. Refused unless listening on loopback.
    #[arg(long)]
    pub no_token: bool,
    /// Turn every action (Free VRAM) off; readings and metrics only.
    #[arg(long)]
    pub readonly: bool,
    /// The name this box goes by in metrics and on the desktop's cards (default: hostname).
    #[arg(long)]
    pub name: Option<String>,
    /// Where ComfyUI listens on this box (loopback only); "none" to leave it alone.
    #[arg(long, default_value = crate::release::comfyui::DEFAULT_ADDRESS)]
    pub comfyui: String,
    /// Print the token (to set up a client) and exit.
    #[arg(long)]
    pub print_token: bool,
    #[command(flatten)]
    pub demo: crate::cli::DemoArg,
}

/// How the server guards itself, decided from the arguments before anything listens.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// The bearer token; `None` with `--no-token`.
    pub token: Option<String>,
    /// Reads need the token too (any address but loopback).
    pub reads_need_token: bool,
    /// Actions are off.
    pub readonly: bool,
}

/// Decides the policy: a token for actions always; for everything off loopback, where
/// running without one is refused.
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
    Ok(Policy {
        reads_need_token: !loopback,
        readonly: args.readonly || token.is_none(),
        token,
    })
}

/// The box's name: `--name`, else the kernel's hostname.
pub fn host_name(given: Option<&str>) -> String {
    if let Some(name) = given {
        return crate::text::sanitized(name);
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 {
        crate::text::sanitized(&String::from_utf8_lossy(&buf[..end]))
    } else {
        "localhost".into()
    }
}

/// `vramdeck serve`.
pub fn serve_command(args: &ServeArgs, demo: bool) -> anyhow::Result<()> {
    let policy = policy(args)?;
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
    if policy.reads_need_token {
        eprintln!(
            "WARNING: listening on {address}, which other machines can reach. Every request \
             needs the token (Authorization: Bearer …), but the traffic is plain HTTP: put a \
             TLS reverse proxy in front or use an SSH tunnel (see README)."
        );
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
        assert!(p.reads_need_token && p.token.is_some() && !p.readonly);
        let p = policy(&args(&["--no-token"])).unwrap();
        assert!(!p.reads_need_token && p.token.is_none() && p.readonly);
    }
}
