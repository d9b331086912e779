//! Every retry schedule of the action, by name (the AWS SDK has its own for AWS calls): the OIDC
//! token request, the session refresh, the calls an undo cannot do without (traffic back, a service
//! sent back), and how many failed reads in a row end a watch.

use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

/// Failures in a row that end a watch (a wait's reads, a gate's checks, the pre-deploy task's
/// reads): one throttled call is no news, four in a row mean the run cannot see what it changed.
pub(crate) const CONSECUTIVE_FAILURES: u32 = 4;

/// How long an undo's one call (the canary's traffic call, a rolling service sent back) is retried
/// before the run says it could not and prints the command that does it.
pub(crate) const MUST_SUCCEED_FOR: Duration = Duration::from_secs(20);

/// The same, after SIGINT/SIGTERM: GitHub kills the job 10 s after its first signal.
pub(crate) const WITHIN_A_SIGNAL: Duration = Duration::from_secs(5);

/// The GitHub OIDC token request: four attempts, from half a second to 5 s apart (a job waits for
/// its token; a runner that cannot give one within seconds will not give one).
pub(crate) fn token_request() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(5), 4)
}

/// A role session refreshed in the background: tried again from 1 s to every 30 s for as long as
/// the session held is valid.
pub(crate) fn session_refresh() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(30), u32::MAX)
}

/// The waits between an undo's attempts: from half a second, growing to 4 s.
pub(crate) fn undo_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(4), u32::MAX)
}

/// `call` until it succeeds or `budget` has passed since the first attempt; the last error then,
/// saying how long it was tried.
pub(crate) async fn for_up_to<T>(budget: Duration, mut call: impl AsyncFnMut() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let mut backoff = undo_backoff();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match call().await {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        match backoff.next().filter(|_| started.elapsed() < budget) {
            Some(wait) => crate::clock::sleep(wait.min(budget.saturating_sub(started.elapsed()))).await,
            None => {
                let tried = started.elapsed().as_secs_f64();
                return Err(error.context(format!("{attempts} attempt(s) in {tried:.1}s")));
            }
        }
    }
}

/// "Full jitter": each wait is random in [0, min(cap, base × 2^n)].
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, cap: Duration, max_attempts: u32) -> Self {
        Backoff { base, cap, max_attempts, attempt: 1 }
    }

    /// The wait before the next attempt, or None when the attempts are used up.
    pub(crate) fn next(&mut self) -> Option<Duration> {
        if self.attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self.base.saturating_mul(1 << self.attempt.min(16)).min(self.cap);
        self.attempt += 1;
        Some(ceiling.mul_f64(fastrand::f64()))
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_under_the_cap_and_stop_after_the_attempts() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300), 4);
        let waits: Vec<Duration> = std::iter::from_fn(|| b.next()).collect();
        assert_eq!(waits.len(), 3);
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(300)));
        assert_eq!(b.attempts(), 4);
    }

    #[tokio::test]
    async fn a_call_that_must_succeed_is_tried_again_until_it_does_or_the_budget_is_spent() {
        let mut calls = 0;
        let done = for_up_to(Duration::from_secs(5), async || {
            calls += 1;
            if calls < 3 { Err(anyhow::anyhow!("Throttling: Rate exceeded")) } else { Ok(calls) }
        })
        .await
        .unwrap();
        assert_eq!(done, 3);

        let mut calls = 0;
        let failed = for_up_to::<()>(Duration::from_millis(600), async || {
            calls += 1;
            Err(anyhow::anyhow!("Throttling: Rate exceeded"))
        })
        .await
        .unwrap_err();
        assert!(calls >= 2, "tried again within the budget: {calls}");
        let text = format!("{failed:#}");
        assert!(
            text.contains(&format!("{calls} attempt(s) in")) && text.ends_with("Throttling: Rate exceeded"),
            "{text}"
        );
    }
}
