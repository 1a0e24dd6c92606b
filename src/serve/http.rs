//! The HTTP layer: hyper on a single-threaded tokio runtime. Connections are capped, headers
//! must arrive within a deadline and fit a size, bodies are capped, and a connection lives at
//! most a minute, so a flood or a slow client cannot exhaust the box.

use super::state::{MAX_BODY_BYTES, Reply, Request, ServeState};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Connections of token holders served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections that have not shown the token yet. When they are all taken, a new one pushes
/// the oldest out: idle connections cannot lock the token holder out, since the holder's
/// connection sends its request at once and becomes a token holder's.
pub const MAX_ANONYMOUS_CONNECTIONS: usize = 32;
/// Time a client has to send its request headers.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);
/// Time a request body has to arrive.
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);
/// Longest life of one (keep-alive) connection; the client reconnects after.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// One connection's standing: anonymous until a request on it carries the token.
struct Connection {
    id: u64,
    authenticated: AtomicBool,
    /// A byte has arrived on it: a client sending a request, not a bare connect.
    spoke: AtomicBool,
    close: Notify,
}

/// The client's stream, noting on its connection when the first byte arrives.
struct Noting {
    stream: tokio::net::TcpStream,
    connection: Arc<Connection>,
}

impl tokio::io::AsyncRead for Noting {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.connection.spoke.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Noting {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Which connections are open, by standing.
#[derive(Default)]
struct Connections {
    next_id: u64,
    /// Anonymous connections, oldest first.
    anonymous: VecDeque<Arc<Connection>>,
    authenticated: usize,
}

impl Connections {
    /// Admits a new connection, pushing an anonymous one out when all are taken: the oldest
    /// that has sent nothing (a bare connect of a flood), else the oldest. A client whose
    /// request is on its way is the last to go, so churn cannot reset the token holder.
    fn open(&mut self) -> Arc<Connection> {
        if self.anonymous.len() >= MAX_ANONYMOUS_CONNECTIONS {
            let silent = self
                .anonymous
                .iter()
                .position(|c| !c.spoke.load(Ordering::Relaxed));
            if let Some(pushed) = self.anonymous.remove(silent.unwrap_or(0)) {
                pushed.close.notify_one();
            }
        }
        self.next_id += 1;
        let c = Arc::new(Connection {
            id: self.next_id,
            authenticated: AtomicBool::new(false),
            spoke: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.anonymous.push_back(Arc::clone(&c));
        c
    }

    /// Moves a connection that showed the token to the token holders' places, if one is free.
    fn promote(&mut self, c: &Connection) {
        if c.authenticated.load(Ordering::Relaxed) || self.authenticated >= MAX_CONNECTIONS {
            return;
        }
        if let Some(at) = self.anonymous.iter().position(|a| a.id == c.id) {
            self.anonymous.remove(at);
            self.authenticated += 1;
            c.authenticated.store(true, Ordering::Relaxed);
        }
    }

    fn closed(&mut self, c: &Connection) {
        if c.authenticated.load(Ordering::Relaxed) {
            self.authenticated -= 1;
        } else if let Some(at) = self.anonymous.iter().position(|a| a.id == c.id) {
            self.anonymous.remove(at);
        }
    }
}

fn lock(c: &Mutex<Connections>) -> MutexGuard<'_, Connections> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves `listener` until the process ends.
pub fn run(listener: TcpListener, state: Arc<ServeState>) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let connections = Arc::new(Mutex::new(Connections::default()));
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
            let connection = lock(&connections).open();
            let state = Arc::clone(&state);
            let connections = Arc::clone(&connections);
            tokio::spawn(async move {
                let this = Arc::clone(&connection);
                let all = Arc::clone(&connections);
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    let this = Arc::clone(&this);
                    let all = Arc::clone(&all);
                    async move { Ok::<_, Infallible>(handle(request, &state, &this, &all).await) }
                });
                let noting = Noting {
                    stream,
                    connection: Arc::clone(&connection),
                };
                let serving = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_DEADLINE)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(noting), service);
                tokio::select! {
                    _ = tokio::time::timeout(CONNECTION_LIFETIME, serving) => {}
                    // Pushed out by a newer anonymous connection.
                    _ = connection.close.notified() => {}
                }
                lock(&connections).closed(&connection);
            });
            // The new connection's task runs before the next accept: a request already on its
            // way is read (and its connection promoted) before a burst of newcomers arrives.
            tokio::task::yield_now().await;
        }
    })
}

async fn handle(
    request: hyper::Request<Incoming>,
    state: &ServeState,
    connection: &Connection,
    connections: &Mutex<Connections>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if state.authorized(header(hyper::header::AUTHORIZATION)) {
        lock(connections).promote(connection);
    }
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
                    authorization: header(hyper::header::AUTHORIZATION),
                    host: header(hyper::header::HOST),
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
