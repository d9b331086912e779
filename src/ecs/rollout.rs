//! The rolling deploy: register the rendered revision, update the service, wait until ECS reports the
//! new deployment PRIMARY, COMPLETED and fully running, and undo it when it fails or times out.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_sdk_ecs::types::{DeploymentRolloutState, Service, Tag, TaskDefinition};

use super::events::EventLog;
pub(crate) use super::poll::Poll;
use super::poll::{Check, Polled, poll_until};
use super::service;
use crate::aws::call_failed;
use crate::config::duration;
use crate::gha::Gha;
use crate::outcome::Outcome;
use crate::progress::{Event, Progress};
use tokio::sync::watch;

use crate::stop::Stop;

/// Registers `task_definition` (already stripped of read-only fields) with `tags`; returns its ARN.
pub(crate) async fn register(ecs: &aws_sdk_ecs::Client, td: &TaskDefinition, tags: &[Tag]) -> Result<String> {
    if !td.inference_accelerators().is_empty() {
        // Refused rather than dropped: a revision without them would not be the one the user wrote.
        return Err(anyhow!(
            "the task definition has `inferenceAccelerators`, and Amazon Elastic Inference is no longer \
             available (ECS ignores or refuses them): remove `inferenceAccelerators` from the task definition"
        ));
    }
    let out = ecs
        .register_task_definition()
        .set_family(td.family.clone())
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_container_definitions(td.container_definitions.clone())
        .set_volumes(td.volumes.clone())
        .set_placement_constraints(td.placement_constraints.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
        .set_pid_mode(td.pid_mode.clone())
        .set_ipc_mode(td.ipc_mode.clone())
        .set_proxy_configuration(td.proxy_configuration.clone())
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .set_enable_fault_injection(td.enable_fault_injection)
        .send()
        .await
        .map_err(|e| {
            let hint = if crate::aws::is_access_denied(&e) {
                " (the role needs ecs:RegisterTaskDefinition, and iam:PassRole for the task and execution roles)"
            } else {
                ""
            };
            call_failed("ECS RegisterTaskDefinition", &e)
                .context(format!("could not register the new task definition revision{hint}"))
        })?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("ECS registered the task definition but returned no ARN"))
}

/// How a wait for a deployment ended.
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
}

/// What ECS reports about the deployment of `revision`, judged once.
/// `seen`: ECS's events since the deploy began, newest first: when the deployment is gone because the
/// circuit breaker rolled it back, they say so, however late the service is looked at.
pub(crate) fn judge(service: &Service, revision: &str, seen: &[String]) -> Option<Wait> {
    let deployments = service.deployments();
    let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"))?;
    let ours = deployments.iter().find(|d| d.task_definition() == Some(revision));
    match ours {
        Some(d) if d.rollout_state() == Some(&DeploymentRolloutState::Failed) => Some(Wait::Failed {
            reason: d.rollout_state_reason().unwrap_or("the deployment failed").to_string(),
            ecs_rolled_back: primary.task_definition() != Some(revision),
        }),
        None if let Some(why) = seen.iter().find_map(|e| e.split_once("deployment failed: ")) => {
            Some(Wait::Failed { reason: format!("ECS deployment circuit breaker: {}", why.1), ecs_rolled_back: true })
        }
        None => Some(Wait::Failed {
            reason: format!(
                "the service now runs {}: another deployment replaced this one",
                primary.task_definition().and_then(|t| t.rsplit('/').next()).unwrap_or("another revision")
            ),
            ecs_rolled_back: true,
        }),
        Some(_) if primary.task_definition() != Some(revision) => None,
        Some(_) => {
            let done = primary.rollout_state() == Some(&DeploymentRolloutState::Completed)
                && deployments.len() == 1
                && primary.running_count() == primary.desired_count();
            done.then_some(Wait::Stable)
        }
    }
}

/// One service being watched: where it is, how long a wait may take, how often to look.
pub(crate) struct Watch<'a> {
    pub(crate) ecs: &'a aws_sdk_ecs::Client,
    pub(crate) cluster: &'a str,
    pub(crate) service: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) poll: Poll,
}

/// Polls until the deployment of `revision` is stable, failed, or the timeout has passed, printing
/// ECS's events and stopped tasks as they come.
pub(crate) async fn wait(
    w: &Watch<'_>,
    revision: &str,
    cancel: Option<&mut watch::Receiver<bool>>,
    log: &mut EventLog,
    gha: &Gha,
) -> Result<Wait> {
    let (ecs, cluster, name) = (w.ecs, w.cluster, w.service);
    let polled = poll_until(w.timeout, w.poll, cancel, async || {
        let service = service::describe(ecs, cluster, name).await?;
        log.print_new(&service, gha);
        if let Some(outcome) = judge(&service, revision, &log.recent) {
            return Ok(Check::Done(outcome));
        }
        log.print_stopped_tasks(ecs, cluster, name, gha).await;
        Ok(Check::NotYet(()))
    })
    .await?;
    Ok(match polled {
        Polled::Done(outcome) => outcome,
        Polled::TimedOut(_) => Wait::TimedOut,
        Polled::Cancelled => Wait::Cancelled,
    })
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
}

impl Release<'_> {
    /// How a wait watches this release's service.
    pub(crate) fn watch<'c>(&'c self, ecs: &'c aws_sdk_ecs::Client) -> Watch<'c> {
        Watch { ecs, cluster: self.cluster, service: self.service, timeout: self.wait_timeout, poll: self.poll }
    }

    /// The task count that goes with `revision` in an UpdateService: the new count with the new
    /// revision, the previous count with the previous one (an undo puts both back); None keeps it.
    pub(crate) fn count_for(&self, revision: &str) -> Option<i32> {
        self.desired.map(|(new, previous)| if revision == self.revision { new } else { previous })
    }

    /// The one UpdateService that sends the service to `revision`, with the count that goes with it.
    pub(crate) async fn send_to(&self, ecs: &aws_sdk_ecs::Client, revision: &str) -> Result<()> {
        service::update(ecs, self.cluster, self.service, Some(revision), self.count_for(revision)).await
    }
}

/// A rolling deploy of an already registered revision.
pub(crate) struct Rolling<'a> {
    pub(crate) release: Release<'a>,
    pub(crate) rollback: bool,
}

/// How a rollout ended, before any undo.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rolled {
    Stable,
    /// It failed or timed out. Whether ECS already went back, `restore` reads from the service.
    Failed {
        reason: String,
    },
    /// SIGINT/SIGTERM arrived first.
    Cancelled,
    /// Another service of the run failed first (its reason).
    Stopped(String),
}

/// Sends the service to the new revision and waits for it, telling `progress` (`gha` prints ECS's
/// own events). Nothing is undone here.
pub(crate) async fn roll_out(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    progress: &mut impl Progress,
    log: &mut EventLog,
    gha: &Gha,
) -> Result<Rolled> {
    let name = format!("{}/{}", release.cluster, release.service);
    release.send_to(ecs, release.revision).await?;
    progress
        .emit(Event::RolloutStarted { service: &name, revision: release.revision, timeout: release.wait_timeout }, &[])
        .await;
    let mut cancel = release.cancel.clone();
    Ok(match wait(&release.watch(ecs), release.revision, Some(cancel.flag()), log, gha).await? {
        Wait::Stable => {
            progress.emit(Event::RolloutCompleted { service: &name, revision: release.revision }, &[]).await;
            Rolled::Stable
        }
        Wait::TimedOut => Rolled::Failed {
            reason: format!(
                "the deployment did not become stable within wait-timeout {}",
                duration::format(release.wait_timeout)
            ),
        },
        Wait::Failed { reason, .. } => Rolled::Failed { reason },
        Wait::Cancelled => match cancel.sibling_failed() {
            Some(reason) if !cancel.by_signal() => Rolled::Stopped(reason),
            _ => Rolled::Cancelled,
        },
    })
}

/// Puts the service back on `release.previous` with its previous count (a service ECS already took
/// back gets only its count), then waits for it unless the run was cancelled: GitHub kills the job
/// seconds after its signal, and ECS finishes the rollback by itself.
pub(crate) async fn restore(
    ecs: &aws_sdk_ecs::Client,
    release: &Release<'_>,
    reason: &str,
    progress: &mut impl Progress,
    log: &mut EventLog,
    gha: &Gha,
) -> Result<Outcome> {
    let name = format!("{}/{}", release.cluster, release.service);
    let now = service::describe(ecs, release.cluster, release.service).await?;
    let primary = now.deployments().iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.task_definition());
    let by_ecs = primary == Some(release.previous);
    let event = Event::RollingBack { service: &name, reason, revision: release.previous, by_ecs };
    progress.emit(event, &[]).await;
    if !by_ecs {
        release.send_to(ecs, release.previous).await.context("the rollback could not be started")?;
    } else if let Some((_, previous)) = release.desired {
        // ECS's own rollback restores the revision, not the count: that is ours to put back.
        service::update(ecs, release.cluster, release.service, None, Some(previous))
            .await
            .context("the previous task count could not be restored")?;
    }
    if release.cancel.by_signal() {
        return Ok(Outcome::RolledBack {
            reason: format!(
                "{reason}; {name} is being restored to {} (not waited for: ECS finishes it)",
                short(release.previous)
            ),
            at: None,
        });
    }
    match wait(&release.watch(ecs), release.previous, None, log, gha).await? {
        Wait::Stable => {
            progress.emit(Event::Restored { service: &name, revision: release.previous }, &[]).await;
            Ok(Outcome::RolledBack { reason: reason.to_string(), at: None })
        }
        other => Ok(Outcome::Failed {
            reason: format!(
                "{reason}; the rollback of {name} to {} did not finish either ({other:?}): check the service in the ECS console",
                short(release.previous)
            ),
        }),
    }
}

/// Rolls `r.release.revision` out, and with `rollback` undoes it when it fails, times out or is
/// stopped, telling `progress` what happens (`gha` prints ECS's own events).
pub(crate) async fn rolling(
    ecs: &aws_sdk_ecs::Client,
    r: &Rolling<'_>,
    progress: &mut impl Progress,
    gha: &Gha,
) -> Result<(Outcome, EventLog)> {
    let current = service::describe(ecs, r.release.cluster, r.release.service).await?;
    let mut log = EventLog::starting_at(&current);
    let reason = match roll_out(ecs, &r.release, progress, &mut log, gha).await? {
        Rolled::Stable => return Ok((Outcome::Succeeded, log)),
        Rolled::Failed { reason } | Rolled::Stopped(reason) => reason,
        Rolled::Cancelled => crate::signals::CANCELLED_REASON.to_string(),
    };
    if !r.rollback {
        progress.emit(Event::RolloutLeft { reason: &reason }, &[]).await;
        let reason = if r.release.cancel.by_signal() {
            format!("{reason}; ECS goes on with the deployment of {}", short(r.release.revision))
        } else {
            reason
        };
        return Ok((Outcome::Failed { reason }, log));
    }
    let outcome = restore(ecs, &r.release, &reason, progress, &mut log, gha).await?;
    Ok((outcome, log))
}

/// `family:revision` from a task definition ARN.
pub(crate) fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
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
        assert_eq!(judge(&in_progress, NEW, &[]), None);
        let draining =
            service(vec![deployment("PRIMARY", NEW, Completed, 2, 2), deployment("ACTIVE", OLD, Completed, 1, 2)]);
        assert_eq!(judge(&draining, NEW, &[]), None);
        let done = service(vec![deployment("PRIMARY", NEW, Completed, 2, 2)]);
        assert_eq!(judge(&done, NEW, &[]), Some(Wait::Stable));
        let short_of_tasks = service(vec![deployment("PRIMARY", NEW, Completed, 1, 2)]);
        assert_eq!(judge(&short_of_tasks, NEW, &[]), None);
    }

    #[test]
    fn a_failed_deployment_reports_whether_ecs_already_rolled_back() {
        use DeploymentRolloutState::*;
        let failed_alone =
            service(vec![deployment("PRIMARY", NEW, Failed, 0, 2), deployment("ACTIVE", OLD, Completed, 2, 2)]);
        assert_eq!(
            judge(&failed_alone, NEW, &[]),
            Some(Wait::Failed { reason: "reason from ECS".into(), ecs_rolled_back: false })
        );
        let ecs_rollback =
            service(vec![deployment("PRIMARY", OLD, InProgress, 0, 2), deployment("ACTIVE", NEW, Failed, 0, 2)]);
        assert_eq!(
            judge(&ecs_rollback, NEW, &[]),
            Some(Wait::Failed { reason: "reason from ECS".into(), ecs_rolled_back: true })
        );
        let replaced = service(vec![deployment("PRIMARY", OLD, InProgress, 0, 2)]);
        assert!(matches!(judge(&replaced, NEW, &[]), Some(Wait::Failed { ecs_rolled_back: true, .. })));
        // Looked at only after ECS's rollback finished: the events seen meanwhile still tell why.
        let seen = ["(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start.".to_string()];
        assert_eq!(
            judge(&replaced, NEW, &seen),
            Some(Wait::Failed {
                reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
                ecs_rolled_back: true
            })
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

#[cfg(test)]
mod field_tests {
    use aws_sdk_ecs::types::TaskDefinition;

    /// Every field of the SDK's `TaskDefinition` that `register` sends. With `READ_ONLY_FIELDS` (what ECS
    /// sets itself) they name all of its fields, and a test fails when the SDK adds one: a field nobody
    /// handles would otherwise be dropped silently from every revision we register. (The SDK's types are
    /// `#[non_exhaustive]`, so a destructure without `..` cannot compile outside its crate; their Debug
    /// field names are the check that can.)
    const REGISTERED_FIELDS: &[&str] = &[
        "family",
        "task_role_arn",
        "execution_role_arn",
        "network_mode",
        "container_definitions",
        "volumes",
        "placement_constraints",
        "requires_compatibilities",
        "cpu",
        "memory",
        "pid_mode",
        "ipc_mode",
        "proxy_configuration",
        "ephemeral_storage",
        "runtime_platform",
        "enable_fault_injection",
    ];

    /// Fields `register` refuses: Elastic Inference is retired (the SDK deprecates the setter).
    const REFUSED_FIELDS: &[&str] = &["inference_accelerators"];

    /// Fields of `TaskDefinition` that ECS sets and refuses on RegisterTaskDefinition.
    const READ_ONLY_FIELDS: &[&str] = &[
        "task_definition_arn",
        "revision",
        "status",
        "requires_attributes",
        "compatibilities",
        "registered_at",
        "deregistered_at",
        "delete_requested_at",
        "registered_by",
    ];

    /// The field names of the SDK's `TaskDefinition`, read from its derived Debug output.
    fn sdk_fields() -> Vec<String> {
        let debug = format!("{:?}", TaskDefinition::builder().build());
        let inner = debug.trim_start_matches("TaskDefinition {").trim_end_matches('}');
        inner.split(", ").filter_map(|f| f.split_once(':')).map(|(name, _)| name.trim().to_string()).collect()
    }

    #[test]
    fn every_task_definition_field_is_registered_or_read_only() {
        let fields = sdk_fields();
        assert!(fields.len() > 20, "could not read the fields: {fields:?}");
        let unhandled: Vec<&String> = fields
            .iter()
            .filter(|f| ![REGISTERED_FIELDS, REFUSED_FIELDS, READ_ONLY_FIELDS].iter().any(|l| l.contains(&f.as_str())))
            .collect();
        assert!(
            unhandled.is_empty(),
            "the SDK's TaskDefinition has fields `register` neither sends nor strips: {unhandled:?}; \
             send them in ecs::rollout::register and list them in REGISTERED_FIELDS"
        );
        let gone: Vec<&&str> = [REGISTERED_FIELDS, REFUSED_FIELDS, READ_ONLY_FIELDS]
            .iter()
            .flat_map(|l| l.iter())
            .filter(|f| !fields.iter().any(|g| g == **f))
            .collect();
        assert!(gone.is_empty(), "listed but not in the SDK any more: {gone:?}");
    }
}
