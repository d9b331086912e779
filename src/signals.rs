//! SIGINT and SIGTERM (a cancelled workflow run, `docker stop`) as a flag the canary watches, so it
//! can put traffic back before the process ends.

use tokio::sync::watch;

/// Becomes true on the first SIGINT or SIGTERM. The handlers stay installed, so a second signal
/// cannot kill the abort half-way.
pub(crate) fn cancelled() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        let _ = tx.send(true);
        std::future::pending::<()>().await;
    });
    rx
}
