//! What ECS says while we wait: each new service event told once (ecspresso's way), and the stopped
//! reason of each task that stops during the wait, as `EcsSaid` events for the log and the report.

use std::collections::HashSet;

use aws_sdk_ecs::types::{DesiredStatus, Service};

use crate::gha::Gha;
use crate::progress::{Event, Progress};

/// Remembers what was already printed, so every poll prints only what is new.
#[derive(Default)]
pub(crate) struct EventLog {
    /// Whether the events that were there before the run are known. A log made without them (the
    /// first describe failed) takes the first events it sees as old, rather than printing a
    /// service's whole history as news.
    primed: bool,
    seen_events: HashSet<String>,
    seen_tasks: HashSet<String>,
    /// Whether a refused read of the stopped tasks was already told (once a run is enough).
    told_refused: bool,
    /// The last few events, newest first, for the report of a failed deploy.
    pub(crate) recent: Vec<String>,
}

impl EventLog {
    /// Starts with the service's current events marked as seen: only what happens from now is news.
    pub(crate) fn starting_at(service: &Service) -> Self {
        let mut log = EventLog { primed: true, ..EventLog::default() };
        for e in service.events() {
            if let Some(id) = e.id() {
                log.seen_events.insert(id.to_string());
            }
        }
        log
    }

    /// Tells `progress` the service's events not told before, oldest first.
    /// Whether there was anything new to tell.
    pub(crate) async fn tell_new(&mut self, service: &Service, progress: &mut impl Progress) -> bool {
        let lines = self.new_events(service);
        for line in &lines {
            progress.emit(Event::EcsSaid { line }, &[]).await;
        }
        !lines.is_empty()
    }

    /// The service's events not seen before, oldest first, each `HH:MM:SS message`.
    fn new_events(&mut self, service: &Service) -> Vec<String> {
        if !self.primed {
            self.primed = true;
            self.seen_events.extend(service.events().iter().filter_map(|e| e.id()).map(str::to_string));
            return Vec::new();
        }
        let mut new: Vec<(String, String)> = Vec::new();
        for e in service.events() {
            let (Some(id), Some(message)) = (e.id(), e.message()) else { continue };
            if self.seen_events.insert(id.to_string()) {
                let time = e.created_at().map(clock).unwrap_or_default();
                new.push((time, message.to_string()));
            }
        }
        let mut lines = Vec::new();
        for (time, message) in new.into_iter().rev() {
            lines.push(format!("{time} {message}"));
            self.recent.insert(0, message);
            self.recent.truncate(10);
        }
        lines
    }

    /// Tells `progress` why tasks of the service stopped, once per task. Best effort: a failed call
    /// is skipped (a missing permission is said once).
    pub(crate) async fn tell_stopped_tasks(
        &mut self,
        ecs: &aws_sdk_ecs::Client,
        cluster: &str,
        service: &str,
        progress: &mut impl Progress,
        gha: &Gha,
    ) {
        let list =
            ecs.list_tasks().cluster(cluster).service_name(service).desired_status(DesiredStatus::Stopped).send().await;
        let list = match list {
            Ok(list) => list,
            Err(e) => return self.refused("ECS ListTasks", &e, gha),
        };
        let fresh: Vec<String> =
            list.task_arns().iter().filter(|arn| !self.seen_tasks.contains(*arn)).take(100).cloned().collect();
        if fresh.is_empty() {
            return;
        }
        let described = match ecs.describe_tasks().cluster(cluster).set_tasks(Some(fresh.clone())).send().await {
            Ok(described) => described,
            Err(e) => return self.refused("ECS DescribeTasks", &e, gha),
        };
        self.seen_tasks.extend(fresh);
        for task in described.tasks() {
            let id = task.task_arn().and_then(|a| a.rsplit('/').next()).unwrap_or("?");
            let reason = task.stopped_reason().unwrap_or("no reason given");
            let revision = task.task_definition_arn().and_then(|a| a.rsplit('/').next()).unwrap_or("?");
            let containers: Vec<String> = task
                .containers()
                .iter()
                .filter_map(|c| Some(format!("{}: {}", c.name()?, super::stopped::container_end(c)?)))
                .collect();
            let detail = if containers.is_empty() { String::new() } else { format!(" ({})", containers.join("; ")) };
            let line = format!("task {id} ({revision}) stopped: {reason}{detail}");
            progress.emit(Event::EcsSaid { line: &line }, &[]).await;
            self.recent.insert(0, line);
            self.recent.truncate(10);
        }
    }

    /// A read of the stopped tasks that failed: a missing permission is said once (the deploy goes
    /// on without the tasks' reasons); anything else is asked again at the next look.
    fn refused<E, R>(&mut self, operation: &'static str, e: &aws_sdk_ecs::error::SdkError<E, R>, gha: &Gha)
    where
        E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        if crate::aws::is_access_denied(e) && !self.told_refused {
            self.told_refused = true;
            gha.warning(&format!(
                "cannot read the stopped tasks' reasons ({:#}): the log shows ECS's events only; give the role \
                 ecs:ListTasks and ecs:DescribeTasks (`ecs-deploy-action iam-policy` prints the whole policy)",
                crate::aws::call_failed(operation, e)
            ));
        }
    }
}

fn clock(t: &aws_sdk_ecs::primitives::DateTime) -> String {
    let secs = t.secs().rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{Service, ServiceEvent};

    use super::*;

    fn service(ids: &[&str]) -> Service {
        let events =
            ids.iter().map(|id| ServiceEvent::builder().id(*id).message(format!("(service web) event {id}")).build());
        Service::builder().set_events(Some(events.collect())).build()
    }

    #[test]
    fn without_the_starting_events_the_first_ones_seen_are_old_not_retold() {
        let mut log = EventLog::default();
        assert!(log.new_events(&service(&["2", "1"])).is_empty(), "old events told");
        let told = log.new_events(&service(&["3", "2", "1"]));
        assert_eq!(told, [" (service web) event 3"], "{told:?}");
        assert!(log.new_events(&service(&["3", "2", "1"])).is_empty(), "told twice");
        assert_eq!(log.recent, ["(service web) event 3"]);
    }
}
