//! The reporter runs in a task of its own, fed through a channel: the run's events reach it without
//! waiting, so a slow or silent GitHub (each call may take up to 20 s) never holds up a build, a
//! traffic call or an undo. Updates that arrive while a call is in flight are taken together: the
//! next comment shows where the run stands then, not every state it went through.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::markdown::{ReportView, Status};
use super::{GitHubContext, Reporter};
use crate::config::ReportSettings;
use crate::gha::Gha;
use crate::records::{StepRecord, StoppedTask};

/// What the reporter's task is told (the report sink turns the run's events into these).
#[derive(Debug)]
pub(super) enum Update {
    Planned {
        previous: String,
        plan: Option<String>,
        gates: Option<String>,
        /// The first service's strategy as planned (`rolling`, `canary 10%:2m, 100%`, `ecs LINEAR`).
        strategy: String,
        /// Where it answers, when the plan knows (a preview's URL): the Deployment's environment URL.
        url: Option<String>,
    },
    /// The image's URI, and how it was built.
    Image(String, Option<String>),
    Registered {
        service: String,
        revision: String,
        previous: String,
    },
    ServiceState {
        service: String,
        state: String,
    },
    /// A new stage or step; the step table as it stands, where there is one.
    Progress {
        what: String,
        steps: Option<Vec<StepRecord>>,
    },
    Stopped(Vec<StoppedTask>),
    Deployed {
        steps: Vec<StepRecord>,
        events: Vec<String>,
    },
    /// The run is over (and what it left behind, if it failed): the final state everywhere, then
    /// the task ends.
    Finish(Status, Option<String>),
}

/// How long the end of a run waits for the report to be written: the final comment, Deployment
/// status and summary, with a call already in flight ahead of them (each call is bounded at 20 s).
const DRAIN: Duration = Duration::from_secs(60);

/// The reporter's task, and the sending side its sinks clone.
pub(crate) struct Running {
    updates: mpsc::UnboundedSender<Update>,
    task: JoinHandle<()>,
}

/// Starts the reporter: it finds the pull requests and our comment on them, and creates the
/// Deployment (`deploying`: a real run, not a dry run), while the run goes on.
pub(super) fn spawn(
    gha: &Gha,
    settings: &ReportSettings,
    ctx: GitHubContext,
    view: ReportView,
    deploying: bool,
) -> Running {
    let (updates, inbox) = mpsc::unbounded_channel();
    let (gha, settings) = (gha.clone(), settings.clone());
    let task = tokio::spawn(async move {
        let reporter = Reporter::start(&gha, &settings, ctx, view, deploying).await;
        serve(reporter, inbox, &gha).await;
    });
    Running { updates, task }
}

impl Running {
    /// A sink for the run's events (`sink::Report`); any number of them, one per service.
    pub(crate) fn sink(&self) -> super::sink::Report {
        super::sink::Report(self.updates.clone())
    }

    /// The run ended (`left`: what a failure left behind): the final state goes everywhere; waits
    /// for it, at most `DRAIN`.
    pub(crate) async fn finish(self, gha: &Gha, status: Status, left: Option<String>) {
        let Running { updates, mut task } = self;
        // A task that is gone (it panicked) has nothing left to write.
        let _ = updates.send(Update::Finish(status, left));
        drop(updates);
        if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
            task.abort();
            gha.warning(&format!(
                "GitHub did not take the final report within {}s: the pull-request comment or the Deployment may \
                 not show how the run ended (the job summary and this log do)",
                DRAIN.as_secs()
            ));
        }
    }
}

/// Applies every update that is waiting, then publishes once, until the run finishes.
async fn serve(mut reporter: Reporter, mut inbox: mpsc::UnboundedReceiver<Update>, gha: &Gha) {
    while let Some(update) = inbox.recv().await {
        let mut next = Some(update);
        let mut publish = false;
        while let Some(update) = next.take() {
            if matches!(update, Update::Finish(..)) {
                reporter.apply(update);
                return reporter.finish(gha).await;
            }
            publish |= reporter.apply(update);
            next = inbox.try_recv().ok();
        }
        if publish {
            reporter.publish_unless_cancelled(gha).await;
        }
    }
}
