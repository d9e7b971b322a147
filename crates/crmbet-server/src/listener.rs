//! The one listener's accept loop: each connection gets its own task, where it does the TLS
//! handshake (when the [`Transport`] says TLS) and is then served over HTTP/1.1 or HTTP/2,
//! whichever the client speaks. Plain and TLS connections share everything after the
//! handshake, graceful shutdown included.
//!
//! Connections are accepted on a thread of their own, which answers health checks itself;
//! see [`crate::health_lane`].
//!
//! Every connection lives within the [`ConnectionLimits`] of [`crate::connections`]: a cap
//! on open connections, a deadline for the first request, an idle timeout, HTTP/2 pings,
//! and a deadline for request bodies.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::connections::{Activity, Admission, ConnectionLimits, IDLE_CHECKS, Registration};
use crate::gateway::Gateway;
use crate::health_lane;
use crate::request_body::TimedBody;
use crate::tls::Transport;

/// How long a client may take to finish the TLS handshake: a client that connects and says
/// nothing is dropped then, instead of holding a task (and shutdown) for ever.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a whole HTTP/1 request head: one that trickles its
/// headers (slowloris) is dropped then instead of holding a connection and a task for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an HTTP/2 peer may take to answer a keep-alive ping before it is disconnected.
pub const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a connection told to close (idle, or making room for a new one) may take to
/// close cleanly (an HTTP/2 GOAWAY and its ping round trip) before it is dropped. It has
/// no request in flight, so a live client needs milliseconds.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The pause after an accept error that is not one client's (such as running out of file
/// descriptors), which would otherwise repeat at once in a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `gateway` (the application) on `listener`, over `transport`, within the
/// gateway's connection limits, until `shutdown` resolves; then stops accepting and lets
/// in-flight requests finish for at most `grace` before closing what is still open.
///
/// Connections are accepted on a thread of their own, the front door, which also serves
/// plain-HTTP `GET /health` requests itself (see [`crate::health_lane`]); every other
/// connection is handed to the runtime that calls this function.
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let limits = gateway.connections().limits();
    let http = http_builder(limits);
    let (stop_sender, stop) = watch::channel(false);
    let (handoff_sender, mut handoffs) = mpsc::unbounded_channel();
    let front_door = FrontDoor {
        transport: transport.clone(),
        gateway: gateway.clone(),
        http: health_lane::builder(&http),
        stop: stop.clone(),
        handoffs: handoff_sender,
    };
    let (closed_sender, front_door_closed) = oneshot::channel();
    if let Err(error) = front_door.open(listener, closed_sender) {
        tracing::error!(%error, "cannot start accepting connections");
        return;
    }
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let handoff: Handoff = tokio::select! {
            handoff = handoffs.recv() => match handoff {
                Some(handoff) => handoff,
                // The front door stopped: nothing more will come.
                None => break,
            },
            () = &mut shutdown => break,
        };
        let stream = match TcpStream::from_std(handoff.stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(peer = %handoff.peer, %error, "cannot take over a connection");
                continue;
            }
        };
        // Forget finished connections, so the set holds only open ones.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(serve_connection(
            Connection {
                stream,
                peer: handoff.peer,
                registration: handoff.registration,
                limits,
                stop: stop.clone(),
            },
            transport.clone(),
            gateway.clone(),
            http.clone(),
        ));
    }
    tracing::info!("shutting down: letting in-flight requests finish");
    // The front door stops accepting; every connection finishes what it has in flight and
    // closes; handshakes stop.
    let _ = stop_sender.send(true);
    drop(handoffs);
    // The listener is closed once the front door has stopped: nothing is accepted after.
    let _ = front_door_closed.await;
    let all_closed = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all_closed).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "grace period over, closing open connections"
        );
        tasks.abort_all();
    }
}

/// The HTTP/1.1 and HTTP/2 settings of every connection.
fn http_builder(limits: ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    // hyper enforces the header timeout and pings only with a timer to run them.
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_ping_interval)
        .keep_alive_timeout(HTTP2_PING_TIMEOUT);
    http
}

/// A connection the front door accepted for the main runtime to serve.
struct Handoff {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    registration: Registration,
}

/// The accept loop, on a thread and runtime of its own: it keeps accepting (and the health
/// lane keeps answering) while the main runtime is saturated.
struct FrontDoor {
    transport: Transport,
    gateway: Gateway,
    /// The health lane's settings: one request per connection.
    http: auto::Builder<TokioExecutor>,
    stop: watch::Receiver<bool>,
    handoffs: mpsc::UnboundedSender<Handoff>,
}

impl FrontDoor {
    /// Starts the front door's thread over `listener`; `closed` hears when it has stopped
    /// and the listener (and every health-lane connection) is closed.
    fn open(self, listener: TcpListener, closed: oneshot::Sender<()>) -> std::io::Result<()> {
        let listener = listener.into_std()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("crmbet-front-door".to_owned())
            .spawn(move || {
                runtime.block_on(self.accept(listener));
                drop(runtime);
                let _ = closed.send(());
            })?;
        Ok(())
    }

    async fn accept(self, listener: std::net::TcpListener) {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "cannot accept connections on the front door");
                return;
            }
        };
        let connections = Arc::clone(self.gateway.connections());
        let limits = connections.limits();
        let mut stop = self.stop.clone();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(connection) => connection,
                    Err(error) => {
                        pause_after_accept_error(error).await;
                        continue;
                    }
                },
                () = stopped(&mut stop) => return,
            };
            let registration = match connections.admit() {
                Admission::Admitted(registration) => registration,
                Admission::Refused => {
                    // Give the connections told to close a moment to let go of their sockets.
                    tokio::task::yield_now().await;
                    tracing::debug!(%peer, max_connections = limits.max_connections,
                        "every connection is busy, new connection closed");
                    drop(stream);
                    continue;
                }
            };
            // Answers are small and each client waits for its own: send them at once rather
            // than holding them for more bytes (Nagle), which costs latency and throughput.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
            }
            let connection = Connection {
                stream,
                peer,
                registration,
                limits,
                stop: self.stop.clone(),
            };
            match &self.transport {
                // The request line is encrypted until the handshake, which the main runtime
                // does.
                Transport::Tls(_) => self.hand_off(connection),
                Transport::Plain => {
                    let route = route(
                        connection,
                        self.handoffs.clone(),
                        self.gateway.clone(),
                        self.http.clone(),
                    );
                    tokio::spawn(route);
                }
            }
        }
    }

    fn hand_off(&self, connection: Connection) {
        hand_off(connection, &self.handoffs);
    }
}

/// Sends `connection` to the main runtime.
fn hand_off(connection: Connection, handoffs: &mpsc::UnboundedSender<Handoff>) {
    let Connection {
        stream,
        peer,
        registration,
        ..
    } = connection;
    match stream.into_std() {
        Ok(stream) => {
            // Fails only when the server is shutting down: the connection is then closed.
            let _ = handoffs.send(Handoff {
                stream,
                peer,
                registration,
            });
        }
        Err(error) => tracing::debug!(%peer, %error, "cannot hand a connection over"),
    }
}

/// Waits for a plain connection's first bytes: a health check is served here, anything
/// else goes to the main runtime. Silent connections meet their first-request timeout here.
async fn route(
    mut connection: Connection,
    handoffs: mpsc::UnboundedSender<Handoff>,
    gateway: Gateway,
    http: auto::Builder<TokioExecutor>,
) {
    let mut first_bytes = [0_u8; health_lane::REQUEST_LINE_PREFIX.len()];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(
            connection.limits.first_request_timeout,
            connection.stream.peek(&mut first_bytes),
        ) => peeked,
        () = connection.registration.activity().evicted() => return,
        () = stopped(&mut connection.stop) => return,
    };
    let read = match peeked {
        Ok(Ok(read)) if read > 0 => read,
        // Closed, failed, or silent for the whole first-request timeout.
        _ => return,
    };
    if !health_lane::is_health_check(&first_bytes[..read]) {
        hand_off(connection, &handoffs);
        return;
    }
    let Connection {
        stream,
        peer,
        registration,
        limits,
        stop,
    } = connection;
    let io = TokioIo::new(stream);
    serve_http(io, peer, &registration, limits, stop, gateway, &http).await;
}

/// An accepted connection and what governs it.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    registration: Registration,
    limits: ConnectionLimits,
    /// Turns true when the server shuts down.
    stop: watch::Receiver<bool>,
}

/// One connection, start to end. Errors concern this client only: they are logged at debug
/// level and never reach the accept loop.
async fn serve_connection(
    connection: Connection,
    transport: Transport,
    gateway: Gateway,
    http: auto::Builder<TokioExecutor>,
) {
    let Connection {
        stream,
        peer,
        registration,
        limits,
        mut stop,
    } = connection;
    match transport {
        Transport::Plain => {
            let io = TokioIo::new(stream);
            serve_http(io, peer, &registration, limits, stop, gateway, &http).await;
        }
        Transport::Tls(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let stream = tokio::select! {
                finished = handshake => match finished {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed, connection dropped");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(
                            %peer,
                            timeout_seconds = TLS_HANDSHAKE_TIMEOUT.as_secs(),
                            "TLS handshake timed out, connection dropped"
                        );
                        return;
                    }
                },
                () = stopped(&mut stop) => return,
                () = registration.activity().evicted() => return,
            };
            let io = TokioIo::new(stream);
            serve_http(io, peer, &registration, limits, stop, gateway, &http).await;
        }
    }
}

/// Why a connection is told to close while it is open.
#[derive(Debug, Clone, Copy)]
enum CloseReason {
    NoFirstRequest,
    Idle,
    MakingRoom,
    ShuttingDown,
}

/// Native gRPC (not grpc-web, which has no client streams): its body may be a long stream
/// of messages.
fn is_native_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value == "application/grpc"
                || value.starts_with("application/grpc+")
                || value.starts_with("application/grpc;")
        })
}

async fn serve_http<Io>(
    io: Io,
    peer: SocketAddr,
    registration: &Registration,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    gateway: Gateway,
    http: &auto::Builder<TokioExecutor>,
) where
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::clone(registration.activity());
    let body_timeout = limits.request_body_timeout;
    let requests = Arc::clone(&activity);
    let service = service_fn(move |request: http::Request<Incoming>| {
        let in_flight = requests.begin_request();
        let streams = is_native_grpc(request.headers());
        let mut request = request.map(|body| {
            Body::new(if streams {
                TimedBody::per_frame(body, body_timeout)
            } else {
                TimedBody::new(body, body_timeout)
            })
        });
        // The rate limiter, login backoff and audit log read the client's address here.
        request.extensions_mut().insert(ConnectInfo(peer));
        let answer = gateway.clone().oneshot(request);
        async move {
            let response = answer.await;
            drop(in_flight);
            response
        }
    });
    let connection = http.serve_connection_with_upgrades(io, service);
    let mut connection = std::pin::pin!(connection);
    let reason = tokio::select! {
        finished = connection.as_mut() => {
            if let Err(error) = finished {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            return;
        }
        reason = watch_for_close(&activity, limits, &mut stop) => reason,
    };
    tracing::debug!(%peer, ?reason, "closing connection");
    // A connection that never made a request has nothing to finish or to be told.
    if let CloseReason::NoFirstRequest = reason {
        return;
    }
    connection.as_mut().graceful_shutdown();
    // Shutdown has its own grace period over all connections; the others get a short one.
    let finished = match reason {
        CloseReason::ShuttingDown => Ok(connection.await),
        _ => tokio::time::timeout(CLOSE_GRACE, connection).await,
    };
    match finished {
        Ok(Err(error)) => tracing::debug!(%peer, %error, "connection ended with an error"),
        Ok(Ok(())) => {}
        Err(_) => tracing::debug!(%peer, ?reason, "connection dropped after its close grace"),
    }
}

/// Resolves with the reason once the connection should close: no first request in time,
/// idle for the idle timeout, chosen to make room for a new connection, or shutdown.
async fn watch_for_close(
    activity: &Activity,
    limits: ConnectionLimits,
    stop: &mut watch::Receiver<bool>,
) -> CloseReason {
    tokio::select! {
        () = stopped(stop) => CloseReason::ShuttingDown,
        () = activity.evicted() => CloseReason::MakingRoom,
        reason = watch_idleness(activity, limits) => reason,
    }
}

async fn watch_idleness(activity: &Activity, limits: ConnectionLimits) -> CloseReason {
    tokio::time::sleep(limits.first_request_timeout).await;
    if !activity.started_a_request() {
        return CloseReason::NoFirstRequest;
    }
    // Idle means no request in flight and none started at one more check than the timeout
    // is split into: closed between one and one and a quarter timeouts after the last one.
    let period = (limits.idle_timeout / IDLE_CHECKS).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        if activity.check_idle() > IDLE_CHECKS {
            return CloseReason::Idle;
        }
    }
}

/// Resolves once the server is shutting down.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which happens only after shutdown began.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn pause_after_accept_error(error: std::io::Error) {
    use std::io::ErrorKind;
    // A client that gave up before it was accepted affects nobody else.
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept connections, retrying in a second");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
