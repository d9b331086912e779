//! Jittered exponential backoff for the few HTTP calls we make ourselves (the AWS SDK has its own).

use std::time::Duration;

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
}
