//! Resolves when the process is asked to stop (SIGTERM from the platform, Ctrl-C locally).

use std::future::Future;

/// Listens from the moment it is called, not from the first poll: a SIGTERM sent right after
/// `serve` said it is serving must stop it cleanly rather than kill it.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            tokio::select! {
                () = received(terminate, "SIGTERM") => tracing::info!("SIGTERM received; shutting down"),
                () = received(interrupt, "Ctrl-C") => tracing::info!("interrupted; shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("interrupted; shutting down");
    }
}

/// Resolves at the first signal of `stream`; never, if it could not be listened for.
#[cfg(unix)]
async fn received(stream: std::io::Result<tokio::signal::unix::Signal>, what: &str) {
    match stream {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for {what}");
            std::future::pending::<()>().await;
        }
    }
}
