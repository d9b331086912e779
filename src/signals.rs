//! SIGINT and SIGTERM (a cancelled workflow run, `docker stop`) as a flag every wait watches. The
//! handlers are installed first thing in a run: the action is PID 1 in its container, where a signal
//! without a handler is ignored, and GitHub follows its SIGINT with SIGTERM 7.5 s later and SIGKILL
//! 2.5 s after that.

use std::sync::OnceLock;

use tokio::sync::watch;

/// Why a run stopped when a signal stopped it, as the log, the outcome and the report say it.
pub(crate) const CANCELLED_REASON: &str = "cancelled (SIGINT/SIGTERM)";

static CANCELLED: OnceLock<watch::Receiver<bool>> = OnceLock::new();

/// Installs the handlers (once; needs the runtime). Becomes true on the first SIGINT or SIGTERM. The
/// handlers stay installed, so a second signal cannot kill an abort half-way.
pub(crate) fn install() -> watch::Receiver<bool> {
    CANCELLED
        .get_or_init(|| {
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
        })
        .clone()
}

/// The flag, for a wait to watch.
pub(crate) fn cancelled() -> watch::Receiver<bool> {
    install()
}
