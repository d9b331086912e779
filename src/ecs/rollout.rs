//! The rolling deploy: update the service to a registered revision, wait until ECS reports our
//! deployment PRIMARY, COMPLETED and fully running, and undo it when it fails, times out or cannot be
//! followed.

use std::time::Duration;

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;

use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};

use super::events::EventLog;
pub(crate) use super::poll::Poll;
use super::poll::{Check, Heartbeat, Polled, poll_until};
use super::reads::Reads;
use super::service;
use super::task_counts::{TaskCounts, a_task_stopped, task_counts};
use crate::config::duration;
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::progress::{Event, Progress};
use crate::retry;
use crate::text::family_revision;
use tokio::sync::watch;

use crate::stop::Stop;

/// How a wait for a deployment ended: the one answer every strategy's wait gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wait {
    Stable,
    /// ECS gave up on the deployment (e.g. the circuit breaker); `ecs_rolled_back` when ECS itself
    /// already started a deployment of another revision.
    Failed {
        reason: String,
        ecs_rolled_back: bool,
    },
    TimedOut,
    /// SIGINT/SIGTERM arrived first.
    Cancelled,
    /// Another service of the run failed first (its reason).
    Stopped(String),
}

/// What ECS reports about the deployment of `revision`, judged once. `ours`: the deployment that
/// UpdateService answered it started, when known; ECS is eventually consistent, so a read that does
/// not show it yet is no news, and only a deployment started after it means it was replaced.
/// `seen`: ECS's events since the deploy began, newest first: when the deployment is gone because the
/// circuit breaker rolled it back, they say so, however late the service is looked at.
pub(crate) fn judge(service: &Service, revision: &str, ours: Option<&Deployment>, seen: &[String]) -> Option<Wait> {
    let deployments = service.deployments();
    let primary = service::primary(deployments)?;
    let found = match ours.and_then(Deployment::id) {
        Some(id) => deployments.iter().find(|d| d.id() == Some(id)),
        None => deployments.iter().find(|d| d.task_definition() == Some(revision)),
    };
    match found {
        Some(d) if d.rollout_state() == Some(&DeploymentRolloutState::Failed) => Some(Wait::Failed {
            reason: d.rollout_state_reason().unwrap_or("the deployment failed").to_string(),
            ecs_rolled_back: !std::ptr::eq(primary, d),
        }),
        None if let Some(why) = seen.iter().find_map(|e| e.split_once("deployment failed: ")) => {
            Some(Wait::Failed { reason: format!("ECS deployment circuit breaker: {}", why.1), ecs_rolled_back: true })
        }
        // A read from before the update reached it: look again.
        None if !replaced(deployments, ours) => None,
        None => Some(Wait::Failed {
            reason: format!(
                "the service now runs {}: another deployment replaced this one",
                primary.task_definition().map(family_revision).unwrap_or("another revision")
            ),
            ecs_rolled_back: true,
        }),
        Some(d) if !std::ptr::eq(primary, d) => None,
        Some(_) => {
            // Services without a rollout state (a Classic Load Balancer, services older than ECS's
            // report of it) are judged as `aws ecs wait services-stable` judges them.
            let settled = matches!(primary.rollout_state(), None | Some(DeploymentRolloutState::Completed));
            let done = settled && deployments.len() == 1 && primary.running_count() == primary.desired_count();
            done.then_some(Wait::Stable)
        }
    }
}

/// Whether a deployment started after `ours` is among `deployments`. Without what the update
/// answered, a deployment missing from the read is taken as replaced.
fn replaced(deployments: &[Deployment], ours: Option<&Deployment>) -> bool {
    let Some(ours) = ours else { return true };
    deployments.iter().any(|d| started_after(d, ours))
}

/// `d` was created after `ours` (both times known).
fn started_after(d: &Deployment, ours: &Deployment) -> bool {
    let at = |d: &Deployment| d.created_at().map(|t| (t.secs(), t.subsec_nanos()));
    matches!((at(d), at(ours)), (Some(theirs), Some(mine)) if theirs > mine)
}

/// One service being watched: where it is, how long a wait may take, how often to look.
pub(crate) struct Watch<'a> {
    pub(crate) ecs: &'a aws_sdk_ecs::Client,
    pub(crate) cluster: &'a str,
    pub(crate) service: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) poll: Poll,
    /// The run's shared reads (a look serves every service waited for); None: a call of its own.
    pub(crate) reads: Option<&'a Reads>,
}

/// Polls until the deployment of `revision` (`ours`, when UpdateService named it) is stable, failed,
/// or the timeout has passed, telling `progress` ECS's events and stopped tasks as they come.
pub(crate) async fn wait(
    w: &Watch<'_>,
    revision: &str,
    ours: Option<&Deployment>,
    cancel: Option<&mut watch::Receiver<bool>>,
    log: &mut EventLog,
    progress: &mut impl Progress,
    gha: &Gha,
) -> Result<Wait> {
    let (ecs, cluster, name) = (w.ecs, w.cluster, w.service);
    let mut heartbeat = Heartbeat::new();
    // A look shared with the other services' waits may be this much older than our own would be. It
    // may even be from before our update: `judge` knows the deployment the update started and looks
    // again until it is there; without it, only a look of our own will do.
    let fresh = if ours.is_some() { w.poll.max.mul_f64(0.95) } else { Duration::ZERO };
    let mut counts: Option<Vec<TaskCounts>> = None;
    let polled = poll_until(w.timeout, w.poll, cancel, async || {
        let service = match w.reads {
            Some(reads) => reads.service(name, fresh).await?,
            None => service::describe(ecs, cluster, name).await?,
        };
        if log.tell_new(&service, progress).await {
            heartbeat.said();
        }
        if let Some(outcome) = judge(&service, revision, ours, &log.recent) {
            return Ok(Check::Done(outcome));
        }
        // Stopped tasks are asked for only when the counts say one of ours stopped.
        let now = task_counts(&service);
        if counts.as_ref().is_some_and(|before| a_task_stopped(before, &now, &service)) {
            log.tell_stopped_tasks(ecs, cluster, name, progress, gha).await;
        }
        counts = Some(now);
        if let Some(elapsed) = heartbeat.due() {
            let seen = tasks_of(&service, revision);
            progress.emit(Event::Waiting { what: name, seen: &seen, elapsed, timeout: w.timeout }, &[]).await;
        }
        Ok(Check::NotYet(()))
    })
    .await;
    if let Some(reads) = w.reads {
        reads.forget(name).await;
    }
    Ok(match polled? {
        Polled::Done(outcome) => outcome,
        Polled::TimedOut(_) => Wait::TimedOut,
        Polled::Cancelled => Wait::Cancelled,
    })
}

/// Where the deployment of `revision` stands, for a waiting line: `1/2 tasks of web:8 running`.
fn tasks_of(service: &aws_sdk_ecs::types::Service, revision: &str) -> String {
    let deployment = service.deployments().iter().find(|d| d.task_definition() == Some(revision));
    let (running, desired) = deployment.map(|d| (d.running_count(), d.desired_count())).unwrap_or_default();
    format!("{running}/{desired} tasks of {} running", crate::text::family_revision(revision))
}

/// A registered revision for a service, and how both strategies wait for it: the stable service
/// (`service`), the revision it ran before (`previous`), and the run's wait settings.
#[derive(Clone)]
pub(crate) struct Release<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) service: &'a str,
    pub(crate) revision: &'a str,
    pub(crate) previous: &'a str,
    pub(crate) wait_timeout: Duration,
    pub(crate) poll: Poll,
    /// SIGINT/SIGTERM, or another service of the run failed.
    pub(crate) cancel: Stop,
    /// `desired-count`: (the count set with the new revision, the count before it).
    pub(crate) desired: Option<(i32, i32)>,
    /// The deployment of `revision` that this release's UpdateService started, as ECS answered it
    /// (shared by clones): what a wait looks for, and what an undo tells ECS's own rollback from.
    pub(crate) started: Arc<Mutex<Option<Deployment>>>,
    /// The run's shared service reads, when it waits for several services at once.
    pub(crate) reads: Option<Arc<Reads>>,
}

impl Release<'_> {
    /// How a wait watches this release's service.
    pub(crate) fn watch<'c>(&'c self, ecs: &'c aws_sdk_ecs::Client) -> Watch<'c> {
        Watch {
            ecs,
            cluster: self.cluster,
            service: self.service,
            timeout: self.wait_timeout,
            poll: self.poll,
            reads: self.reads.as_deref(),
        }
    }

    /// The task count that goes with `revision` in an UpdateService: the new count with the new
    /// revision, the previous count with the previous one (an undo puts both back); None keeps it.
    pub(crate) fn count_for(&self, revision: &str) -> Option<i32> {
        self.desired.map(|(new, previous)| if revision == self.revision { new } else { previous })
    }

    /// The one UpdateService that sends the service to `revision`, with the count that goes with it;
    /// the deployment it started, as ECS answered.
    pub(crate) async fn send_to(&self, ecs: &aws_sdk_ecs::Client, revision: &str) -> Result<Option<Deployment>> {
        let started =
            service::update(ecs, self.cluster, self.service, Some(revision), self.count_for(revision)).await?;
        if revision == self.revision {
            *self.started.lock().unwrap_or_else(PoisonError::into_inner) = started.clone();
        }
        Ok(started)
    }

    /// The deployment of the new revision that `send_to` started, if ECS named it.
    pub(crate) fn ours(&self) -> Option<Deployment> {
        self.started.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The command a person runs to put the service back when the undo could not.
    pub(crate) fn restore_command(&self) -> String {
        let count = self.count_for(self.previous).map(|n| format!(" --desired-count {n}")).unwrap_or_default();
        format!(
            "aws ecs update-service --cluster {} --service {} --task-definition {}{count}",
            self.cluster, self.service, self.previous
        )
    }
}

/// Sends the service to the new revision and waits for it, telling `progress` (`gha` prints ECS's
/// own events). Nothing is undone here: a wait that ends any way but stable, including one that
/// could not read the service (a failure), is for the caller to undo.
pub(crate) async fn roll_out(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    progress: &mut impl Progress,
    log: &mut EventLog,
    gha: &Gha,
) -> Result<Wait> {
    let ours = release.send_to(ecs, release.revision).await?;
    Ok(follow(ecs, release, ours, progress, log, gha).await)
}

/// Waits for the deployment of the new revision that `ours` (an UpdateService's or a
/// CreateService's answer) started, telling `progress`.
pub(crate) async fn follow(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    ours: Option<Deployment>,
    progress: &mut impl Progress,
    log: &mut EventLog,
    gha: &Gha,
) -> Wait {
    let name = format!("{}/{}", release.cluster, release.service);
    progress
        .emit(Event::RolloutStarted { service: &name, revision: release.revision, timeout: release.wait_timeout }, &[])
        .await;
    let mut cancel = release.cancel.clone();
    let waited =
        wait(&release.watch(ecs), release.revision, ours.as_ref(), Some(cancel.flag()), log, progress, gha).await;
    match waited {
        Ok(Wait::Stable) => {
            progress.emit(Event::RolloutCompleted { service: &name, revision: release.revision }, &[]).await;
            Wait::Stable
        }
        Ok(Wait::Cancelled) => match cancel.sibling_failed() {
            Some(reason) if !cancel.by_signal() => Wait::Stopped(reason),
            _ => Wait::Cancelled,
        },
        Ok(other) => other,
        Err(e) => Wait::Failed {
            reason: format!("the deployment of {} could not be followed: {e:#}", family_revision(release.revision)),
            ecs_rolled_back: false,
        },
    }
}

/// Puts the service back on `release.previous` with its previous count (a service ECS already took
/// back gets only its count), the call retried like the canary's traffic call, then waits for it
/// unless the run was cancelled: GitHub kills the job seconds after its signal, and ECS finishes the
/// rollback by itself. An undo that cannot be sent says where the service is and how to restore it.
pub(crate) async fn restore(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    reason: &str,
    progress: &mut impl Progress,
    log: &mut EventLog,
    gha: &Gha,
) -> Result<Outcome> {
    let name = format!("{}/{}", release.cluster, release.service);
    let ours = release.ours();
    // A service that cannot be read is sent back all the same: the call is harmless if ECS is
    // already on its way back, and the service may be rolling the new revision out.
    let now = service::describe(ecs, release.cluster, release.service).await;
    let by_ecs = now.as_ref().is_ok_and(|now| ecs_went_back(now, release.previous, ours.as_ref()));
    let event = Event::RollingBack { service: &name, reason, revision: release.previous, by_ecs };
    progress.emit(event, &[]).await;
    let budget = if release.cancel.by_signal() { retry::WITHIN_A_SIGNAL } else { retry::MUST_SUCCEED_FOR };
    let sent = retry::for_up_to(budget, async || match (by_ecs, release.desired) {
        (false, _) => release.send_to(ecs, release.previous).await,
        // ECS's own rollback restores the revision, not the count: that is ours to put back.
        (true, Some((_, previous))) => {
            service::update(ecs, release.cluster, release.service, None, Some(previous)).await
        }
        (true, None) => Ok(now.as_ref().ok().and_then(|s| service::primary(s.deployments()).cloned())),
    })
    .await;
    let back = match sent {
        Ok(back) => back,
        Err(e) => {
            let stands = match &now {
                Ok(s) => where_it_stands(s),
                Err(read) => format!("its state could not be read either ({read:#})"),
            };
            return Ok(Outcome::Failed {
                reason: format!(
                    "{reason}; {name} could not be sent back to {} ({e:#}): {stands}. Restore it with: {}",
                    family_revision(release.previous),
                    release.restore_command()
                ),
            });
        }
    };
    if release.cancel.by_signal() {
        return Ok(Outcome::RolledBack {
            reason: format!(
                "{reason}; {name} is being restored to {} (not waited for: ECS finishes it)",
                family_revision(release.previous)
            ),
            at: None,
        });
    }
    let waited = wait(&release.watch(ecs), release.previous, back.as_ref(), None, log, progress, gha).await;
    match waited {
        Ok(Wait::Stable) => {
            progress.emit(Event::Restored { service: &name, revision: release.previous }, &[]).await;
            Ok(Outcome::RolledBack { reason: reason.to_string(), at: None })
        }
        other => {
            let how = match other {
                Ok(Wait::TimedOut) => {
                    format!("it was not stable within wait-timeout {}", duration::format(release.wait_timeout))
                }
                Ok(Wait::Failed { reason, .. }) => reason,
                Ok(Wait::Stable | Wait::Cancelled | Wait::Stopped(_)) => "it was not waited for".to_string(),
                Err(e) => format!("its progress could not be read ({e:#})"),
            };
            Ok(Outcome::Failed {
                reason: format!(
                    "{reason}; {name} was sent back to {}, but the rollback did not finish ({how}): check the \
                     service in the ECS console; to send it back again: {}",
                    family_revision(release.previous),
                    release.restore_command()
                ),
            })
        }
    }
}

/// ECS itself is already taking the service back to `previous`: its primary deployment runs
/// `previous` and started after ours. Without `ours` (UpdateService named no deployment), a primary
/// on `previous` is taken as ECS's rollback, as before.
fn ecs_went_back(service: &Service, previous: &str, ours: Option<&Deployment>) -> bool {
    let Some(primary) = service::primary(service.deployments()) else { return false };
    primary.task_definition() == Some(previous) && ours.is_none_or(|ours| started_after(primary, ours))
}

/// Where a service stands, in words: its primary deployment's revision, state and tasks.
fn where_it_stands(service: &Service) -> String {
    match service::primary(service.deployments()) {
        Some(p) => format!(
            "its primary deployment runs {} ({}, {} of {} task(s) running)",
            p.task_definition().map(family_revision).unwrap_or("an unknown revision"),
            p.rollout_state().map(|s| s.as_str()).unwrap_or("no rollout state"),
            p.running_count(),
            p.desired_count()
        ),
        None => "it has no primary deployment".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::Deployment;

    use super::*;

    const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
    const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";

    fn deployment(status: &str, td: &str, state: DeploymentRolloutState, running: i32, desired: i32) -> Deployment {
        Deployment::builder()
            .status(status)
            .task_definition(td)
            .rollout_state(state)
            .rollout_state_reason("reason from ECS")
            .running_count(running)
            .desired_count(desired)
            .build()
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service::builder().set_deployments(Some(deployments)).build()
    }

    #[test]
    fn stable_only_when_ours_is_the_only_completed_fully_running_deployment() {
        use DeploymentRolloutState::*;
        let in_progress =
            service(vec![deployment("PRIMARY", NEW, InProgress, 1, 2), deployment("ACTIVE", OLD, Completed, 2, 2)]);
        assert_eq!(judge(&in_progress, NEW, None, &[]), None);
        let draining =
            service(vec![deployment("PRIMARY", NEW, Completed, 2, 2), deployment("ACTIVE", OLD, Completed, 1, 2)]);
        assert_eq!(judge(&draining, NEW, None, &[]), None);
        let done = service(vec![deployment("PRIMARY", NEW, Completed, 2, 2)]);
        assert_eq!(judge(&done, NEW, None, &[]), Some(Wait::Stable));
        let short_of_tasks = service(vec![deployment("PRIMARY", NEW, Completed, 1, 2)]);
        assert_eq!(judge(&short_of_tasks, NEW, None, &[]), None);
    }

    #[test]
    fn a_failed_deployment_reports_whether_ecs_already_rolled_back() {
        use DeploymentRolloutState::*;
        let failed_alone =
            service(vec![deployment("PRIMARY", NEW, Failed, 0, 2), deployment("ACTIVE", OLD, Completed, 2, 2)]);
        assert_eq!(
            judge(&failed_alone, NEW, None, &[]),
            Some(Wait::Failed { reason: "reason from ECS".into(), ecs_rolled_back: false })
        );
        let ecs_rollback =
            service(vec![deployment("PRIMARY", OLD, InProgress, 0, 2), deployment("ACTIVE", NEW, Failed, 0, 2)]);
        assert_eq!(
            judge(&ecs_rollback, NEW, None, &[]),
            Some(Wait::Failed { reason: "reason from ECS".into(), ecs_rolled_back: true })
        );
        let replaced = service(vec![deployment("PRIMARY", OLD, InProgress, 0, 2)]);
        assert!(matches!(judge(&replaced, NEW, None, &[]), Some(Wait::Failed { ecs_rolled_back: true, .. })));
        // Looked at only after ECS's rollback finished: the events seen meanwhile still tell why.
        let seen = ["(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start.".to_string()];
        assert_eq!(
            judge(&replaced, NEW, None, &seen),
            Some(Wait::Failed {
                reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
                ecs_rolled_back: true
            })
        );
    }

    /// A deployment as UpdateService answers it: with its id and when it was created.
    fn started(id: &str, td: &str, state: DeploymentRolloutState, at: i64) -> Deployment {
        Deployment::builder()
            .id(id)
            .status("PRIMARY")
            .task_definition(td)
            .rollout_state(state)
            .running_count(0)
            .desired_count(2)
            .created_at(aws_sdk_ecs::primitives::DateTime::from_secs(at))
            .build()
    }

    #[test]
    fn a_read_that_does_not_show_our_deployment_yet_is_no_news_and_a_newer_one_replaced_it() {
        use DeploymentRolloutState::*;
        let ours = started("ecs-svc/2", NEW, InProgress, 200);
        let mut old = started("ecs-svc/1", OLD, Completed, 100);
        old.running_count = 2;
        // ECS is eventually consistent: the read right after the update still shows only the old one.
        let stale = service(vec![old.clone()]);
        assert_eq!(judge(&stale, NEW, Some(&ours), &[]), None, "a stale read is looked at again");
        assert!(!ecs_went_back(&stale, OLD, Some(&ours)), "an undo after a stale read sends the old revision");
        // A deployment started after ours (somebody else's, or ECS's own rollback) did replace it.
        let replaced = service(vec![started("ecs-svc/3", OLD, InProgress, 300)]);
        assert!(matches!(judge(&replaced, NEW, Some(&ours), &[]), Some(Wait::Failed { ecs_rolled_back: true, .. })));
        assert!(ecs_went_back(&replaced, OLD, Some(&ours)), "ECS's own rollback is not sent again");
        // Ours, found by its id, completes.
        let mut done = ours.clone();
        done.rollout_state = Some(Completed);
        done.running_count = 2;
        assert_eq!(judge(&service(vec![done]), NEW, Some(&ours), &[]), Some(Wait::Stable));
    }

    #[test]
    fn a_service_without_a_rollout_state_is_stable_as_services_stable_judges_it() {
        let classic = |running, deployments: usize| {
            let mut all = vec![
                Deployment::builder()
                    .status("PRIMARY")
                    .task_definition(NEW)
                    .running_count(running)
                    .desired_count(2)
                    .build(),
            ];
            if deployments > 1 {
                all.push(
                    Deployment::builder()
                        .status("ACTIVE")
                        .task_definition(OLD)
                        .running_count(1)
                        .desired_count(2)
                        .build(),
                );
            }
            service(all)
        };
        assert_eq!(judge(&classic(2, 1), NEW, None, &[]), Some(Wait::Stable));
        assert_eq!(judge(&classic(1, 1), NEW, None, &[]), None, "not all tasks running");
        assert_eq!(judge(&classic(2, 2), NEW, None, &[]), None, "the old deployment still runs tasks");
    }

    #[test]
    fn the_restore_command_puts_back_the_revision_and_its_count() {
        let release = Release {
            cluster: "demo",
            service: "web",
            revision: NEW,
            previous: OLD,
            wait_timeout: Duration::from_secs(60),
            poll: Poll::default(),
            cancel: Stop::new(watch::channel(false).1, None),
            desired: Some((4, 2)),
            started: Default::default(),
            reads: None,
        };
        assert_eq!(
            release.restore_command(),
            format!("aws ecs update-service --cluster demo --service web --task-definition {OLD} --desired-count 2")
        );
    }

    #[test]
    fn polling_starts_at_once_and_backs_off_to_the_cap() {
        let poll = Poll::default();
        let mut interval = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..6 {
            interval = poll.next(interval);
            seen.push(interval.as_millis());
        }
        assert_eq!(seen, [1000, 1500, 2000, 2000, 2000, 2000]);
    }
}
