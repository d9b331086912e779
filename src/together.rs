//! Several services in one run (`service: web, worker`): the first by its strategy, the others
//! rolling at the same time. The first failure stops every other wait; each other service is put
//! back as soon as the run has failed and traffic is on the stable version (a canary's abort moves
//! traffic before anything else; a rolling first service has no traffic to move), while the first
//! service does its own undo; a first service that had succeeded is restored after it ended.

use anyhow::Result;
use tokio::sync::watch;

use crate::ecs::events::EventLog;
use crate::ecs::rollout::{self, Release, Rolled};
use crate::ecs::service;
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::plan::AlsoPlan;
use crate::progress::{self, Event, Progress};
use crate::records::StepRecord;
use crate::signals::CANCELLED_REASON;
use crate::text::family_revision;

/// Another service of the run, with its newly registered revision.
pub(crate) struct Other<'a> {
    pub(crate) plan: &'a AlsoPlan,
    pub(crate) revision: String,
}

/// How one service of the run ended, for the `services` output and the comment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceEnd {
    pub(crate) service: String,
    pub(crate) revision: String,
    pub(crate) previous: String,
    pub(crate) outcome: Outcome,
    /// ECS's last events about it, newest first.
    pub(crate) events: Vec<String>,
}

/// Where the first service's traffic is, for the other services' undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Traffic {
    /// The canary may still take traffic: nothing else goes back yet.
    OnNew,
    /// On the stable version (an abort's traffic call is over, or the first service ended, or it
    /// is rolling and has no traffic).
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
/// the first service's traffic is, and how many services are still rolling out.
pub(crate) struct Run {
    failure: watch::Sender<Option<String>>,
    traffic: watch::Sender<Traffic>,
    rolling: watch::Sender<usize>,
}

impl Run {
    /// `services` roll out; with `traffic_back`, the first service has no traffic to put back.
    pub(crate) fn new(services: usize, traffic_back: bool) -> Self {
        Run {
            failure: watch::Sender::new(None),
            traffic: watch::Sender::new(if traffic_back { Traffic::Back } else { Traffic::OnNew }),
            rolling: watch::Sender::new(services),
        }
    }

    /// What a service's `Stop` watches: the first failure's reason, once there is one.
    pub(crate) fn failures(&self) -> watch::Receiver<Option<String>> {
        self.failure.subscribe()
    }

    /// Records that `service` failed, unless another service failed first (its reason stays). A
    /// service stopped by SIGINT/SIGTERM did not fail: the run was cancelled.
    pub(crate) fn record(&self, service: &str, reason: &str, gha: &Gha) {
        if reason == CANCELLED_REASON {
            return self.cancelled();
        }
        if self.first(format!("`{service}` failed: {reason}")) {
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

    /// The first service's traffic is no longer on the new revision's side, or never will be again:
    /// its abort's traffic call is over, or it ended. Traffic that is stuck stays stuck.
    pub(crate) fn traffic_is_back(&self) {
        self.traffic.send_if_modified(|t| {
            *t == Traffic::OnNew && {
                *t = Traffic::Back;
                true
            }
        });
    }

    /// The first service's abort could not move traffic back: no other service is touched.
    pub(crate) fn traffic_is_stuck(&self) {
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
    async fn traffic_back(&self) -> bool {
        let settled = self.traffic.subscribe().wait_for(|t| *t != Traffic::OnNew).await.map(|t| *t);
        settled.is_ok_and(|t| t == Traffic::Back)
    }
}

/// The first service's progress, heard by the run before anyone else: its canary's abort or its
/// rollback is the run's failure at once (the other services stop then, not when its undo is
/// over), and an abort's traffic call being over lets them be restored.
pub(crate) struct Tap<'r, P> {
    pub(crate) run: Option<&'r Run>,
    pub(crate) service: &'r str,
    pub(crate) gha: &'r Gha,
    pub(crate) inner: P,
}

impl<P: Progress> Progress for Tap<'_, P> {
    async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]) {
        if let Some(run) = self.run {
            match &event {
                Event::Aborting { reason, traffic_back } => {
                    run.record(self.service, reason, self.gha);
                    if *traffic_back { run.traffic_is_back() } else { run.traffic_is_stuck() }
                }
                Event::RollingBack { reason, .. } | Event::RolloutLeft { reason } => {
                    run.record(self.service, reason, self.gha);
                }
                _ => {}
            }
        }
        self.inner.emit(event, table).await;
    }
}

/// Deploys one other service: rolls it out watching for the run's first failure, then, once the
/// run decided, restores it (or leaves it, `rollback: false`) or keeps it. Its state in the comment
/// follows along, never in the way of an ECS call.
pub(crate) async fn deploy(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    run: &Run,
    rollback: bool,
    mut report: impl Progress,
    gha: &Gha,
) -> ServiceEnd {
    let name = release.service;
    let mut log = match service::describe(ecs, release.cluster, name).await {
        Ok(svc) => EventLog::starting_at(&svc),
        Err(_) => EventLog::default(),
    };
    let state = format!("rolling out {}", family_revision(release.revision));
    report.emit(Event::ServiceState { service: name, state: &state }, &[]).await;
    let rolled = {
        let rolled = rollout::roll_out(ecs, release, &mut progress::Log(gha), &mut log, gha)
            .await
            .unwrap_or_else(|e| Rolled::Failed { reason: format!("{e:#}") });
        match &rolled {
            Rolled::Failed { reason } => run.record(name, reason, gha),
            Rolled::Cancelled => run.cancelled(),
            Rolled::Stable | Rolled::Stopped(_) => {}
        }
        run.rolled();
        rolled
    };
    let state = match &rolled {
        Rolled::Stable => format!("deployed {}", family_revision(release.revision)),
        Rolled::Failed { reason } => format!("failed: {reason}"),
        Rolled::Cancelled => "cancelled".to_string(),
        Rolled::Stopped(_) => "stopped: another service failed".to_string(),
    };
    report.emit(Event::ServiceState { service: name, state: &state }, &[]).await;
    let outcome = 'settled: {
        let why = match &rolled {
            Rolled::Stable => break 'settled settle_rolled_out(ecs, release, run, rollback, &mut log, gha).await,
            Rolled::Failed { reason } if !rollback => break 'settled Outcome::Failed { reason: reason.clone() },
            Rolled::Failed { reason } => reason.clone(),
            Rolled::Stopped(why) => why.clone(),
            Rolled::Cancelled => CANCELLED_REASON.to_string(),
        };
        // It changed and did not make it: it goes back as soon as traffic is back.
        if !run.traffic_back().await {
            break 'settled left_for_stuck_traffic(release, &why);
        }
        put_back(ecs, release, &why, rollback, &mut log, gha).await
    };
    if !matches!(outcome, Outcome::Succeeded) {
        let state = match &outcome {
            Outcome::RolledBack { .. } => format!("restored to {}", family_revision(release.previous)),
            other => other.reason().map(|(_, r)| format!("failed: {r}")).unwrap_or_default(),
        };
        report.emit(Event::ServiceState { service: name, state: &state }, &[]).await;
    }
    ServiceEnd {
        service: name.to_string(),
        revision: release.revision.to_string(),
        previous: release.previous.to_string(),
        outcome,
        events: log.recent,
    }
}

/// A service that rolled out, once the run decided (`Run::verdict`): kept, or put back.
pub(crate) async fn settle_rolled_out(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    run: &Run,
    rollback: bool,
    log: &mut EventLog,
    gha: &Gha,
) -> Outcome {
    match run.verdict().await {
        Verdict::Keep => Outcome::Succeeded,
        Verdict::Restore(why) => put_back(ecs, release, &why, rollback, log, gha).await,
        Verdict::Leave(why) => left_for_stuck_traffic(release, &why),
    }
}

/// A service left on its new revision because the canary's traffic could not be put back: while
/// traffic is stuck, nothing else changes (the undo must not make things worse than the failure).
fn left_for_stuck_traffic(release: &Release<'_>, why: &str) -> Outcome {
    Outcome::Failed {
        reason: format!(
            "left on {}: the canary's traffic could not be put back on the stable service, so nothing else was \
             changed ({why}); once traffic is back, restore it with: {}",
            family_revision(release.revision),
            release.restore_command()
        ),
    }
}

/// Restores the service (`rollback`), or leaves it on its new revision, saying so.
async fn put_back(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    why: &str,
    rollback: bool,
    log: &mut EventLog,
    gha: &Gha,
) -> Outcome {
    if rollback {
        return undo(ecs, release, why, log, gha).await;
    }
    Outcome::Failed { reason: format!("left on {} (rollback: false): {why}", family_revision(release.revision)) }
}

/// A restore that cannot even start is a failure that names the service.
async fn undo(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    reason: &str,
    log: &mut EventLog,
    gha: &Gha,
) -> Outcome {
    let restored: Result<Outcome> = rollout::restore(ecs, release, reason, &mut progress::Log(gha), log, gha).await;
    restored.unwrap_or_else(|e| Outcome::Failed {
        reason: format!(
            "{reason}; {} could not be restored to {}: {e:#}",
            release.service,
            family_revision(release.previous)
        ),
    })
}

/// The run's outcome from every service's: success only when all succeeded; rolled back when every
/// service is back on its previous revision; else failed, naming each service that is not.
pub(crate) fn overall(first: &Outcome, first_service: &str, others: &[ServiceEnd], why: Option<String>) -> Outcome {
    if *first == Outcome::Succeeded && others.iter().all(|o| o.outcome == Outcome::Succeeded) {
        return Outcome::Succeeded;
    }
    let mut failed: Vec<String> = Vec::new();
    if let Outcome::Failed { reason } = first {
        failed.push(format!("{first_service}: {reason}"));
    }
    for o in others {
        if let Outcome::Failed { reason } = &o.outcome {
            failed.push(format!("{}: {reason}", o.service));
        }
    }
    let at = match first {
        Outcome::RolledBack { at, .. } => *at,
        _ => None,
    };
    let reason = why.or_else(|| first.reason().map(|(_, r)| r)).unwrap_or_else(|| "a service failed".into());
    if failed.is_empty() { Outcome::RolledBack { reason, at } } else { Outcome::Failed { reason: failed.join("; ") } }
}

/// The `services` output: every service of the run, the first one first.
pub(crate) fn services_json(first: &ServiceEnd, others: &[ServiceEnd]) -> String {
    let entry = |e: &ServiceEnd| {
        serde_json::json!({
            "service": e.service,
            "task-definition-arn": e.revision,
            "previous-task-definition-arn": e.previous,
            "status": e.outcome.status(),
        })
    };
    let all: Vec<serde_json::Value> = std::iter::once(first).chain(others).map(entry).collect();
    serde_json::Value::Array(all).to_string()
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

    struct Heard(Vec<String>);

    impl Progress for Heard {
        async fn emit(&mut self, event: Event<'_>, _table: &[StepRecord]) {
            self.0.push(format!("{event:?}"));
        }
    }

    #[tokio::test]
    async fn a_service_that_rolled_out_waits_for_the_run_to_fail_and_for_traffic_to_be_back() {
        let (gha, _) = gha();
        // web (canary) and worker: the worker rolled out and waits.
        let run = Run::new(2, false);
        run.rolled();
        let verdict = run.verdict();
        tokio::pin!(verdict);
        assert!((&mut verdict).now_or_never().is_none(), "decided while web still bakes");
        run.record("worker", "exit code 1", &gha);
        assert!((&mut verdict).now_or_never().is_none(), "restored before the canary's traffic is back");
        run.traffic_is_back();
        assert_eq!(verdict.await, Verdict::Restore("`worker` failed: exit code 1".into()));

        // Everything rolled out and nothing failed: kept.
        let run = Run::new(2, false);
        run.rolled();
        let verdict = run.verdict();
        tokio::pin!(verdict);
        assert!((&mut verdict).now_or_never().is_none());
        run.traffic_is_back();
        run.rolled();
        assert_eq!(verdict.await, Verdict::Keep);

        // A rolling first service has no traffic: a failure is enough, and the first reason stays.
        let run = Run::new(2, true);
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
        let run = Run::new(2, false);
        run.traffic_is_back();
        run.rolled();
        run.cancelled();
        run.rolled();
        assert_eq!(run.verdict().now_or_never(), Some(Verdict::Restore(CANCELLED_REASON.into())));
        // A failure told before the signal keeps its reason.
        let (gha, _) = gha();
        let run = Run::new(2, true);
        run.record("worker", "exit code 1", &gha);
        run.cancelled();
        assert_eq!(run.reason().as_deref(), Some("`worker` failed: exit code 1"));
        // The first service's abort for the signal is no failure of its own.
        let run = Run::new(2, false);
        let mut tap = Tap { run: Some(&run), service: "web", gha: &gha, inner: Heard(Vec::new()) };
        tap.emit(Event::Aborting { traffic_back: true, reason: CANCELLED_REASON }, &[]).await;
        assert_eq!(run.reason().as_deref(), Some(CANCELLED_REASON));
    }

    #[tokio::test]
    async fn the_first_services_abort_or_rollback_is_the_runs_failure_before_anyone_else_hears_it() {
        let (gha, buf) = gha();
        let run = Run::new(2, false);
        let mut tap = Tap { run: Some(&run), service: "web", gha: &gha, inner: Heard(Vec::new()) };
        tap.emit(Event::WeightsSet { label: "step 1/2", stable: 90, canary: 10 }, &[]).await;
        assert_eq!(run.reason(), None);
        assert_eq!(*run.traffic.borrow(), Traffic::OnNew);
        tap.emit(Event::Aborting { traffic_back: true, reason: "alarms gate failed: api-5xx in ALARM" }, &[]).await;
        assert_eq!(run.reason().as_deref(), Some("`web` failed: alarms gate failed: api-5xx in ALARM"));
        assert_eq!(*run.traffic.borrow(), Traffic::Back);
        assert_eq!(tap.inner.0.len(), 2, "the events go on to the log and the report");
        let log = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(log.contains("web failed: stopping the other services of this run, then restoring them"), "{log}");

        // A rolling first service's rollback stops the others at once; it has no traffic to move.
        let run = Run::new(2, true);
        let mut tap = Tap { run: Some(&run), service: "web", gha: &gha, inner: Heard(Vec::new()) };
        let event = Event::RollingBack { service: "demo/web", reason: "exit code 1", revision: "web:1", by_ecs: false };
        tap.emit(event, &[]).await;
        assert_eq!(run.reason().as_deref(), Some("`web` failed: exit code 1"));

        // One service alone: nothing to tell.
        let mut tap = Tap { run: None, service: "web", gha: &gha, inner: Heard(Vec::new()) };
        tap.emit(Event::Aborting { traffic_back: true, reason: "x" }, &[]).await;
        assert_eq!(tap.inner.0.len(), 1);
    }

    /// Issue 24.8: when the canary's abort could not put traffic back, the other services are left
    /// on their new revisions (touch nothing else while traffic is stuck), even once the first ends.
    #[tokio::test]
    async fn a_canary_whose_traffic_is_stuck_leaves_the_other_services_alone() {
        let (gha, _) = gha();
        let run = Run::new(2, false);
        run.rolled();
        let verdict = run.verdict();
        tokio::pin!(verdict);
        let mut tap = Tap { run: Some(&run), service: "web", gha: &gha, inner: Heard(Vec::new()) };
        tap.emit(Event::Aborting { traffic_back: false, reason: "alarms gate failed: api-5xx in ALARM" }, &[]).await;
        run.traffic_is_back(); // the first service ended: stuck traffic stays stuck
        assert_eq!(*run.traffic.borrow(), Traffic::Stuck);
        assert_eq!(
            (&mut verdict).now_or_never(),
            Some(Verdict::Leave("`web` failed: alarms gate failed: api-5xx in ALARM".into()))
        );
        assert!(!run.traffic_back().await, "a service that failed is not sent back either");
        let release = Release {
            cluster: "demo",
            service: "worker",
            revision: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:2",
            previous: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1",
            wait_timeout: std::time::Duration::from_secs(60),
            poll: rollout::Poll::default(),
            cancel: crate::stop::Stop::new(watch::channel(false).1, None),
            desired: None,
            started: Default::default(),
        };
        let Outcome::Failed { reason } = left_for_stuck_traffic(&release, "`web` failed: x") else { panic!() };
        assert!(reason.starts_with("left on worker:2: the canary's traffic could not be put back"), "{reason}");
        assert!(reason.ends_with("--task-definition arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1"));
    }

    fn end(service: &str, outcome: Outcome) -> ServiceEnd {
        ServiceEnd {
            service: service.into(),
            revision: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:2"),
            previous: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:1"),
            outcome,
            events: Vec::new(),
        }
    }

    #[test]
    fn the_run_succeeds_only_when_every_service_did_and_names_what_was_not_restored() {
        let ok = Outcome::Succeeded;
        assert_eq!(overall(&ok, "web", &[end("worker", Outcome::Succeeded)], None), Outcome::Succeeded);
        let why = Some("`worker` failed: exit code 1".to_string());
        let back = Outcome::RolledBack { reason: "`worker` failed: exit code 1".into(), at: Some(2) };
        let restored = Outcome::RolledBack { reason: "exit code 1".into(), at: None };
        assert_eq!(
            overall(&back, "web", &[end("worker", restored.clone())], why.clone()),
            Outcome::RolledBack { reason: "`worker` failed: exit code 1".into(), at: Some(2) }
        );
        let stuck = Outcome::Failed { reason: "the rollback did not finish".into() };
        assert_eq!(
            overall(&back, "web", &[end("worker", stuck), end("cron", restored)], why),
            Outcome::Failed { reason: "worker: the rollback did not finish".into() }
        );
    }

    #[test]
    fn the_services_output_lists_every_service_first_one_first() {
        let json = services_json(
            &end("web", Outcome::Succeeded),
            &[end("worker", Outcome::RolledBack { reason: "x".into(), at: None })],
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["service"], "web");
        assert_eq!(v[0]["status"], "succeeded");
        assert_eq!(v[1]["service"], "worker");
        assert_eq!(v[1]["status"], "rolled-back");
        assert_eq!(v[1]["previous-task-definition-arn"], "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1");
    }
}
