//! The HTTP/1.1 server: hyper's own, with the connection-level limits of SPEC §9 that
//! `axum::serve` does not offer: header and idle timeouts (`connection.rs`), a cap on open
//! connections, and a stop that drains for at most `shutdown_drain` before dropping whatever
//! is still open.
//!
//! HTTP/2 stays off: hyper has no header or idle timeout for it, so a client could hold
//! connections open without ever sending a request.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::connection::{ConnectionClock, TimedStream};
use super::limits::Limits;

/// How long accepting pauses after an error such as "too many open files".
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// File descriptors kept free of client connections: the database, outbound calls to Slack,
/// Discord, GitHub and deployers, command deploys' pipes.
const RESERVED_FILE_DESCRIPTORS: usize = 64;

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish for
/// at most `limits.shutdown_drain` and drops the connections still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    // Header and idle timeouts are the connection clock's: hyper's one header timer would
    // also cut idle connections at 10 s.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let max_connections = connection_cap(limits.max_connections, open_file_limit());
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A connection slot first: over the cap, clients wait in the kernel's accept queue
        // rather than costing a file descriptor each.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, _remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let clock = ConnectionClock::new(limits.header_read_timeout, limits.idle_timeout);
        let stream = TokioIo::new(TimedStream::new(stream, clock.clone()));
        let started = clock.clone();
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                started.serving();
                request
            })
            .map_response(move |response: Response| {
                response.map(|body| clock.watch_response(body))
            });
        let service = TowerToHyperService::new(service);
        let connection = graceful.watch(builder.serve_connection(stream, service));
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let open = connections.len();
    tracing::info!(open, "stopped accepting connections; draining");
    if tokio::time::timeout(limits.shutdown_drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            drain_seconds = limits.shutdown_drain.as_secs_f64(),
            "connections still open after the drain deadline; closing them"
        );
    }
    connections.shutdown().await;
}

/// The configured cap, lowered when the process may open too few files for it: running out
/// of descriptors would fail the database and outbound deliveries too, not only new clients.
fn connection_cap(configured: usize, open_file_limit: Option<usize>) -> usize {
    let Some(limit) = open_file_limit else {
        return configured;
    };
    let fitting = limit.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1);
    if fitting < configured {
        tracing::warn!(
            configured,
            open_file_limit = limit,
            max_connections = fitting,
            "the open-file limit is low; capping connections below it"
        );
        return fitting;
    }
    configured
}

/// The soft limit on open files (Linux: `/proc/self/limits`); `None` where unknown or
/// unlimited.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Errors about one connection (reset before it was accepted) need no pause; running out of
/// file descriptors does, or the loop would spin.
async fn pause_after_accept_error(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; pausing");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_open_file_limit_lowers_the_connection_cap() {
        assert_eq!(connection_cap(512, None), 512);
        assert_eq!(connection_cap(512, Some(20_000)), 512);
        assert_eq!(connection_cap(512, Some(128)), 64);
        assert_eq!(connection_cap(512, Some(10)), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_open_file_limit_is_read_on_linux() {
        assert!(open_file_limit().is_some_and(|limit| limit > 0));
    }
}
