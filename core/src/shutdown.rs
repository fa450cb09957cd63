//! SIGTERM and SIGINT as a [`CancellationToken`].
//!
//! Every daemon drains on the first signal (stop intake, finish in-flight
//! work, commit, exit 0) within its configured deadline; a second signal
//! exits at once, for the operator who really means it.

pub use tokio_util::sync::CancellationToken;

/// Spawns the signal watcher on the current runtime and returns the token it cancels.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers; graceful drain disabled");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, draining"),
            _ = int.recv() => tracing::info!("SIGINT received, draining"),
        }
        t.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal, exiting without finishing the drain");
        std::process::exit(130);
    });
    token
}
