//! How a deploy ended, in one type. Every service's deploy ends in an `Outcome`, a stage that fails
//! becomes one, and the `status` output, the exit code, the comment's headline and the GitHub Deployment's
//! state are each derived from it here, in one function each.

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
}

impl Outcome {
    /// The `status` output.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled-back",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// The process's exit code: a rolled-back deploy fails the step.
    pub(crate) fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::Succeeded => ExitStatus::Success,
            Outcome::RolledBack { .. } | Outcome::Failed { .. } => ExitStatus::Failed,
        }
    }

    /// The comment's headline: its icon and words.
    pub(crate) fn headline(&self) -> (&'static str, &'static str) {
        match self {
            Outcome::Succeeded => ("✅", "succeeded"),
            Outcome::RolledBack { .. } => ("↩️", "rolled back"),
            Outcome::Failed { .. } => ("❌", "failed"),
        }
    }

    /// The GitHub Deployment status's state.
    pub(crate) fn deployment_state(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "success",
            Outcome::RolledBack { .. } | Outcome::Failed { .. } => "failure",
        }
    }

    /// Why it did not succeed, with the step it happened at (`step 2: alarms gate failed: …`), and the
    /// word for it (`Rolled back`, `Failed`); None for success.
    pub(crate) fn reason(&self) -> Option<(&'static str, String)> {
        match self {
            Outcome::Succeeded => None,
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
    }
}
