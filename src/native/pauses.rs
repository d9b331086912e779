//! The action's PAUSE hooks, added to the service's own deployment configuration for one deploy:
//! one hook at the stages where the gates judge, each timing out into ROLLBACK so that a runner that
//! dies never leaves a deployment paused with nobody judging it.

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration,
};

/// `config` with one PAUSE hook at `stages` (none added without stages), the service's own hooks kept.
pub(crate) fn with_pauses(
    config: &DeploymentConfiguration,
    stages: &[DeploymentLifecycleHookStage],
    timeout_minutes: i32,
) -> DeploymentConfiguration {
    // Every field of the service's configuration is kept as ECS described it: only the hooks change.
    let mut config = config.clone();
    if stages.is_empty() {
        return config;
    }
    let ours = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .set_lifecycle_stages(Some(stages.to_vec()))
        .timeout_configuration(
            DeploymentLifecycleHookTimeoutConfiguration::builder()
                .timeout_in_minutes(timeout_minutes.clamp(1, 20_160))
                .action(DeploymentLifecycleHookAction::Rollback)
                .build(),
        )
        .build();
    let mut hooks = config.lifecycle_hooks.take().unwrap_or_default();
    hooks.push(ours);
    config.lifecycle_hooks = Some(hooks);
    config
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::DeploymentStrategy;

    use super::*;

    #[test]
    fn the_pauses_roll_back_on_timeout_and_the_service_keeps_its_own_hooks_and_settings() {
        let theirs = DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
            .hook_target_arn("arn:aws:lambda:us-east-1:123456789012:function:smoke")
            .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
            .build();
        let config = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Linear)
            .bake_time_in_minutes(3)
            .lifecycle_hooks(theirs.clone())
            .build();
        let stages = [
            DeploymentLifecycleHookStage::PostTestTrafficShift,
            DeploymentLifecycleHookStage::PreProductionTrafficShift,
        ];
        let sent = with_pauses(&config, &stages, 0);
        assert_eq!(sent.strategy(), Some(&DeploymentStrategy::Linear));
        assert_eq!(sent.bake_time_in_minutes(), Some(3));
        let hooks = sent.lifecycle_hooks();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0], theirs);
        assert_eq!(hooks[1].target_type(), Some(&DeploymentLifecycleHookTargetType::Pause));
        assert_eq!(hooks[1].lifecycle_stages(), stages);
        let timeout = hooks[1].timeout_configuration().unwrap();
        assert_eq!(
            (timeout.timeout_in_minutes(), timeout.action()),
            (Some(1), Some(&DeploymentLifecycleHookAction::Rollback))
        );
        assert_eq!(with_pauses(&config, &[], 15), config, "no gates: the configuration goes as it is");
    }
}
