//! The HTTP layer: hyper on a single-threaded tokio runtime. Connections are capped, headers
//! must arrive within a deadline and fit a size, bodies are capped, and a connection lives at
//! most a minute, so a flood or a slow client cannot exhaust the box.

use super::state::{MAX_BODY_BYTES, Reply, Request, ServeState};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request headers.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);
/// Time a request body has to arrive.
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);
/// Longest life of one (keep-alive) connection; the client reconnects after.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serves `listener` until the process ends.
pub fn run(listener: TcpListener, state: Arc<ServeState>) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait and go on, never stop serving.
                    eprintln!("vramdeck serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(handle(request, &state).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_DEADLINE)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
                drop(permit);
            });
        }
    })
}

async fn handle(
    request: hyper::Request<Incoming>,
    state: &ServeState,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let reply = if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        too_large()
    } else {
        let collected =
            tokio::time::timeout(BODY_DEADLINE, Limited::new(body, MAX_BODY_BYTES).collect()).await;
        match collected {
            Ok(Ok(body)) => {
                let body = body.to_bytes();
                state.respond(&Request {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    authorization: parts
                        .headers
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok()),
                    body: &body,
                })
            }
            Ok(Err(_)) => too_large(),
            Err(_) => Reply {
                status: 408,
                content_type: "text/plain",
                body: b"the request body did not arrive in time\n".to_vec(),
                headers: Vec::new(),
            },
        }
    };
    let mut response = hyper::Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type)
        .header(hyper::header::CACHE_CONTROL, "no-store");
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

fn too_large() -> Reply {
    Reply {
        status: 413,
        content_type: "text/plain",
        body: format!("request bodies are limited to {MAX_BODY_BYTES} bytes\n").into_bytes(),
        headers: Vec::new(),
    }
}
