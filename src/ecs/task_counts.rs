//! A deployment's task counts from one look to the next: what tells a wait that a task of the new
//! revision stopped, so that stopped tasks are asked for only then.

use aws_sdk_ecs::types::Service;

use super::service;

/// A deployment's tasks as counted at one look: (deployment id, running, failed).
pub(crate) type TaskCounts = (String, i32, i32);

pub(crate) fn task_counts(service: &Service) -> Vec<TaskCounts> {
    service
        .deployments()
        .iter()
        .map(|d| (d.id().unwrap_or_default().to_string(), d.running_count(), d.failed_tasks()))
        .collect()
}

/// Whether a task worth a look stopped between two looks: a deployment counted one more failed
/// task, or the primary one (the new revision's) runs fewer. An older deployment's tasks stopping
/// is the rollout itself (ECS's events say so).
pub(crate) fn a_task_stopped(before: &[TaskCounts], now: &[TaskCounts], service: &Service) -> bool {
    let primary = service::primary(service.deployments()).and_then(|d| d.id());
    now.iter().any(|(id, running, failed)| match before.iter().find(|(b, _, _)| b == id) {
        Some((_, r, f)) => failed > f || (Some(id.as_str()) == primary && running < r),
        None => *failed > 0,
    })
}
