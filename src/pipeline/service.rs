//! One service of a run, whatever its strategy and wherever it stands in `service:`: roll it out
//! (rolling) or run its canary, then settle it the one way every service is settled: kept once every
//! service rolled out; else sent back once the run failed and traffic is on the stable version, or
//! left (with the command that restores it) when `rollback` is off or the canary's traffic is stuck.

use aws_sdk_ecs::types::Service;

use crate::all_or_nothing::{Run, Verdict};
use crate::aws::Aws;
use crate::canary;
use crate::config::duration;
use crate::ecs::events::EventLog;
use crate::ecs::rollout::{self, Release, Wait};
use crate::ecs::service;
use crate::gha::Gha;
use crate::native;
use crate::outcome::Outcome;
use crate::plan::{ServicePlan, StrategyPlan};
use crate::progress::{Event, Progress};
use crate::records::StepRecord;
use crate::signals::CANCELLED_REASON;
use crate::text::family_revision;

/// What one service's deploy needs: its plan, its release (new and previous revision, waits, stop
/// token), whether to undo a failure, and the run it belongs to.
pub(super) struct ServiceRun<'a> {
    pub(super) aws: &'a Aws,
    pub(super) plan: &'a ServicePlan,
    pub(super) release: Release<'a>,
    pub(super) rollback: bool,
    pub(super) run: &'a Run,
    /// `parallel`: a turn to roll out, taken before and given back once rolled out.
    pub(super) turns: Option<&'a tokio::sync::Semaphore>,
}

/// How one service ended, for the outputs, the comment and the run's outcome.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ServiceResult {
    pub(super) service: String,
    pub(super) revision: String,
    pub(super) previous: String,
    pub(super) outcome: Outcome,
    /// The canary's step table (empty for rolling).
    pub(super) table: Vec<StepRecord>,
    /// ECS's last events about it, newest first.
    pub(super) events: Vec<String>,
}

/// How a strategy ended, before the run's verdict.
enum Ended {
    /// Rolled out (rolling) or promoted (canary): kept only if the whole run succeeds.
    RolledOut,
    /// It changed and did not make it (why): it goes back once traffic is.
    Changed(String),
    /// The canary undid itself (traffic first) and ended so.
    Undone(Outcome),
    /// Stopped for approval at ECS's pause: neither kept nor sent back (a later run answers).
    Paused(Outcome),
}

/// Deploys one service by its strategy and settles it; `progress` hears its events.
pub(super) async fn deploy_service(s: ServiceRun<'_>, progress: &mut impl Progress, gha: &Gha) -> ServiceResult {
    let (release, run, ecs) = (&s.release, s.run, &s.aws.ecs);
    let name = release.service;
    // With `parallel`, a service waits for its turn; one whose turn comes after the run failed is
    // never changed.
    let turn = match s.turns {
        Some(turns) => turns.acquire().await.ok(),
        None => None,
    };
    if s.turns.is_some()
        && let Some(why) = run.reason()
    {
        run.rolled();
        let state = "not started: another service failed first";
        progress.emit(Event::ServiceState { service: name, state }, &[]).await;
        return ServiceResult {
            service: name.to_string(),
            revision: release.revision.to_string(),
            previous: release.previous.to_string(),
            outcome: Outcome::RolledBack { reason: format!("not started, left on its revision: {why}"), at: None },
            table: Vec::new(),
            events: Vec::new(),
        };
    }
    let state = format!("rolling out {}", family_revision(release.revision));
    progress.emit(Event::ServiceState { service: name, state: &state }, &[]).await;
    let mut log = match &s.plan.strategy {
        StrategyPlan::Rolling => events_from_now(service::describe(ecs, release.cluster, name).await.ok().as_ref()),
        // A preview made by this run has said nothing yet; an earlier push's has, before now.
        StrategyPlan::Preview(p) if p.create.is_some() => EventLog::default(),
        StrategyPlan::Preview(_) => events_from_now(service::describe(ecs, release.cluster, name).await.ok().as_ref()),
        // The canary tells ECS's events itself; a restore after its promotion learns what was
        // already said at its first look (no second read here, no line told twice).
        StrategyPlan::Canary(_) => EventLog::default(),
        // ECS's own strategy is told from its service deployment; a restore reads events from here.
        StrategyPlan::Native(_) => events_from_now(service::describe(ecs, release.cluster, name).await.ok().as_ref()),
    };
    let mut table = Vec::new();
    let mut canary_events = Vec::new();
    // How the strategy ended, and the service's state in the comment then.
    let (ended, rolled_state) = match &s.plan.strategy {
        StrategyPlan::Preview(p) if p.create.is_some() => {
            // The preview's first deploy: made, then followed; a failure removes it again.
            let failed = |reason: String| {
                run.record(name, &reason, gha);
                let state = format!("failed: {reason}");
                (Ended::Undone(Outcome::RolledBack { reason, at: None }), state)
            };
            match crate::preview::make(s.aws, p, release, gha).await {
                Err(e) => failed(format!("{e:#}")),
                Ok(made) => {
                    let created = made.service.clone().flatten();
                    let waited = rollout::follow(ecs, release, created, progress, &mut log, gha).await;
                    match waited {
                        Wait::Stable => (Ended::RolledOut, format!("deployed {}", family_revision(release.revision))),
                        other => {
                            let reason = wait_reason(other, release);
                            let left = crate::preview::undo(s.aws, p, release.cluster, made, gha).await;
                            match left {
                                None => failed(format!("{reason}; the preview is removed again")),
                                Some(left) => {
                                    run.record(name, &reason, gha);
                                    let reason = format!("{reason}; could not remove all of the preview: {left}");
                                    (
                                        Ended::Undone(Outcome::Failed { reason: reason.clone() }),
                                        format!("failed: {reason}"),
                                    )
                                }
                            }
                        }
                    }
                }
            }
        }
        StrategyPlan::Rolling | StrategyPlan::Preview(_) => {
            let waited = rollout::roll_out(ecs, release, progress, &mut log, gha)
                .await
                .unwrap_or_else(|e| Wait::Failed { reason: format!("{e:#}"), ecs_rolled_back: false });
            let failed = |reason: String| {
                run.record(name, &reason, gha);
                (Ended::Changed(reason.clone()), format!("failed: {reason}"))
            };
            match waited {
                Wait::Stable => (Ended::RolledOut, format!("deployed {}", family_revision(release.revision))),
                Wait::Failed { reason, .. } => failed(reason),
                Wait::TimedOut => failed(format!(
                    "the deployment did not become stable within wait-timeout {}",
                    duration::format(release.wait_timeout)
                )),
                Wait::Stopped(why) => (Ended::Changed(why), "stopped: another service failed".to_string()),
                Wait::Cancelled => {
                    run.cancelled();
                    (Ended::Changed(CANCELLED_REASON.to_string()), "cancelled".to_string())
                }
            }
        }
        StrategyPlan::Canary(plan) => {
            let canary_run = canary::deploy::CanaryRun { aws: s.aws, plan, release: release.clone(), run };
            let result = canary::deploy::run(canary_run, progress, gha).await;
            gha.info(&canary::table::text(&result.table));
            (table, canary_events) = (result.table, result.recent_events);
            // Its traffic is on the stable version now, or stuck on the canary for good (its abort
            // said so).
            run.traffic_is_back();
            match result.outcome {
                Outcome::Succeeded => (Ended::RolledOut, format!("deployed {}", family_revision(release.revision))),
                undone => {
                    let reason = undone.reason().map(|(_, reason)| reason).unwrap_or_default();
                    run.record(name, &reason, gha);
                    (Ended::Undone(undone), format!("failed: {reason}"))
                }
            }
        }
        StrategyPlan::Native(plan) => {
            let native_run = native::NativeRun { aws: s.aws, plan, release: release.clone(), run };
            let result = native::run(native_run, progress, gha).await;
            gha.info(&canary::table::text(&result.table));
            table = result.table;
            // ECS put traffic back on blue (or it is on green, deployed), unless the rollback could
            // not be asked for: that abort said so, and it stays stuck.
            run.traffic_is_back();
            let deployed = format!("deployed {}", family_revision(release.revision));
            match result.outcome {
                Outcome::Succeeded => (Ended::RolledOut, deployed),
                Outcome::RolledBack { reason, at } => {
                    run.record(name, &reason, gha);
                    let state = format!("failed: {reason}");
                    (Ended::Undone(Outcome::RolledBack { reason, at }), state)
                }
                Outcome::Paused(at) => {
                    let state = format!("paused for approval at {}", at.stage);
                    (Ended::Paused(Outcome::Paused(at)), state)
                }
                // ECS had no deployment to roll back (the update or the look for it failed), or it
                // ended otherwise: the service is sent back as any other.
                Outcome::Failed { reason } => {
                    run.record(name, &reason, gha);
                    (Ended::Changed(reason.clone()), format!("failed: {reason}"))
                }
            }
        }
    };
    // Rolled out (or not): the next service may take its turn while this one waits for the verdict.
    drop(turn);
    run.rolled();
    progress.emit(Event::ServiceState { service: name, state: &rolled_state }, &[]).await;
    let outcome = match ended {
        Ended::RolledOut => match run.verdict().await {
            Verdict::Keep => Outcome::Succeeded,
            Verdict::Restore(why) => restore_or_leave(&s, &why, progress, &mut log, gha).await,
            Verdict::Leave(why) => left_for_stuck_traffic(release, &why),
        },
        Ended::Changed(why) if !run.traffic_back().await => left_for_stuck_traffic(release, &why),
        Ended::Changed(why) => restore_or_leave(&s, &why, progress, &mut log, gha).await,
        Ended::Undone(outcome) | Ended::Paused(outcome) => outcome,
    };
    if !matches!(outcome, Outcome::Succeeded | Outcome::Paused(_)) {
        let state = match &outcome {
            Outcome::RolledBack { .. } => format!("restored to {}", family_revision(release.previous)),
            other => other.reason().map(|(_, r)| format!("failed: {r}")).unwrap_or_default(),
        };
        progress.emit(Event::ServiceState { service: name, state: &state }, &[]).await;
    }
    let mut events = canary_events;
    events.extend(log.recent);
    ServiceResult {
        service: name.to_string(),
        revision: release.revision.to_string(),
        previous: release.previous.to_string(),
        outcome,
        table,
        events,
    }
}

/// Why a wait that did not end stable ended, in words.
fn wait_reason(waited: Wait, release: &Release<'_>) -> String {
    match waited {
        Wait::Stable => String::new(),
        Wait::Failed { reason, .. } | Wait::Stopped(reason) => reason,
        Wait::TimedOut => format!(
            "the deployment did not become stable within wait-timeout {}",
            duration::format(release.wait_timeout)
        ),
        Wait::Cancelled => CANCELLED_REASON.to_string(),
    }
}

/// Only what ECS says from now on is news (a log that could not read the service learns it first).
fn events_from_now(service: Option<&Service>) -> EventLog {
    service.map(EventLog::starting_at).unwrap_or_default()
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

/// Restores the service to its previous revision (`rollback`), or leaves it on the new one, saying
/// so. A restore that cannot even start is a failure that names the service.
async fn restore_or_leave(
    s: &ServiceRun<'_>,
    why: &str,
    progress: &mut impl Progress,
    log: &mut EventLog,
    gha: &Gha,
) -> Outcome {
    let release = &s.release;
    if !s.rollback {
        progress.emit(Event::RolloutLeft { reason: why }, &[]).await;
        let ecs_goes_on = if release.cancel.by_signal() { "; ECS goes on with the deployment" } else { "" };
        return Outcome::Failed {
            reason: format!("{why}; left on {} (rollback: false){ecs_goes_on}", family_revision(release.revision)),
        };
    }
    let restored = rollout::restore(&s.aws.ecs, release, why, progress, log, gha).await;
    restored.unwrap_or_else(|e| Outcome::Failed {
        reason: format!(
            "{why}; {} could not be restored to {}: {e:#}",
            release.service,
            family_revision(release.previous)
        ),
    })
}

/// The run's outcome from every service's: success only when all succeeded; rolled back when every
/// service is back on its previous revision; else failed, naming each service that is not. `why`:
/// the run's first failure.
pub(super) fn overall(results: &[ServiceResult], why: Option<String>) -> Outcome {
    if let [one] = results {
        return one.outcome.clone();
    }
    if results.iter().all(|r| r.outcome == Outcome::Succeeded) {
        return Outcome::Succeeded;
    }
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed { reason } => Some(format!("{}: {reason}", r.service)),
            _ => None,
        })
        .collect();
    let at = results.iter().find_map(|r| match r.outcome {
        Outcome::RolledBack { at, .. } => at,
        _ => None,
    });
    let reason = why
        .or_else(|| results.iter().find_map(|r| r.outcome.reason().map(|(_, reason)| reason)))
        .unwrap_or_else(|| "a service failed".into());
    if failed.is_empty() { Outcome::RolledBack { reason, at } } else { Outcome::Failed { reason: failed.join("; ") } }
}

/// The `services` output: every service of the run, in the order `service` names them.
pub(super) fn services_json(results: &[ServiceResult]) -> String {
    let entry = |e: &ServiceResult| {
        serde_json::json!({
            "service": e.service,
            "task-definition-arn": e.revision,
            "previous-task-definition-arn": e.previous,
            "status": e.outcome.status(),
        })
    };
    serde_json::Value::Array(results.iter().map(entry).collect()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(service: &str, outcome: Outcome) -> ServiceResult {
        ServiceResult {
            service: service.into(),
            revision: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:2"),
            previous: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:1"),
            outcome,
            table: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn the_run_succeeds_only_when_every_service_did_and_names_what_was_not_restored() {
        let ok = Outcome::Succeeded;
        assert_eq!(overall(&[end("web", ok.clone()), end("worker", ok)], None), Outcome::Succeeded);
        let why = Some("`worker` failed: exit code 1".to_string());
        let back = Outcome::RolledBack { reason: "`worker` failed: exit code 1".into(), at: Some(2) };
        let restored = Outcome::RolledBack { reason: "exit code 1".into(), at: None };
        assert_eq!(
            overall(&[end("web", back.clone()), end("worker", restored.clone())], why.clone()),
            Outcome::RolledBack { reason: "`worker` failed: exit code 1".into(), at: Some(2) }
        );
        let stuck = Outcome::Failed { reason: "the rollback did not finish".into() };
        assert_eq!(
            overall(&[end("web", back), end("worker", stuck), end("cron", restored)], why),
            Outcome::Failed { reason: "worker: the rollback did not finish".into() }
        );
        // One service: its own outcome, as it said it.
        let alone = Outcome::Failed { reason: "exit code 3; left on web:2 (rollback: false)".into() };
        assert_eq!(overall(&[end("web", alone.clone())], None), alone);
    }

    #[test]
    fn the_services_output_lists_every_service_in_order() {
        let json = services_json(&[
            end("web", Outcome::Succeeded),
            end("worker", Outcome::RolledBack { reason: "x".into(), at: None }),
        ]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["service"], "web");
        assert_eq!(v[0]["status"], "succeeded");
        assert_eq!(v[1]["service"], "worker");
        assert_eq!(v[1]["status"], "rolled-back");
        assert_eq!(v[1]["previous-task-definition-arn"], "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1");
    }

    #[test]
    fn a_service_left_while_traffic_is_stuck_says_how_to_restore_it() {
        let (_keep, signal) = tokio::sync::watch::channel(false);
        let release = Release {
            cluster: "demo",
            service: "worker",
            revision: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:2",
            previous: "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1",
            wait_timeout: std::time::Duration::from_secs(60),
            poll: rollout::Poll::default(),
            cancel: crate::stop::Stop::new(signal, None),
            desired: None,
            started: Default::default(),
            reads: None,
        };
        let Outcome::Failed { reason } = left_for_stuck_traffic(&release, "`web` failed: x") else { panic!() };
        assert!(reason.starts_with("left on worker:2: the canary's traffic could not be put back"), "{reason}");
        assert!(reason.ends_with("--task-definition arn:aws:ecs:us-east-1:123456789012:task-definition/worker:1"));
    }
}
