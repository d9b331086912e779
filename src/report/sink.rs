//! The report as a sink of the run's events: each event the comment, the Deployment or the summary
//! shows becomes an update for the reporter's task. `emit` sends and returns: it never waits on
//! GitHub, so a sink can sit beside the traffic calls.

use tokio::sync::mpsc;

use super::task::Update;
use crate::progress::{Event, Progress};
use crate::records::StepRecord;
use crate::text::family_revision;

/// One handle on the reporter's task (`report::spawn`); clones share it, one per service.
#[derive(Clone)]
pub(crate) struct Report(pub(super) mpsc::UnboundedSender<Update>);

impl Progress for Report {
    async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]) {
        if let Some(update) = update(event, table) {
            // A reporter that is gone (its task ended) has nothing left to show.
            let _ = self.0.send(update);
        }
    }
}

/// What the report makes of an event: the comment follows a stage's or step's start, a promotion, a
/// rollout's start, an abort's traffic call and every service's state; the rest is kept for the end.
fn update(event: Event<'_>, table: &[StepRecord]) -> Option<Update> {
    let progress = |what: String| Some(Update::Progress { what, steps: Some(table.to_vec()) });
    match event {
        Event::StepStarted { step, total, weight, .. } => {
            progress(format!("canary step {} of {total} ({weight}%)", step + 1))
        }
        Event::Promoting { service, revision } => {
            progress(format!("promoting {service} to {}", family_revision(revision)))
        }
        Event::RolloutStarted { revision, .. } => progress(format!("rolling out {}", family_revision(revision))),
        Event::EcsStage { stage, production, paused, .. } => {
            let pause = if paused { ", paused for the gates" } else { "" };
            progress(format!(
                "ECS: {} (green {production}% of production{pause})",
                stage.to_lowercase().replace('_', " ")
            ))
        }
        Event::Aborting { traffic_back: true, .. } => {
            progress("aborting: traffic is back on the stable service".into())
        }
        Event::Aborting { traffic_back: false, .. } => {
            progress("aborting: traffic could not be put back on the stable service".into())
        }
        Event::StageStarted { what } => Some(Update::Progress { what: what.to_string(), steps: None }),
        Event::Planned { previous, plan, gates, strategy, url } => Some(Update::Planned {
            url: url.map(str::to_string),
            strategy: strategy.to_string(),
            previous: family_revision(previous).to_string(),
            plan: plan.map(str::to_string),
            gates: gates.map(str::to_string),
        }),
        Event::ImageReady { uri, build } => Some(Update::Image(uri.to_string(), build.map(str::to_string))),
        Event::Registered { service, revision, previous } => Some(Update::Registered {
            service: service.to_string(),
            revision: family_revision(revision).to_string(),
            previous: family_revision(previous).to_string(),
        }),
        Event::ServiceState { service, state } => {
            Some(Update::ServiceState { service: service.to_string(), state: state.to_string() })
        }
        Event::TasksStopped { tasks } => Some(Update::Stopped(tasks.to_vec())),
        Event::StrategiesEnded { events } => Some(Update::Deployed { steps: table.to_vec(), events: events.to_vec() }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    /// Issue 23.3: a sink whose reporter is busy (nobody reads) takes an event and returns at once.
    #[test]
    fn an_event_is_handed_over_without_waiting_for_the_reporter() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = Report(tx);
        let revision = "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:8";
        let previous = "arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7";
        let registered = Event::Registered { service: "worker", revision, previous };
        assert!(sink.emit(registered, &[]).now_or_never().is_some(), "emit waited");
        assert!(sink.emit(Event::Cancelled, &[]).now_or_never().is_some());
        let rolling = Event::RolloutStarted { service: "demo/web", revision, timeout: std::time::Duration::ZERO };
        assert!(sink.emit(rolling, &[]).now_or_never().is_some());
        match rx.try_recv() {
            Ok(Update::Registered { service, revision, previous }) => {
                assert_eq!(
                    (service.as_str(), revision.as_str(), previous.as_str()),
                    ("worker", "worker:8", "worker:7")
                );
            }
            other => panic!("{other:?}"),
        }
        // The log's events that the comment does not show are not sent.
        match rx.try_recv() {
            Ok(Update::Progress { what, .. }) => assert_eq!(what, "rolling out worker:8"),
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err());
    }
}
