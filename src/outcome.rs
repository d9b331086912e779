//! How a deploy ended, in one type. Every service's deploy ends in an `Outcome`, a stage that fails
//! becomes one, and the `status` output, the exit code, the comment's headline and the GitHub Deployment's
//! state are each derived from it here, in one function each; what a failure left behind (`Left`) is
//! data too, and its closing sentence is said here.

/// The process's exit code, derived from how the run ended (or from its inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    Success = 0,
    /// The deploy failed, was refused, or was rolled back.
    Failed = 1,
    /// An input is invalid; nothing was called.
    InvalidInput = 2,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Succeeded,
    /// Aborted and undone: the service is back on its previous revision, with all traffic. `at` is
    /// the 1-based canary step the abort came from (None for rolling deploys, before the first step
    /// and during promotion).
    RolledBack {
        reason: String,
        at: Option<usize>,
    },
    /// Not undone, or the undo did not finish: a person must look.
    Failed {
        reason: String,
    },
    /// Stopped for people at a pause of ECS's own strategy (`approval`): ECS holds the deployment
    /// until a later run answers it (`resume`) or the pause times out into a rollback.
    Paused(Box<PausedAt>),
}

/// Where a deploy waits for approval: what a later run needs to answer it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PausedAt {
    pub(crate) service: String,
    pub(crate) service_deployment_arn: String,
    pub(crate) hook_id: String,
    /// ECS's lifecycle stage at the pause (`POST_TEST_TRAFFIC_SHIFT`, …).
    pub(crate) stage: String,
    /// Green's share of production traffic while it waits.
    pub(crate) production: f64,
    /// When ECS rolls back by itself if nobody answers (RFC 3339), when ECS said.
    pub(crate) expires: Option<String>,
}

impl PausedAt {
    /// What waits, and how to answer it: the log's last line, the comment's.
    pub(crate) fn how_to_answer(&self) -> String {
        let until = match &self.expires {
            Some(at) => format!(" until {at}, then rolls it back by itself"),
            None => ", until its pause times out into a rollback".to_string(),
        };
        format!(
            "ECS holds {} at {} with green on {}% of production traffic{until}. To answer, run the action again              with the same cluster, service and gates and `resume: continue` (the gates judge the paused window              first) or `resume: rollback` (service deployment {}, hook {}).",
            self.service, self.stage, self.production, self.service_deployment_arn, self.hook_id
        )
    }
}

/// What a run that did not succeed left behind: the run's last line, for the person who must look.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Left {
    /// Nothing was changed (credentials, plan).
    Nothing,
    /// No service changed (of `services`); the new revisions registered, unused (`family:revision`).
    Unchanged { services: usize, registered: Vec<String> },
    /// A cancelled run sent these back (`cluster/service`), traffic first with a canary, without
    /// waiting: ECS finishes it.
    SentBack { services: Vec<String>, traffic_first: bool },
    /// One service back on its previous revision (`family:revision`), with all traffic.
    BackOn { service: String, revision: String },
    /// Every one of several services back on its previous revision.
    AllBack { services: Vec<String> },
    /// Not every service is back: `rollback: false`, or an undo that did not finish.
    NotBack { services: Vec<String> },
}

impl Left {
    /// The sentence that ends the run's log.
    pub(crate) fn sentence(&self) -> String {
        match self {
            Left::Nothing => "Nothing was changed.".to_string(),
            Left::Unchanged { services, registered } => {
                let none = if *services > 1 { "No service was changed." } else { "The service was not changed." };
                match registered.as_slice() {
                    [] => none.to_string(),
                    [one] => format!("{none} The new revision {one} stays registered, unused."),
                    many => format!("{none} The new revisions {} stay registered, unused.", many.join(", ")),
                }
            }
            Left::SentBack { services, traffic_first } => {
                let (were, their, s) = if services.len() == 1 { ("was", "its", "") } else { ("were", "their", "s") };
                let first = if *traffic_first { ", traffic first" } else { "" };
                format!(
                    "{} {were} sent back to {their} previous revision{s}{first}; ECS finishes the rollback (not waited \
                     for: the run was cancelled).",
                    services.join(", ")
                )
            }
            Left::BackOn { service, revision } => format!("{service} is back on {revision}, with all traffic."),
            Left::AllBack { services } => format!("{} are back on their previous revisions.", services.join(", ")),
            Left::NotBack { services } => match services.as_slice() {
                [one] => format!("{one} was left as it is (rollback: false, or the rollback did not finish)."),
                many => format!(
                    "Not every one of {} is back on its previous revision (rollback: false, or a rollback did not \
                     finish): the reason names each; check them in the ECS console.",
                    many.join(", ")
                ),
            },
        }
    }
}

impl Outcome {
    /// The `status` output.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled-back",
            Outcome::Failed { .. } => "failed",
            Outcome::Paused(_) => "paused",
        }
    }

    /// The process's exit code: a rolled-back deploy fails the step; a pause for approval does not
    /// (the job that answers it comes next).
    pub(crate) fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::Succeeded | Outcome::Paused(_) => ExitStatus::Success,
            Outcome::RolledBack { .. } | Outcome::Failed { .. } => ExitStatus::Failed,
        }
    }

    /// The comment's headline: its icon and words.
    pub(crate) fn headline(&self) -> (&'static str, &'static str) {
        match self {
            Outcome::Succeeded => ("✅", "succeeded"),
            Outcome::RolledBack { .. } => ("↩️", "rolled back"),
            Outcome::Failed { .. } => ("❌", "failed"),
            Outcome::Paused(_) => ("⏸️", "paused for approval"),
        }
    }

    /// The GitHub Deployment status's state (a paused deploy is still in progress).
    pub(crate) fn deployment_state(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "success",
            Outcome::Paused(_) => "in_progress",
            Outcome::RolledBack { .. } | Outcome::Failed { .. } => "failure",
        }
    }

    /// Why it did not succeed, with the step it happened at (`step 2: alarms gate failed: …`), and the
    /// word for it (`Rolled back`, `Failed`); None for success and a pause (which failed nothing).
    pub(crate) fn reason(&self) -> Option<(&'static str, String)> {
        match self {
            Outcome::Succeeded | Outcome::Paused(_) => None,
            Outcome::RolledBack { reason, at: Some(step) } => Some(("Rolled back", format!("step {step}: {reason}"))),
            Outcome::RolledBack { reason, at: None } => Some(("Rolled back", reason.clone())),
            Outcome::Failed { reason } => Some(("Failed", reason.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_of_an_outcome_agrees() {
        let rolled = Outcome::RolledBack { reason: "alarms gate failed".into(), at: Some(2) };
        let failed = Outcome::Failed { reason: "timed out".into() };
        let table: Vec<(&Outcome, &str, ExitStatus, &str, &str)> = vec![
            (&Outcome::Succeeded, "succeeded", ExitStatus::Success, "succeeded", "success"),
            (&rolled, "rolled-back", ExitStatus::Failed, "rolled back", "failure"),
            (&failed, "failed", ExitStatus::Failed, "failed", "failure"),
        ];
        for (outcome, status, exit, headline, state) in table {
            assert_eq!(outcome.status(), status);
            assert_eq!(outcome.exit_status(), exit);
            assert_eq!(outcome.headline().1, headline);
            assert_eq!(outcome.deployment_state(), state);
        }
        assert_eq!(rolled.reason(), Some(("Rolled back", "step 2: alarms gate failed".to_string())));
        assert_eq!(Outcome::RolledBack { reason: "x".into(), at: None }.reason().map(|r| r.1), Some("x".into()));
        assert_eq!(failed.reason(), Some(("Failed", "timed out".to_string())));
        assert_eq!(Outcome::Succeeded.reason(), None);
        let paused = Outcome::Paused(Box::new(PausedAt {
            service: "web".into(),
            service_deployment_arn: "arn:aws:ecs:us-east-1:123456789012:service-deployment/demo/web/abc".into(),
            hook_id: "ecs-pause-x".into(),
            stage: "POST_TEST_TRAFFIC_SHIFT".into(),
            production: 0.0,
            expires: Some("2026-12-06T18:00:00Z".into()),
        }));
        assert_eq!(
            (paused.status(), paused.exit_status(), paused.headline().1, paused.deployment_state(), paused.reason()),
            ("paused", ExitStatus::Success, "paused for approval", "in_progress", None),
            "a pause fails nothing: the job that answers it runs next"
        );
        let Outcome::Paused(at) = &paused else { unreachable!() };
        let said = at.how_to_answer();
        for part in ["until 2026-12-06T18:00:00Z", "`resume: continue`", "`resume: rollback`", "hook ecs-pause-x"] {
            assert!(said.contains(part), "{said}");
        }
    }

    #[test]
    fn what_a_failure_left_is_said_in_one_sentence() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (Left::Nothing, "Nothing was changed."),
            (Left::Unchanged { services: 1, registered: vec![] }, "The service was not changed."),
            (
                Left::Unchanged { services: 2, registered: names(&["web:8", "worker:3"]) },
                "No service was changed. The new revisions web:8, worker:3 stay registered, unused.",
            ),
            (
                Left::Unchanged { services: 1, registered: names(&["web:8"]) },
                "The service was not changed. The new revision web:8 stays registered, unused.",
            ),
            (
                Left::SentBack { services: names(&["demo/web"]), traffic_first: false },
                "demo/web was sent back to its previous revision; ECS finishes the rollback (not waited for: the run \
                 was cancelled).",
            ),
            (
                Left::SentBack { services: names(&["demo/web", "demo/worker"]), traffic_first: true },
                "demo/web, demo/worker were sent back to their previous revisions, traffic first; ECS finishes the \
                 rollback (not waited for: the run was cancelled).",
            ),
            (
                Left::BackOn { service: "demo/web".into(), revision: "web:7".into() },
                "demo/web is back on web:7, with all traffic.",
            ),
            (
                Left::AllBack { services: names(&["demo/web", "demo/worker"]) },
                "demo/web, demo/worker are back on their previous revisions.",
            ),
            (
                Left::NotBack { services: names(&["demo/web"]) },
                "demo/web was left as it is (rollback: false, or the rollback did not finish).",
            ),
        ];
        for (left, said) in cases {
            assert_eq!(left.sentence(), said, "{left:?}");
        }
        let several = Left::NotBack { services: names(&["demo/web", "demo/worker"]) }.sentence();
        assert!(several.starts_with("Not every one of demo/web, demo/worker is back"), "{several}");
    }
}
