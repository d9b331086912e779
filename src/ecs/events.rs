//! What ECS says while we wait: each new service event printed once (ecspresso's way), and the
//! stopped reason of each task that stops during the wait.

use std::collections::HashSet;

use aws_sdk_ecs::types::{DesiredStatus, Service};

use crate::gha::Gha;

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

    /// Prints the service's events not printed before, oldest first.
    pub(crate) fn print_new(&mut self, service: &Service, gha: &Gha) {
        if !self.primed {
            self.primed = true;
            self.seen_events.extend(service.events().iter().filter_map(|e| e.id()).map(str::to_string));
            return;
        }
        let mut new: Vec<(String, String)> = Vec::new();
        for e in service.events() {
            let (Some(id), Some(message)) = (e.id(), e.message()) else { continue };
            if self.seen_events.insert(id.to_string()) {
                let time = e.created_at().map(clock).unwrap_or_default();
                new.push((time, message.to_string()));
            }
        }
        for (time, message) in new.into_iter().rev() {
            gha.info(&format!("{time} {message}"));
            self.recent.insert(0, message);
            self.recent.truncate(10);
        }
    }

    /// Prints why tasks of the service stopped, once per task. Best effort: a failed call is skipped.
    pub(crate) async fn print_stopped_tasks(
        &mut self,
        ecs: &aws_sdk_ecs::Client,
        cluster: &str,
        service: &str,
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
            gha.info(&line);
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
    use std::sync::{Arc, Mutex};

    use aws_sdk_ecs::types::{Service, ServiceEvent};

    use super::*;
    use crate::gha::Sink;

    fn service(ids: &[&str]) -> Service {
        let events =
            ids.iter().map(|id| ServiceEvent::builder().id(*id).message(format!("(service web) event {id}")).build());
        Service::builder().set_events(Some(events.collect())).build()
    }

    #[test]
    fn without_the_starting_events_the_first_ones_seen_are_old_not_reprinted() {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink: Sink = buf.clone();
        let gha = Gha::new(false, sink, None, None);
        let mut log = EventLog::default();
        log.print_new(&service(&["2", "1"]), &gha);
        log.print_new(&service(&["3", "2", "1"]), &gha);
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("event 1") && !text.contains("event 2"), "old events reprinted:\n{text}");
        assert_eq!(text.matches("event 3").count(), 1, "{text}");
    }
}
