//! How long a deploy can take at most, from its plan: every wait at its timeout, every bake, and the
//! abort after them. The deploy lease lasts that long, and credentials that cannot be refreshed must.

use std::time::Duration;

use super::{DeployPlan, StrategyPlan};

/// Calls between the waits (each call has a 30 s deadline): a margin on top of the waits.
const CALLS: Duration = Duration::from_secs(5 * 60);
use crate::canary::controller::MAX_UNREADABLE;
use crate::canary::deploy::ABORT_TRAFFIC_RETRIES;

/// The longest the deploy stage of `deploy` can run, failure and undo included.
pub(crate) fn worst_case(deploy: &DeployPlan) -> Duration {
    let wait = deploy.wait_timeout;
    let waits = match &deploy.strategy {
        // The rollout, then the wait for the restored revision.
        StrategyPlan::Rolling => wait.saturating_mul(2),
        // Each step: canary ready, its bake and rechecks. Then the promotion, the drain, and an
        // abort at the very end: traffic, drain, restore.
        StrategyPlan::Canary(c) => c
            .steps
            .iter()
            .map(|s| wait.saturating_add(s.bake).saturating_add(c.check_interval.saturating_mul(MAX_UNREADABLE)))
            .fold(Duration::ZERO, Duration::saturating_add)
            .saturating_add(wait.saturating_mul(3))
            .saturating_add(ABORT_TRAFFIC_RETRIES),
    };
    // The other services roll at the same time; one more wait restores them after the first's end.
    let others = if deploy.also.is_empty() { Duration::ZERO } else { wait };
    waits.saturating_add(others).saturating_add(CALLS)
}
