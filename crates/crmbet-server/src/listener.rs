//! The one listener's accept loop: each connection gets its own task, where it does the TLS
//! handshake (when the [`Transport`] says TLS) and is then served over HTTP/1.1 or HTTP/2,
//! whichever the client speaks. Plain and TLS connections share everything after the
//! handshake, graceful shutdown included.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::gateway::Gateway;
use crate::tls::Transport;

/// How long a client may take to finish the TLS handshake: a client that connects and says
/// nothing is dropped then, instead of holding a task (and shutdown) for ever.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a whole HTTP/1 request head: one that trickles its
/// headers (slowloris) is dropped then instead of holding a connection and a task for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause after an accept error that is not one client's (such as running out of file
/// descriptors), which would otherwise repeat at once in a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `gateway` (the application) on `listener`, over `transport`, until `shutdown` resolves; then stops
/// accepting and lets in-flight requests finish for at most `grace` before closing what is
/// still open.
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut http = auto::Builder::new(TokioExecutor::new());
    // hyper enforces the header timeout only with a timer to run it.
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    pause_after_accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and each client waits for its own: send them at once rather
        // than holding them for more bytes (Nagle), which costs latency and throughput.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        // Forget finished connections, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            stream,
            peer,
            transport.clone(),
            gateway.clone(),
            http.clone(),
            graceful.watcher(),
        ));
    }
    drop(listener);
    tracing::info!("shutting down: letting in-flight requests finish");
    // Resolves once every connection, handshakes in progress included, has closed.
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "grace period over, closing open connections"
        );
        connections.abort_all();
    }
}

/// One connection, start to end. Errors concern this client only: they are logged at debug
/// level and never reach the accept loop.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    gateway: Gateway,
    http: auto::Builder<TokioExecutor>,
    watcher: Watcher,
) {
    match transport {
        Transport::Plain => serve_http(TokioIo::new(stream), peer, gateway, &http, watcher).await,
        Transport::Tls(acceptor) => {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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
                };
            serve_http(TokioIo::new(stream), peer, gateway, &http, watcher).await;
        }
    }
}

async fn serve_http<Io>(
    io: Io,
    peer: SocketAddr,
    gateway: Gateway,
    http: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request: http::Request<Incoming>| {
        let mut request = request.map(Body::new);
        // The rate limiter, login backoff and audit log read the client's address here.
        request.extensions_mut().insert(ConnectInfo(peer));
        gateway.clone().oneshot(request)
    });
    let connection = http.serve_connection_with_upgrades(io, service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
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
