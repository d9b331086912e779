//! Every wait of a run (polls, bakes) goes through `sleep`, which keeps the total: what is left of a
//! deploy's wall time is the tool's own overhead, the figure the benchmarks report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

static SLEPT_NANOS: AtomicU64 = AtomicU64::new(0);

pub(crate) async fn sleep(d: Duration) {
    let start = Instant::now();
    tokio::time::sleep(d).await;
    record(start);
}

/// Sleeps `d`, or less when `cancel` turns true (SIGINT/SIGTERM); true when cancelled.
pub(crate) async fn sleep_or_cancel(d: Duration, cancel: &mut watch::Receiver<bool>) -> bool {
    if *cancel.borrow() {
        return true;
    }
    let start = Instant::now();
    let cancelled = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        changed = cancel.changed() => changed.is_ok() && *cancel.borrow(),
    };
    record(start);
    cancelled
}

/// Adds the time since `start` to the total (for waits that end early, e.g. on cancellation).
pub(crate) fn record(start: Instant) {
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    SLEPT_NANOS.fetch_add(nanos, Ordering::Relaxed);
}

pub(crate) fn slept() -> Duration {
    Duration::from_nanos(SLEPT_NANOS.load(Ordering::Relaxed))
}
