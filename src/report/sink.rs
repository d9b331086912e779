//! The report as a sink of the run's events: the comment and Deployment follow a step's start, a
//! promotion, a rollout's start and an abort's traffic call.

use crate::gha::Gha;
use crate::progress::{Event, Progress};
use crate::records::StepRecord;
use crate::text::family_revision;

use super::Reporter;

/// The pull-request comment and Deployment: updated when a step starts, at promotion, and when an
/// abort has put traffic back.
/// Shared with the other services of the run, which report their own states.
pub(crate) struct Report<'a, 'b> {
    pub(crate) reporter: &'a tokio::sync::Mutex<&'b mut Reporter>,
    pub(crate) gha: &'a Gha,
}

impl Progress for Report<'_, '_> {
    async fn emit(&mut self, event: Event<'_>, table: &[StepRecord]) {
        let what = match event {
            Event::StepStarted { step, total, weight, .. } => {
                format!("canary step {} of {total} ({weight}%)", step + 1)
            }
            Event::Promoting { service, revision } => format!("promoting {service} to {}", family_revision(revision)),
            Event::RolloutStarted { revision, .. } => format!("rolling out {}", family_revision(revision)),
            Event::Aborting { traffic_back: true, .. } => "aborting: traffic is back on the stable service".to_string(),
            Event::Aborting { traffic_back: false, .. } => {
                "aborting: traffic could not be put back on the stable service".to_string()
            }
            _ => return,
        };
        self.reporter.lock().await.progress(self.gha, &what, Some(table)).await;
    }
}
