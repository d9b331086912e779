//! The one way this action waits for AWS: ask, and until the answer says done, ask again after an
//! interval that grows from `Poll::first` to `Poll::max`, until a deadline or a cancellation.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often to ask while waiting: at once, then `first`, growing to `max` on long waits. A wait
/// notices a finished rollout within `max` (the official action sleeps 15 s and more between
/// checks). What that costs: one DescribeServices a look, and while a deployment is not done one
/// ListTasks (plus a DescribeTasks when a task stopped): at most about 60 + 60 calls a minute of
/// waiting, against ECS's limit for cluster reads (a bucket of 50, refilled at 20 a second, per account and
/// Region), so even ten runs waiting at once in one account stay well under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Poll {
    pub(crate) first: Duration,
    pub(crate) max: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        Poll { first: Duration::from_secs(1), max: Duration::from_secs(2) }
    }
}

impl Poll {
    /// The wait after `current` (zero: the first wait).
    pub(crate) fn next(&self, current: Duration) -> Duration {
        if current.is_zero() { self.first } else { current.mul_f64(1.5).min(self.max) }
    }
}

/// How long a wait may go without a line before it says what it waits for.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(30);

/// When a quiet wait is due a line: `HEARTBEAT` after it began or after the last thing said.
pub(crate) struct Heartbeat {
    started: Instant,
    last: Instant,
}

impl Heartbeat {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Heartbeat { started: now, last: now }
    }

    /// Something was said (an ECS event, a task that stopped): the wait is not quiet.
    pub(crate) fn said(&mut self) {
        self.last = Instant::now();
    }

    /// How long the wait has gone on, when a line is due (and then not again for `HEARTBEAT`).
    pub(crate) fn due(&mut self) -> Option<Duration> {
        self.due_at(Instant::now())
    }

    fn due_at(&mut self, now: Instant) -> Option<Duration> {
        (now.duration_since(self.last) >= HEARTBEAT).then(|| {
            self.last = now;
            now.duration_since(self.started)
        })
    }
}

/// What one look found: done with a result, or not yet, with what was seen (for the message when
/// the deadline passes).
pub(crate) enum Check<T, S> {
    Done(T),
    NotYet(S),
}

/// How a wait ended.
pub(crate) enum Polled<T, S> {
    Done(T),
    /// The deadline passed; the last thing seen, if a look happened.
    TimedOut(Option<S>),
    Cancelled,
}

/// Looks in a row that may fail (a throttled or unanswered describe) before the wait gives up: one
/// failed look is no news, a few in a row mean the wait is blind.
const FAILED_LOOKS: u32 = crate::retry::CONSECUTIVE_FAILURES;

/// The longest pause between looks while AWS throttles them.
const THROTTLED_MAX: Duration = Duration::from_secs(20);

/// Whether a look failed because AWS throttled it (past the SDK's own retries): a reason to look
/// less often, not to give up.
fn throttled(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("Throttl") || text.contains("Rate exceeded") || text.contains("TooManyRequests")
}

/// Calls `probe` at once and then at `poll`'s intervals until it is done, `timeout` has passed, or
/// `cancel` turns true (when given: some waits must not be cut short). A probe's error is retried at
/// the next interval; `FAILED_LOOKS` in a row, or one at the deadline, end the wait with it. A
/// throttled look is no failure: the interval doubles (up to `THROTTLED_MAX`) until a look goes
/// through, as the SDK's adaptive retry slows down, and the deadline alone ends the wait.
pub(crate) async fn poll_until<T, S>(
    timeout: Duration,
    poll: Poll,
    mut cancel: Option<&mut watch::Receiver<bool>>,
    mut probe: impl AsyncFnMut() -> Result<Check<T, S>>,
) -> Result<Polled<T, S>> {
    let deadline = Instant::now().checked_add(timeout).ok_or_else(|| {
        anyhow::anyhow!(
            "a wait of {} is too long for this machine's clock: use at most 24h",
            crate::config::duration::format(timeout)
        )
    })?;
    let mut interval = Duration::ZERO;
    let mut failed_looks = 0;
    let mut seen = None;
    let mut slowed = false;
    loop {
        match probe().await {
            Ok(Check::Done(done)) => return Ok(Polled::Done(done)),
            Ok(Check::NotYet(now_seen)) => {
                failed_looks = 0;
                seen = Some(now_seen);
                slowed = false;
            }
            Err(e) if throttled(&e) => slowed = true,
            Err(e) => {
                failed_looks += 1;
                if failed_looks >= FAILED_LOOKS || Instant::now() >= deadline {
                    return Err(e.context(format!("{failed_looks} look(s) in a row failed")));
                }
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Polled::TimedOut(seen));
        }
        interval = match slowed {
            true => interval.mul_f64(2.0).max(poll.max).min(THROTTLED_MAX),
            false => poll.next(interval.min(poll.max)),
        };
        let wait = interval.min(deadline - now);
        match cancel.as_deref_mut() {
            Some(cancel) => {
                if crate::clock::sleep_or_cancel(wait, cancel).await {
                    return Ok(Polled::Cancelled);
                }
            }
            None => crate::clock::sleep(wait).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Poll {
        Poll { first: Duration::from_millis(1), max: Duration::from_millis(2) }
    }

    #[test]
    fn a_quiet_wait_is_due_a_line_every_heartbeat_and_not_after_something_was_said() {
        let mut beat = Heartbeat::new();
        let t0 = beat.started;
        assert_eq!(beat.due_at(t0 + HEARTBEAT / 2), None);
        assert_eq!(beat.due_at(t0 + HEARTBEAT), Some(HEARTBEAT));
        assert_eq!(beat.due_at(t0 + HEARTBEAT), None, "once a heartbeat");
        beat.last = t0 + HEARTBEAT * 3 / 2; // an ECS event was said then
        assert_eq!(beat.due_at(t0 + HEARTBEAT * 2), None, "something was said 15 s ago");
        assert_eq!(beat.due_at(t0 + HEARTBEAT * 5 / 2), Some(HEARTBEAT * 5 / 2));
    }

    #[tokio::test]
    async fn asks_until_done_and_then_stops() {
        let mut asked = 0;
        let polled = poll_until(Duration::from_secs(5), fast(), None, async || {
            asked += 1;
            Ok(if asked == 3 { Check::Done(asked) } else { Check::NotYet(asked) })
        })
        .await
        .unwrap();
        assert!(matches!(polled, Polled::Done(3)));
        assert_eq!(asked, 3);
    }

    #[tokio::test]
    async fn a_passed_deadline_ends_the_wait_with_what_was_seen_last() {
        let polled: Polled<(), &str> =
            poll_until(Duration::ZERO, fast(), None, async || Ok(Check::NotYet("2/3 healthy"))).await.unwrap();
        assert!(matches!(polled, Polled::TimedOut(Some("2/3 healthy"))));
    }

    #[tokio::test]
    async fn throttled_looks_slow_the_wait_down_and_do_not_end_it() {
        let mut asked = 0;
        let started = tokio::time::Instant::now();
        let polled = poll_until::<u32, ()>(Duration::from_secs(600), fast(), None, async || {
            asked += 1;
            match asked {
                1..=6 => Err(anyhow::anyhow!("ECS DescribeServices: ThrottlingException: Rate exceeded")),
                _ => Ok(Check::Done(asked)),
            }
        })
        .await
        .unwrap();
        assert!(matches!(polled, Polled::Done(7)), "six throttled looks in a row are no failure");
        // 2, 4, 8, 16, 32, 64 ms: each throttled look doubles the pause (unthrottled: 2 ms each).
        assert!(started.elapsed() >= Duration::from_millis(126), "{:?}", started.elapsed());
        let polled = poll_until::<(), ()>(Duration::from_millis(300), fast(), None, async || {
            Err(anyhow::anyhow!("ECS DescribeServices: ThrottlingException: Rate exceeded"))
        })
        .await
        .unwrap();
        assert!(matches!(polled, Polled::TimedOut(None)), "throttled to the end: the deadline ends it");
    }

    #[tokio::test]
    async fn a_failed_look_is_asked_again_and_four_in_a_row_end_the_wait() {
        let mut asked = 0;
        let polled = poll_until(Duration::from_secs(5), fast(), None, async || {
            asked += 1;
            match asked {
                1 | 3 | 4 | 5 => Err(anyhow::anyhow!("ECS DescribeServices: Unavailable: try later")),
                7 => Ok(Check::Done(asked)),
                _ => Ok(Check::NotYet(asked)),
            }
        })
        .await
        .unwrap();
        assert!(matches!(polled, Polled::Done(7)), "three failed looks in a row are retried");

        let mut asked = 0;
        let failed = poll_until::<(), ()>(Duration::from_secs(5), fast(), None, async || {
            asked += 1;
            Err(anyhow::anyhow!("ECS DescribeServices: Unavailable: try later"))
        })
        .await
        .err()
        .unwrap();
        assert_eq!(asked, 4);
        assert_eq!(format!("{failed:#}"), "4 look(s) in a row failed: ECS DescribeServices: Unavailable: try later");
    }

    #[tokio::test]
    async fn cancellation_ends_the_wait() {
        let (tx, mut rx) = watch::channel(false);
        let polled: Polled<(), ()> = poll_until(
            Duration::from_secs(60),
            Poll { first: Duration::from_secs(30), max: Duration::from_secs(30) },
            Some(&mut rx),
            async || {
                let _ = tx.send(true);
                Ok(Check::NotYet(()))
            },
        )
        .await
        .unwrap();
        assert!(matches!(polled, Polled::Cancelled));
    }

    #[test]
    fn intervals_grow_to_the_maximum() {
        let p = Poll::default();
        let waits: Vec<Duration> =
            std::iter::successors(Some(p.next(Duration::ZERO)), |w| Some(p.next(*w))).take(6).collect();
        // A finished rollout is noticed within 2 s, however long the wait.
        assert_eq!(waits[0], Duration::from_secs(1));
        assert_eq!(waits[1], Duration::from_millis(1500));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(2)), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(2));
    }
}
