//! "It failed, why?": the tasks of the new revision that stopped during the run, each with ECS's
//! stopped reason, every container's exit code and reason (OutOfMemoryError named as such), and the
//! last lines the container logged through `awslogs`. Text from the containers is untrusted: the
//! log shows it with workflow commands stopped, the report as code.

use std::collections::HashMap;

use aws_sdk_ecs::types::{DesiredStatus, TaskDefinition};

use crate::aws::Aws;
use crate::gha::Gha;
use crate::records::{Container, StoppedTask};

/// Tasks and log lines fetched at most: the report is for reading, not an archive.
const TASKS: usize = 3;
const LINES: i32 = 20;

/// Where a container's `awslogs` output goes: (group, stream prefix).
pub(crate) fn log_config(td: &TaskDefinition) -> HashMap<String, (String, String)> {
    td.container_definitions()
        .iter()
        .filter_map(|c| {
            let config = c.log_configuration()?;
            if config.log_driver().as_str() != "awslogs" {
                return None;
            }
            let options = config.options()?;
            let group = options.get("awslogs-group")?.clone();
            // Without a prefix the stream is named after the container's Docker id: not knowable here.
            let prefix = options.get("awslogs-stream-prefix")?.clone();
            Some((c.name()?.to_string(), (group, prefix)))
        })
        .collect()
}

/// How a container ended, in a few words (`exit code 3`, `exit code 1: <ECS's reason>`,
/// `OutOfMemoryError, exit code 137: <ECS's words>`); None when ECS says nothing. The event log's
/// stopped-task lines and the failure explanation both say it this way.
pub(crate) fn container_end(c: &aws_sdk_ecs::types::Container) -> Option<String> {
    Some(match (c.exit_code(), c.reason()) {
        (code, Some(r)) if is_oom(r) => {
            let code = code.map(|c| format!(", exit code {c}")).unwrap_or_default();
            format!("OutOfMemoryError{code}: {}", r.strip_prefix("OutOfMemoryError: ").unwrap_or(r))
        }
        (Some(code), Some(r)) => format!("exit code {code}: {r}"),
        (Some(code), None) => format!("exit code {code}"),
        (None, Some(r)) => r.to_string(),
        (None, None) => return None,
    })
}

fn is_oom(reason: &str) -> bool {
    reason.contains("OutOfMemory")
}

/// `container_end`, with what to do about an out-of-memory kill.
fn ended(c: &aws_sdk_ecs::types::Container) -> String {
    let Some(end) = container_end(c) else { return "no exit code".into() };
    if c.reason().is_some_and(is_oom) {
        return format!(
            "{end} (it needed more memory than its task definition gives it: raise its container's or its \
             task's memory, or find what grows)"
        );
    }
    end
}

/// A task that stopped on its own account (its container exited, it could not start, it failed its
/// health checks), not one the deploy or its undo scaled in: those say nothing about the release.
fn failed(task: &aws_sdk_ecs::types::Task) -> bool {
    use aws_sdk_ecs::types::TaskStopCode;
    let reason = task.stopped_reason().unwrap_or_default();
    matches!(task.stop_code(), Some(TaskStopCode::EssentialContainerExited | TaskStopCode::TaskFailedToStart))
        || reason.contains("health check")
        || task.containers().iter().any(|c| c.reason().is_some_and(is_oom))
}

/// The stopped tasks of `revision` in `services`, newest first, with their containers' last lines.
/// A call that fails leaves a warning (naming the permission for logs) and what was found so far.
pub(crate) async fn explain(
    aws: &Aws,
    cluster: &str,
    services: &[&str],
    revision: &str,
    definition: &TaskDefinition,
    gha: &Gha,
) -> Vec<StoppedTask> {
    let mut arns = Vec::new();
    for service in services {
        let listed = aws
            .ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(*service)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await;
        match listed {
            Ok(out) => arns.extend(out.task_arns().iter().cloned()),
            Err(e) => gha.warning(&format!(
                "could not list the stopped tasks of {service}: {:#}",
                crate::aws::call_failed("ECS ListTasks", &e)
            )),
        }
    }
    if arns.is_empty() {
        return Vec::new();
    }
    arns.truncate(100);
    let described = match aws.ecs.describe_tasks().cluster(cluster).set_tasks(Some(arns)).send().await {
        Ok(out) => out,
        Err(e) => {
            gha.warning(&format!(
                "could not describe the stopped tasks: {:#}",
                crate::aws::call_failed("ECS DescribeTasks", &e)
            ));
            return Vec::new();
        }
    };
    let mut tasks: Vec<_> =
        described.tasks().iter().filter(|t| t.task_definition_arn() == Some(revision) && failed(t)).collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.stopped_at().map(|d| d.secs()).unwrap_or_default()));
    let logs = log_config(definition);
    let mut warned = false;
    let mut out = Vec::new();
    for task in tasks.into_iter().take(TASKS) {
        let id = task.task_arn().and_then(|a| a.rsplit('/').next()).unwrap_or("?").to_string();
        let mut containers = Vec::new();
        for c in task.containers() {
            let name = c.name().unwrap_or("?").to_string();
            let mut last_lines = Vec::new();
            if let Some((group, prefix)) = logs.get(&name) {
                let stream = format!("{prefix}/{name}/{id}");
                let read = aws
                    .logs
                    .get_log_events()
                    .log_group_name(group)
                    .log_stream_name(&stream)
                    .limit(LINES)
                    .start_from_head(false)
                    .send()
                    .await;
                match read {
                    Ok(events) => {
                        last_lines = events.events().iter().filter_map(|e| e.message()).map(str::to_string).collect()
                    }
                    Err(e) if !warned => {
                        warned = true;
                        gha.warning(&format!(
                            "could not read the stopped tasks' logs ({:#}): the role needs logs:GetLogEvents on {group}",
                            crate::aws::call_failed("CloudWatch Logs GetLogEvents", &e)
                        ));
                    }
                    Err(_) => {}
                }
            }
            containers.push(Container { name, ended: ended(c), last_lines });
        }
        out.push(StoppedTask {
            id,
            revision: crate::text::family_revision(revision).to_string(),
            reason: task.stopped_reason().unwrap_or("no reason given").to_string(),
            containers,
        });
    }
    out
}

/// The stopped tasks in the log, in a group, their containers' lines inert.
pub(crate) fn print(tasks: &[StoppedTask], gha: &Gha) {
    if tasks.is_empty() {
        return;
    }
    let _group = gha.group("Why the new revision's tasks stopped");
    for task in tasks {
        gha.info(&format!("task {} ({}): {}", task.id, task.revision, task.reason));
        for c in &task.containers {
            gha.info(&format!("  {}: {}", c.name, c.ended));
            if !c.last_lines.is_empty() {
                gha.info(&format!("  last {} line(s) {} logged:", c.last_lines.len(), c.name));
                let _inert = gha.stop_commands();
                for line in &c.last_lines {
                    gha.info(&format!("    {line}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_memory_kill_is_named_as_such() {
        let oom = aws_sdk_ecs::types::Container::builder()
            .name("web")
            .exit_code(137)
            .reason("OutOfMemoryError: Container killed due to memory usage")
            .build();
        assert_eq!(
            ended(&oom),
            "OutOfMemoryError, exit code 137: Container killed due to memory usage (it needed more memory than its \
             task definition gives it: raise its container's or its task's memory, or find what grows)"
        );
        let crashed = aws_sdk_ecs::types::Container::builder().name("web").exit_code(3).build();
        assert_eq!(ended(&crashed), "exit code 3");
        // The event log's lines say it the same way, without the advice.
        assert_eq!(
            container_end(&oom).as_deref(),
            Some("OutOfMemoryError, exit code 137: Container killed due to memory usage")
        );
        let killed = aws_sdk_ecs::types::Container::builder().name("web").exit_code(1).reason("Task stopped").build();
        assert_eq!(container_end(&killed).as_deref(), Some("exit code 1: Task stopped"));
        assert_eq!(container_end(&aws_sdk_ecs::types::Container::builder().name("web").build()), None);
    }

    #[test]
    fn tasks_the_deploy_scaled_in_are_not_failures() {
        use aws_sdk_ecs::types::{Task, TaskStopCode};
        let scaled_in = Task::builder()
            .stop_code(TaskStopCode::ServiceSchedulerInitiated)
            .stopped_reason("Scaling activity initiated by (deployment ecs-svc/1)")
            .build();
        assert!(!failed(&scaled_in));
        let exited = Task::builder().stop_code(TaskStopCode::EssentialContainerExited).build();
        assert!(failed(&exited));
        let unhealthy = Task::builder()
            .stop_code(TaskStopCode::ServiceSchedulerInitiated)
            .stopped_reason("Task failed ELB health checks in (target-group arn:…)")
            .build();
        assert!(failed(&unhealthy));
    }
}
