//! The HTTP/1.1 server: accepts TCP connections and serves each with hyper, poem's endpoint
//! inside. Herald runs its own accept loop (instead of `poem::Server`) to own what happens per
//! connection:
//!
//! - **Slow and idle clients.** A request's headers must arrive within `HTTP_HEADER_TIMEOUT`
//!   (counted from the connection's accept, or from the first byte of a later request); an idle
//!   keep-alive connection closes after `HTTP_IDLE_TIMEOUT`. Neither costs a timer per request:
//!   each connection keeps two coarse timestamps (one relaxed atomic store per read or write),
//!   and one sweeper task per server checks every connection a few times per timeout. A request
//!   being served is never idle, however long it takes. (`HTTP_BODY_TIMEOUT` is enforced where
//!   bodies are read: `http::body::read_limited`.)
//! - **A bound on connections.** At most `MAX_CONNECTIONS` are served normally. A few more are
//!   accepted as "overflow": they may ask for `/health/*` (so probes keep working at the limit),
//!   anything else is answered 503 and the connection closed; beyond those, connections are
//!   closed as soon as they are accepted.
//! - **505 for HTTP versions other than 1.0 and 1.1**, answered as problem+json: hyper would
//!   send a bare 400. Checked on a connection's first request line (the kernel's copy is peeked
//!   at, nothing is consumed); a later request on a kept-alive connection with a bad version
//!   gets hyper's 400.
//! - **Graceful shutdown**: stop accepting, let in-flight requests finish within
//!   `SHUTDOWN_TIMEOUT`, close idle connections at once.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use poem::{
    Addr, Endpoint, Response,
    endpoint::BoxEndpoint,
    http::{StatusCode, uri::Scheme},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

use super::problem::Problem;
use crate::telemetry::WarnThrottle;

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

impl ConnectionLimits {
    /// Connections accepted beyond `max_connections` to answer health probes and 503s.
    fn overflow(&self) -> usize {
        (self.max_connections / 10).clamp(8, 256)
    }

    /// How often the sweeper looks: a quarter of the shorter timeout, within 50 ms..1 s.
    fn sweep_interval(&self) -> Duration {
        (self.header_timeout.min(self.idle_timeout) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// Marks a request that arrived on an overflow connection (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct OverflowConnection;

/// Milliseconds since the first server started, advanced by the sweepers: the coarse clock
/// connections stamp their reads and writes with (a relaxed load, no system call).
static CLOCK_MS: AtomicU64 = AtomicU64::new(1);

fn advance_clock() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
    CLOCK_MS.fetch_max(now, Ordering::Relaxed).max(now)
}

fn coarse_now() -> u64 {
    CLOCK_MS.load(Ordering::Relaxed)
}

/// What the sweeper knows of one connection.
struct Connection {
    /// Coarse time of the last read or write.
    last_io: AtomicU64,
    /// Coarse time (+1; 0: none) at which the request head being read began.
    head_started: AtomicU64,
    /// Requests being served (0 or 1 on HTTP/1.1).
    in_flight: AtomicU32,
    /// Close once idle (graceful: a request that just arrived is still answered).
    graceful: CancellationToken,
    /// Close now: the connection is stuck reading a head, or shutdown ran out of time.
    hard: CancellationToken,
}

impl Connection {
    fn new() -> Self {
        let now = coarse_now();
        Self {
            last_io: AtomicU64::new(now),
            head_started: AtomicU64::new(now),
            in_flight: AtomicU32::new(0),
            graceful: CancellationToken::new(),
            hard: CancellationToken::new(),
        }
    }
}

/// Every open connection of one server.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    /// Signalled whenever a connection closes (shutdown waits for the last one).
    closed: tokio::sync::Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }

    fn add(self: &Arc<Self>, connection: Arc<Connection>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, connection);
        }
        Registered {
            registry: self.clone(),
            id,
        }
    }

    fn each(&self, mut f: impl FnMut(&Connection)) {
        if let Ok(open) = self.open.lock() {
            open.values().for_each(|c| f(c));
        }
    }
}

/// Removes its connection from the registry when the connection's task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.id);
        }
        self.registry.closed.notify_waiters();
    }
}

/// Serves `endpoint` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    endpoint: BoxEndpoint<'static, Response>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let registry = Arc::new(Registry::default());
    let stop = CancellationToken::new();
    advance_clock();
    tokio::spawn(sweep(registry.clone(), limits, stop.clone()));

    let accept_errors = WarnThrottle::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // moment instead of spinning.
                    if accept_errors.allow() {
                        tracing::warn!(error = %err, "accepting a connection failed");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let open = registry.len();
        if open >= limits.max_connections + limits.overflow() {
            crate::metrics::record_connection_refused();
            drop(stream);
            continue;
        }
        let overflow = open >= limits.max_connections;
        let _ = stream.set_nodelay(true);
        let connection = Arc::new(Connection::new());
        let registered = registry.add(connection.clone());
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            serve_connection(stream, local, remote, connection, endpoint, overflow).await;
            drop(registered);
        });
    }
    drop(listener);

    // Drain: idle connections close now, busy ones after their request.
    registry.each(|c| c.graceful.cancel());
    let drained = async {
        loop {
            let closed = registry.closed.notified();
            if registry.len() == 0 {
                return;
            }
            closed.await;
        }
    };
    if tokio::time::timeout(limits.shutdown_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            connections = registry.len(),
            "shutdown timeout reached: closing the remaining connections"
        );
        registry.each(|c| c.hard.cancel());
    }
    stop.cancel();
    Ok(())
}

/// Closes connections that are too slow sending a request head, or idle for too long.
async fn sweep(registry: Arc<Registry>, limits: ConnectionLimits, stop: CancellationToken) {
    // Stamps come from the coarse clock, up to one tick old: wait a tick longer, so that a
    // connection is never closed before its timeout (at most two ticks after it).
    let tick_ms = limits.sweep_interval().as_millis() as u64;
    let header_ms = limits.header_timeout.as_millis() as u64 + tick_ms;
    let idle_ms = limits.idle_timeout.as_millis() as u64 + tick_ms;
    let mut ticks = tokio::time::interval(limits.sweep_interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = advance_clock();
        registry.each(|c| {
            if c.in_flight.load(Ordering::Acquire) > 0 {
                return;
            }
            let head = c.head_started.load(Ordering::Acquire);
            if head != 0 && now.saturating_sub(head) > header_ms {
                crate::metrics::record_connection_closed("header_timeout");
                c.hard.cancel();
            } else if head == 0 && now.saturating_sub(c.last_io.load(Ordering::Relaxed)) > idle_ms {
                crate::metrics::record_connection_closed("idle_timeout");
                c.graceful.cancel();
            }
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    connection: Arc<Connection>,
    endpoint: Arc<BoxEndpoint<'static, Response>>,
    overflow: bool,
) {
    let mut stream = stream;
    let version = tokio::select! {
        version = first_request_version(&stream) => version,
        _ = connection.hard.cancelled() => return,
        _ = connection.graceful.cancelled() => return,
    };
    if let Some(version) = version.filter(|v| !matches!(v.as_str(), "HTTP/1.0" | "HTTP/1.1")) {
        reject_version(&mut stream, &version).await;
        return;
    }

    let local = LocalAddr(Addr::SocketAddr(local));
    let remote = RemoteAddr(Addr::SocketAddr(remote));
    let service = hyper::service::service_fn({
        let connection = connection.clone();
        move |req: hyper::Request<hyper::body::Incoming>| {
            let serving = Serving::start(&connection);
            let mut req = poem::Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
            if overflow {
                req.extensions_mut().insert(OverflowConnection);
            }
            let endpoint = endpoint.clone();
            async move {
                let mut response = endpoint.get_response(req).await;
                drop(serving);
                if overflow {
                    // One request per overflow connection.
                    response.headers_mut().insert(
                        poem::http::header::CONNECTION,
                        poem::http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(hyper::Response::from(response))
            }
        }
    });
    let io = hyper_util::rt::TokioIo::new(TrackedIo {
        inner: stream,
        connection: connection.clone(),
    });
    let builder = hyper::server::conn::http1::Builder::new();
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    tokio::select! {
        _ = &mut served => return,
        _ = connection.hard.cancelled() => return,
        _ = connection.graceful.cancelled() => {}
    }
    served.as_mut().graceful_shutdown();
    tokio::select! {
        _ = served => {}
        _ = connection.hard.cancelled() => {}
    }
}

/// Counts a request as being served while it lives; the request's head is complete.
struct Serving(Arc<Connection>);

impl Serving {
    fn start(connection: &Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        connection.head_started.store(0, Ordering::Release);
        Self(connection.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.last_io.store(coarse_now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The HTTP version of the first request line, once it has arrived whole (peeked at, not read).
/// `None` when it cannot tell: the line is not complete in the first segment, or has no
/// `HTTP/` version; hyper then decides.
async fn first_request_version(stream: &TcpStream) -> Option<String> {
    let mut buf = [0u8; 1024];
    let n = stream.peek(&mut buf).await.ok()?;
    let line = buf[..n].split(|b| *b == b'\n').next().filter(|_| {
        // A complete line only.
        buf[..n].contains(&b'\n')
    })?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let version = line.rsplit(' ').next()?;
    version
        .starts_with("HTTP/")
        .then(|| version.chars().take(16).collect())
}

/// Answers 505 as problem+json on the raw connection, then closes it.
async fn reject_version(stream: &mut TcpStream, version: &str) {
    let request_id = uuid::Uuid::now_v7().to_string();
    let problem = Problem::new(
        StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        "HTTP_VERSION_NOT_SUPPORTED",
        format!("{version} is not supported: this server speaks HTTP/1.1 (and HTTP/1.0)."),
    );
    let response = problem.render(&request_id, "*");
    let (parts, body) = response.into_parts();
    let body = body.into_bytes().await.unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "x-request-id: {request_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    tracing::warn!(
        http.response.status_code = 505,
        request_id = %request_id,
        "request with an unsupported HTTP version refused"
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// A stream that stamps its connection's clock on every read and write, and notes when the head
/// of a new request starts arriving.
struct TrackedIo {
    inner: TcpStream,
    connection: Arc<Connection>,
}

impl TrackedIo {
    fn touched(&self, read: bool) {
        let now = coarse_now();
        let c = &self.connection;
        c.last_io.store(now, Ordering::Relaxed);
        if read
            && c.in_flight.load(Ordering::Acquire) == 0
            && c.head_started.load(Ordering::Relaxed) == 0
        {
            c.head_started.store(now, Ordering::Release);
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touched(true);
        }
        polled
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touched(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touched(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files to the hard limit, and returns how many connections fit
/// in it (leaving room for pools, log files and the overflow connections).
pub fn connections_that_fit(wanted: usize) -> usize {
    const RESERVED_FDS: u64 = 256;
    let Ok(limit) = rlimit::increase_nofile_limit(u64::MAX) else {
        return wanted;
    };
    let fit = limit.saturating_sub(RESERVED_FDS) * 10 / 11;
    if (wanted as u64) > fit {
        tracing::warn!(
            max_connections = wanted,
            open_files_limit = limit,
            using = fit,
            "MAX_CONNECTIONS does not fit in the open-files limit: lowered"
        );
        return fit.max(1) as usize;
    }
    wanted
}
