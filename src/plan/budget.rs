//! How long a deploy can take at most, from its plan: every wait at its timeout, every bake, and the
//! abort after them. The deploy lease lasts that long (from when it is taken, after the build), and
//! credentials that cannot be refreshed must last that and the build.

use std::time::Duration;

use super::{DeployPlan, ImagePlan, Plan};

/// What the estimate allows a build: it has no timeout of its own, so this is an allowance, said
/// as such wherever the estimate is shown.
pub(crate) const BUILD_ALLOWANCE: Duration = Duration::from_secs(30 * 60);

/// Calls between the waits (each call has a 30 s deadline): a margin on top of the waits.
const CALLS: Duration = Duration::from_secs(5 * 60);
use crate::retry::{CONSECUTIVE_FAILURES, MUST_SUCCEED_FOR};

/// The longest the deploy stage of `deploy` can run, failure and undo included.
pub(crate) fn worst_case(deploy: &DeployPlan) -> Duration {
    let wait = deploy.wait_timeout;
    // Each service waits at the same time; the canary is the longest of them, if there is one.
    let canary = deploy.services.iter().find_map(|s| s.strategy.canary());
    let waits = match canary {
        // The rollout, then the wait for the restored revision.
        None => wait.saturating_mul(2),
        // Each step: canary ready, its bake and rechecks. Then the promotion, the drain, and an
        // abort at the very end: traffic, drain, restore.
        Some(c) => c
            .steps
            .iter()
            .map(|s| wait.saturating_add(s.bake).saturating_add(c.check_interval.saturating_mul(CONSECUTIVE_FAILURES)))
            .fold(Duration::ZERO, Duration::saturating_add)
            .saturating_add(wait.saturating_mul(3))
            .saturating_add(MUST_SUCCEED_FOR),
    };
    // The other services roll at the same time; one more wait restores them after the first's end.
    let others = if deploy.several() { wait } else { Duration::ZERO };
    // The pre-deploy task runs under the lease too, before any service changes.
    let pre_deploy = if deploy.pre_deploy.is_some() { wait } else { Duration::ZERO };
    waits.saturating_add(others).saturating_add(pre_deploy).saturating_add(CALLS)
}

/// The longest the whole run can take: the build (its allowance) and the deploy stage.
pub(crate) fn run_worst_case(plan: &Plan, deploy: &DeployPlan) -> Duration {
    let build = if matches!(plan.image, ImagePlan::Build { .. }) { BUILD_ALLOWANCE } else { Duration::ZERO };
    worst_case(deploy).saturating_add(build)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 24.4: the lease is held from before the pre-deploy task; its length must cover its wait.
    #[test]
    fn the_pre_deploy_wait_is_part_of_the_worst_case() {
        let Some(mut deploy) = crate::plan::print::tests::canary_plan().deploy else { panic!("a deploy") };
        let without = worst_case(&deploy);
        deploy.pre_deploy = Some((vec!["migrate".into()], Default::default()));
        assert_eq!(worst_case(&deploy), without + deploy.wait_timeout);
    }
}
