//! The pre-deploy task: the new revision run once (RunTask, with the stable service's network and
//! launch settings and the command overriding one container's), its CloudWatch Logs streamed into the
//! job log while it runs, and its exit code deciding whether the deploy goes on. Database migrations
//! run here, before any service changes.

use std::time::Duration;

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ContainerOverride, LaunchType, NetworkConfiguration, TaskDefinition, TaskOverride,
    TaskStopCode,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::poll::{Check, Poll, Polled, poll_until};
use super::stopped;
use crate::aws::{Aws, call_failed};
use crate::config::duration;
use crate::gha::Gha;
use crate::records::{Container, StoppedTask};

/// How the stable service runs its tasks, for running the new revision the same way.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RunAs {
    pub(crate) network: Option<NetworkConfiguration>,
    pub(crate) launch_type: Option<LaunchType>,
    pub(crate) capacity: Vec<CapacityProviderStrategyItem>,
}

pub(crate) struct PreDeployTask<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) revision: &'a str,
    pub(crate) definition: &'a TaskDefinition,
    pub(crate) container: &'a str,
    pub(crate) command: &'a [String],
    pub(crate) run_as: &'a RunAs,
    pub(crate) timeout: Duration,
    pub(crate) poll: Poll,
}

/// Why the pre-deploy task stopped the deploy, with what it said when it got to run.
pub(crate) struct Refusal {
    pub(crate) reason: String,
    pub(crate) task: Option<StoppedTask>,
}

/// Runs the task to its end; Ok when it exits 0.
pub(crate) async fn run(
    aws: &Aws,
    o: &PreDeployTask<'_>,
    cancel: &mut watch::Receiver<bool>,
    gha: &Gha,
) -> Result<(), Refusal> {
    let refuse = |reason: String| Refusal { reason, task: None };
    let command = o.command.join(" ");
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder().name(o.container).set_command(Some(o.command.to_vec())).build(),
        )
        .build();
    let started = aws
        .ecs
        .run_task()
        .cluster(o.cluster)
        .task_definition(o.revision)
        .overrides(overrides)
        .set_network_configuration(o.run_as.network.clone())
        .set_launch_type(if o.run_as.capacity.is_empty() { o.run_as.launch_type.clone() } else { None })
        .set_capacity_provider_strategy((!o.run_as.capacity.is_empty()).then(|| o.run_as.capacity.clone()))
        .started_by("ecs-deploy-action")
        .send()
        .await
        .map_err(|e| {
            refuse(format!("the pre-deploy task could not be started: {:#}", call_failed("ECS RunTask", &e)))
        })?;
    if let Some(failure) = started.failures().first() {
        return Err(refuse(format!(
            "the pre-deploy task could not be started: {}",
            failure.reason().unwrap_or("ECS gave no reason")
        )));
    }
    let arn = started
        .tasks()
        .first()
        .and_then(|t| t.task_arn())
        .ok_or_else(|| refuse("ECS started no pre-deploy task".into()))?
        .to_string();
    let id = arn.rsplit('/').next().unwrap_or("?").to_string();
    let stream = stopped::log_config(o.definition)
        .get(o.container)
        .map(|(group, prefix)| (group.clone(), format!("{prefix}/{}/{id}", o.container)));
    let _group = gha.group(&format!("Pre-deploy: {command} (task {id})"));
    let mut lines: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    let mut told = false;
    // The one wait of the action: a failed look is retried, four in a row end it; a missing
    // permission will not come back by itself and ends it at once.
    let (ecs, cluster) = (&aws.ecs, o.cluster);
    let polled = poll_until(o.timeout, o.poll, Some(cancel), async || {
        if let Some((group, name)) = &stream {
            read_new(aws, group, name, &mut token, &mut lines, &mut told, gha).await;
        }
        match ecs.describe_tasks().cluster(cluster).tasks(&arn).send().await {
            Ok(out) => Ok(match out.tasks().first() {
                Some(task) if task.last_status() == Some("STOPPED") => Check::Done(Ok(task.clone())),
                _ => Check::NotYet(()),
            }),
            Err(e) => {
                let error = call_failed("ECS DescribeTasks", &e);
                if crate::aws::is_access_denied(&e) {
                    return Ok(Check::Done(Err(format!("could not be watched ({error:#})"))));
                }
                gha.warning(&format!("{error:#}; looking again"));
                Err(error)
            }
        }
    })
    .await;
    let ended = match polled {
        Ok(Polled::Done(ended)) => ended,
        Ok(Polled::TimedOut(_)) => Err(format!("did not end within wait-timeout {}", duration::format(o.timeout))),
        Ok(Polled::Cancelled) => Err("was cancelled (SIGINT/SIGTERM)".into()),
        Err(e) => Err(format!("could not be watched ({e:#})")),
    };
    let task = match ended {
        Ok(task) => task,
        Err(why) => {
            let stop =
                aws.ecs.stop_task().cluster(o.cluster).task(&arn).reason(format!("ecs-deploy-action: {why}")).send();
            let stopped = match stop.await {
                Ok(_) => "it was stopped".to_string(),
                Err(e) => {
                    format!("stopping it failed too ({:#}): stop task {id} by hand", call_failed("ECS StopTask", &e))
                }
            };
            return Err(Refusal { reason: format!("the pre-deploy command `{command}` {why}; {stopped}"), task: None });
        }
    };
    // CloudWatch Logs trails the task by a moment: read until two reads in a row bring nothing (3 s at most).
    if let Some((group, name)) = &stream {
        let (mut quiet, settle) = (0, Instant::now() + Duration::from_secs(3));
        while quiet < 2 && Instant::now() < settle {
            let before = lines.len();
            read_new(aws, group, name, &mut token, &mut lines, &mut told, gha).await;
            quiet = if lines.len() == before { quiet + 1 } else { 0 };
            crate::clock::sleep(Duration::from_millis(200)).await;
        }
    }
    let container = task.containers().iter().find(|c| c.name() == Some(o.container));
    let exit = container.and_then(|c| c.exit_code());
    let tail: Vec<String> = lines.iter().skip(lines.len().saturating_sub(20)).cloned().collect();
    let summary = StoppedTask {
        id: id.clone(),
        revision: crate::text::family_revision(o.revision).to_string(),
        reason: format!("pre-deploy command `{command}`: {}", task.stopped_reason().unwrap_or("stopped")),
        containers: vec![Container {
            name: o.container.to_string(),
            ended: exit.map_or_else(|| "no exit code".to_string(), |c| format!("exit code {c}")),
            last_lines: tail,
        }],
    };
    match exit {
        Some(0) if ended_on_its_own(&task) => {
            gha.info(&format!("pre-deploy command `{command}` exited 0: the deploy goes on"));
            Ok(())
        }
        // Stopped from outside (StopTask, a Spot interruption, a scale-in): a process that exits 0
        // on SIGTERM did not finish its work.
        Some(0) => Err(Refusal {
            reason: format!(
                "the pre-deploy command `{command}` exited 0 but did not end on its own: ECS stopped the task ({}: \
                 {}), so it may not have finished and no service was changed",
                task.stop_code().map(|c| c.as_str()).unwrap_or("no stop code"),
                task.stopped_reason().unwrap_or("no reason given")
            ),
            task: Some(summary),
        }),
        Some(code) => Err(Refusal {
            reason: format!("the pre-deploy command `{command}` exited {code}, so no service was changed"),
            task: Some(summary),
        }),
        None => Err(Refusal {
            reason: format!(
                "the pre-deploy task stopped without an exit code ({}), so no service was changed",
                task.stopped_reason().unwrap_or("no reason given")
            ),
            task: Some(summary),
        }),
    }
}

/// The task stopped because its essential container exited, not because something stopped it.
fn ended_on_its_own(task: &aws_sdk_ecs::types::Task) -> bool {
    task.stop_code() == Some(&TaskStopCode::EssentialContainerExited)
}

/// The stream's lines since `token`, printed as they come (inert) and kept.
async fn read_new(
    aws: &Aws,
    group: &str,
    stream: &str,
    token: &mut Option<String>,
    lines: &mut Vec<String>,
    told: &mut bool,
    gha: &Gha,
) {
    loop {
        let read = aws
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match read {
            Ok(out) => out,
            Err(e) => {
                // The command runs on; only its output is missing. A missing permission is said once.
                if crate::aws::is_access_denied(&e) && !*told {
                    *told = true;
                    let error = call_failed("CloudWatch Logs GetLogEvents", &e);
                    gha.warning(&format!(
                        "cannot show the pre-deploy command's output ({error:#}): the role needs logs:GetLogEvents on {group}"
                    ));
                }
                return;
            }
        };
        let new: Vec<String> = out.events().iter().filter_map(|e| e.message()).map(str::to_string).collect();
        let same = out.next_forward_token().map(str::to_string) == *token;
        *token = out.next_forward_token().map(str::to_string);
        if !new.is_empty() {
            let _inert = gha.stop_commands();
            for line in &new {
                gha.info(line);
            }
        }
        lines.extend(new);
        if same || out.events().is_empty() {
            return;
        }
    }
}
