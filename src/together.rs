//! Several services in one run (`service: web, worker`): the first by its strategy, the others
//! rolling at the same time. The first failure stops every other service's wait; once the first
//! service has ended (a canary's abort puts traffic back before anything else), every other service
//! that changed is restored, and a first service that had succeeded is restored too.

use anyhow::Result;
use tokio::sync::{Mutex, watch};

use crate::ecs::events::EventLog;
use crate::ecs::rollout::{self, Release, Rolled, short};
use crate::ecs::service;
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::plan::AlsoPlan;
use crate::progress;
use crate::report::Reporter;

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

/// Where the first failure is told: the first service's strategy and every other wait watch it.
pub(crate) struct FirstFailure(watch::Sender<Option<String>>);

impl FirstFailure {
    pub(crate) fn new() -> (Self, watch::Receiver<Option<String>>) {
        let (tx, rx) = watch::channel(None);
        (FirstFailure(tx), rx)
    }

    /// Records that `service` failed, unless another service failed first (its reason stays).
    pub(crate) fn record(&self, service: &str, reason: &str, gha: &Gha) {
        let told = self.0.send_if_modified(|first| {
            if first.is_some() {
                return false;
            }
            *first = Some(format!("`{service}` failed: {reason}"));
            true
        });
        if told {
            gha.warning(&format!("{service} failed: stopping the other services of this run, then restoring them"));
        }
    }

    pub(crate) fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }
}

/// Rolls one other service out, watching for the first failure of the run; nothing is undone here.
pub(crate) async fn roll_out(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    failure: &FirstFailure,
    reporter: &Mutex<&mut Reporter>,
    gha: &Gha,
) -> (Rolled, EventLog) {
    let name = release.service;
    let mut log = match service::describe(ecs, release.cluster, name).await {
        Ok(svc) => EventLog::starting_at(&svc),
        Err(_) => EventLog::default(),
    };
    reporter.lock().await.service_state(gha, name, format!("rolling out {}", short(release.revision))).await;
    let rolled = rollout::roll_out(ecs, release, &mut progress::Log(gha), &mut log, gha)
        .await
        .unwrap_or_else(|e| Rolled::Failed { reason: format!("{e:#}") });
    let state = match &rolled {
        Rolled::Stable => format!("deployed {}", short(release.revision)),
        Rolled::Failed { reason } => {
            failure.record(name, reason, gha);
            format!("failed: {reason}")
        }
        Rolled::Cancelled => "cancelled".to_string(),
        Rolled::Stopped(_) => "stopped: another service failed".to_string(),
    };
    reporter.lock().await.service_state(gha, name, state).await;
    (rolled, log)
}

/// After the first service ended: puts back every other service that changed when the run did not
/// succeed (all of them at the same time), and leaves them with `rollback: false`.
pub(crate) async fn settle(
    ecs: &aws_sdk_ecs::Client,
    releases: &[Release<'_>],
    rolled: Vec<(Rolled, EventLog)>,
    rollback: bool,
    why: &str,
    reporter: &Mutex<&mut Reporter>,
    gha: &Gha,
) -> Vec<ServiceEnd> {
    let ends = releases.iter().zip(rolled).map(|(release, (rolled, mut log))| async move {
        let name = release.service;
        let outcome = match (&rolled, rollback) {
            (Rolled::Failed { reason }, false) => Outcome::Failed { reason: reason.clone() },
            (_, false) => {
                Outcome::Failed { reason: format!("left on {} (rollback: false): {why}", short(release.revision)) }
            }
            (_, true) => {
                let reason = match &rolled {
                    Rolled::Failed { reason } => reason.clone(),
                    _ => why.to_string(),
                };
                undo(ecs, release, &reason, &mut log, gha).await
            }
        };
        let state = match &outcome {
            Outcome::RolledBack { .. } => format!("restored to {}", short(release.previous)),
            other => other.reason().map(|(_, r)| format!("failed: {r}")).unwrap_or_default(),
        };
        reporter.lock().await.service_state(gha, name, state).await;
        ServiceEnd {
            service: name.to_string(),
            revision: release.revision.to_string(),
            previous: release.previous.to_string(),
            outcome,
            events: log.recent,
        }
    });
    futures_util::future::join_all(ends).await
}

/// A restore that cannot even start is a failure that names the service.
pub(crate) async fn undo(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    reason: &str,
    log: &mut EventLog,
    gha: &Gha,
) -> Outcome {
    let restored: Result<Outcome> = rollout::restore(ecs, release, reason, &mut progress::Log(gha), log, gha).await;
    restored.unwrap_or_else(|e| Outcome::Failed {
        reason: format!("{reason}; {} could not be restored to {}: {e:#}", release.service, short(release.previous)),
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
    use super::*;

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
