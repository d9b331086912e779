//! All or nothing, for the services of one run: the first failure stops every other service's wait
//! (through its `Stop` token), a service that changed goes back once the run failed and the
//! canary's traffic is on the stable version (traffic first), and one that rolled out is kept only
//! when every service did. Each service asks `verdict` once; nothing here calls AWS.

use tokio::sync::watch;

use crate::gha::Gha;
use crate::signals::{self, CANCELLED_REASON};
use crate::stop::Stop;

/// Where the canary's traffic is, for the other services' undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Traffic {
    /// The canary may still take traffic: nothing else goes back yet.
    OnNew,
    /// On the stable version (an abort's traffic call is over, or the canary ended, or the run has
    /// no canary).
    Back,
    /// The abort could not put it back: nothing else is touched (a person must look first).
    Stuck,
}

/// What the run decided about a service that rolled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every service rolled out and none failed.
    Keep,
    /// The run failed (why) and traffic is back: restore it.
    Restore(String),
    /// The run failed (why) but the canary's traffic is stuck: leave it as it is.
    Leave(String),
}

/// What the services of one run tell each other: the first failure (every wait watches it), where
/// the canary's traffic is, and how many services are still rolling out.
pub(crate) struct Run {
    services: usize,
    failure: watch::Sender<Option<String>>,
    traffic: watch::Sender<Traffic>,
    rolling: watch::Sender<usize>,
}

impl Run {
    /// `services` roll out; `canary`: one of them moves traffic, which must be back on the stable
    /// version before any other service goes back.
    pub(crate) fn new(services: usize, canary: bool) -> Self {
        Run {
            services,
            failure: watch::Sender::new(None),
            traffic: watch::Sender::new(if canary { Traffic::OnNew } else { Traffic::Back }),
            rolling: watch::Sender::new(services),
        }
    }

    /// A stop token for one service of the run: SIGINT/SIGTERM, or another service's failure.
    pub(crate) fn stop(&self) -> Stop {
        Stop::new(signals::cancelled(), (self.services > 1).then(|| self.failure.subscribe()))
    }

    /// Records that `service` failed, unless another service failed first (its reason stays). A
    /// service stopped by SIGINT/SIGTERM did not fail: the run was cancelled.
    pub(crate) fn record(&self, service: &str, reason: &str, gha: &Gha) {
        if reason == CANCELLED_REASON {
            return self.cancelled();
        }
        if self.first(format!("`{service}` failed: {reason}")) && self.services > 1 {
            gha.warning(&format!("{service} failed: stopping the other services of this run, then restoring them"));
        }
    }

    /// SIGINT/SIGTERM stopped a service: the run did not succeed, every service goes back.
    pub(crate) fn cancelled(&self) {
        self.first(CANCELLED_REASON.to_string());
    }

    /// Keeps `reason` as the run's failure unless there already is one; true when it was kept.
    fn first(&self, reason: String) -> bool {
        self.failure.send_if_modified(|first| first.is_none() && first.replace(reason).is_none())
    }

    pub(crate) fn reason(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// The canary's abort is over its traffic call: the run failed (`reason`, unless another
    /// service failed first) and traffic is back on the stable version, or stuck on the canary.
    pub(crate) fn aborted(&self, service: &str, reason: &str, traffic_back: bool, gha: &Gha) {
        self.record(service, reason, gha);
        if traffic_back { self.traffic_is_back() } else { self.traffic_is_stuck() }
    }

    /// The canary's traffic is no longer on the new revision's side, or never will be again: its
    /// abort's traffic call is over, or it ended. Traffic that is stuck stays stuck.
    pub(crate) fn traffic_is_back(&self) {
        self.traffic.send_if_modified(|t| {
            *t == Traffic::OnNew && {
                *t = Traffic::Back;
                true
            }
        });
    }

    /// The canary's abort could not move traffic back: no other service is touched.
    fn traffic_is_stuck(&self) {
        self.traffic.send_replace(Traffic::Stuck);
    }

    /// A service's rollout is over (after recording its failure, if it failed).
    pub(crate) fn rolled(&self) {
        self.rolling.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Waits until the run decided about a service that rolled out: restore it, once the run failed
    /// and traffic is back; leave it, once the run failed with the canary's traffic stuck; or keep
    /// it, once every service rolled out with no failure.
    pub(crate) async fn verdict(&self) -> Verdict {
        let (mut failure, mut traffic, mut rolling) =
            (self.failure.subscribe(), self.traffic.subscribe(), self.rolling.subscribe());
        loop {
            // Every value is marked seen, so that only a later change ends the `select!` below.
            let why = failure.borrow_and_update().clone();
            let now = *traffic.borrow_and_update();
            let all_rolled = *rolling.borrow_and_update() == 0;
            match (why, now) {
                (Some(why), Traffic::Back) => return Verdict::Restore(why),
                (Some(why), Traffic::Stuck) => return Verdict::Leave(why),
                (None, _) if all_rolled => return Verdict::Keep,
                _ => {}
            }
            // The senders live in `self`, which outlives this wait: a change is the only way out.
            tokio::select! {
                _ = failure.changed() => {}
                _ = traffic.changed() => {}
                _ = rolling.changed() => {}
            }
        }
    }

    /// Waits until traffic is back on the stable version (a service that failed goes back then) or
    /// known to be stuck (it is left alone then); true when back.
    pub(crate) async fn traffic_back(&self) -> bool {
        let settled = self.traffic.subscribe().wait_for(|t| *t != Traffic::OnNew).await.map(|t| *t);
        settled.is_ok_and(|t| t == Traffic::Back)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use futures_util::FutureExt as _;

    use super::*;
    use crate::gha::Sink;

    fn gha() -> (Gha, Arc<StdMutex<Vec<u8>>>) {
        let buf = Arc::new(StdMutex::new(Vec::new()));
        let sink: Sink = buf.clone();
        (Gha::new(false, sink, None, None), buf)
    }

    #[tokio::test]
    async fn a_service_that_rolled_out_waits_for_the_run_to_fail_and_for_traffic_to_be_back() {
        let (gha, _) = gha();
        // web (canary) and worker: the worker rolled out and waits.
        let run = Run::new(2, true);
        run.rolled();
        let verdict = run.verdict();
        tokio::pin!(verdict);
        assert!((&mut verdict).now_or_never().is_none(), "decided while web still bakes");
        run.record("worker", "exit code 1", &gha);
        assert!((&mut verdict).now_or_never().is_none(), "restored before the canary's traffic is back");
        run.traffic_is_back();
        assert_eq!(verdict.await, Verdict::Restore("`worker` failed: exit code 1".into()));

        // Everything rolled out and nothing failed: kept.
        let run = Run::new(2, true);
        run.rolled();
        let verdict = run.verdict();
        tokio::pin!(verdict);
        assert!((&mut verdict).now_or_never().is_none());
        run.traffic_is_back();
        run.rolled();
        assert_eq!(verdict.await, Verdict::Keep);

        // Without a canary there is no traffic to wait for: a failure is enough, and the first reason stays.
        let run = Run::new(2, false);
        run.record("web", "the deployment did not become stable", &gha);
        run.record("worker", "exit code 1", &gha);
        assert_eq!(
            run.verdict().now_or_never(),
            Some(Verdict::Restore("`web` failed: the deployment did not become stable".into()))
        );
    }

    #[tokio::test]
    async fn a_signal_after_the_first_service_succeeded_sends_it_back_with_the_others() {
        // web promoted and ended; SIGINT stops the worker's rollout: the worker goes back, so web must too.
        let run = Run::new(2, true);
        run.traffic_is_back();
        run.rolled();
        run.cancelled();
        run.rolled();
        assert_eq!(run.verdict().now_or_never(), Some(Verdict::Restore(CANCELLED_REASON.into())));
        // A failure told before the signal keeps its reason.
        let (gha, _) = gha();
        let run = Run::new(2, false);
        run.record("worker", "exit code 1", &gha);
        run.cancelled();
        assert_eq!(run.reason().as_deref(), Some("`worker` failed: exit code 1"));
        // The canary's abort for the signal is no failure of its own.
        let run = Run::new(2, true);
        run.aborted("web", CANCELLED_REASON, true, &gha);
        assert_eq!(run.reason().as_deref(), Some(CANCELLED_REASON));
    }

    #[tokio::test]
    async fn the_canarys_abort_is_the_runs_failure_and_lets_the_others_go_back() {
        let (gha, buf) = gha();
        let run = Run::new(2, true);
        assert_eq!(*run.traffic.borrow(), Traffic::OnNew);
        run.aborted("web", "alarms gate failed: api-5xx in ALARM", true, &gha);
        assert_eq!(run.reason().as_deref(), Some("`web` failed: alarms gate failed: api-5xx in ALARM"));
        assert_eq!(*run.traffic.borrow(), Traffic::Back);
        let log = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(log.contains("web failed: stopping the other services of this run, then restoring them"), "{log}");

        // One service alone: nobody to stop, nothing to say.
        let (gha, buf) = self::gha();
        let run = Run::new(1, true);
        run.aborted("web", "x", true, &gha);
        assert_eq!(run.reason().as_deref(), Some("`web` failed: x"));
        assert!(buf.lock().unwrap().is_empty());
    }

    /// Issue 24.8: when the canary's abort could not put traffic back, the other services are left
    /// on their new revisions (touch nothing else while traffic is stuck), even once the canary ends.
    #[tokio::test]
    async fn a_canary_whose_traffic_is_stuck_leaves_the_other_services_alone() {
        let (gha, _) = gha();
        let run = Run::new(2, true);
        run.rolled();
        let verdict = run.verdict();
        tokio::pin!(verdict);
        run.aborted("web", "alarms gate failed: api-5xx in ALARM", false, &gha);
        run.traffic_is_back(); // the canary ended: stuck traffic stays stuck
        assert_eq!(*run.traffic.borrow(), Traffic::Stuck);
        assert_eq!(
            (&mut verdict).now_or_never(),
            Some(Verdict::Leave("`web` failed: alarms gate failed: api-5xx in ALARM".into()))
        );
        assert!(!run.traffic_back().await, "a service that failed is not sent back either");
    }
}
