//! RegisterTaskDefinition, the one place a revision is registered: every field of the SDK's
//! `TaskDefinition` sent, refused or known to be read-only (a test fails when the SDK adds one).

use anyhow::{Result, anyhow};
use aws_sdk_ecs::types::{Tag, TaskDefinition};

use crate::aws::call_failed;

/// Registers `task_definition` (already stripped of read-only fields) with `tags`; returns its ARN.
pub(crate) async fn register(ecs: &aws_sdk_ecs::Client, td: &TaskDefinition, tags: &[Tag]) -> Result<String> {
    if !td.inference_accelerators().is_empty() {
        // Refused rather than dropped: a revision without them would not be the one the user wrote.
        return Err(anyhow!(
            "the task definition has `inferenceAccelerators`, and Amazon Elastic Inference is no longer \
             available (ECS ignores or refuses them): remove `inferenceAccelerators` from the task definition"
        ));
    }
    let out = ecs
        .register_task_definition()
        .set_family(td.family.clone())
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_container_definitions(td.container_definitions.clone())
        .set_volumes(td.volumes.clone())
        .set_placement_constraints(td.placement_constraints.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
        .set_pid_mode(td.pid_mode.clone())
        .set_ipc_mode(td.ipc_mode.clone())
        .set_proxy_configuration(td.proxy_configuration.clone())
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .set_enable_fault_injection(td.enable_fault_injection)
        .send()
        .await
        .map_err(|e| {
            let hint = if crate::aws::is_access_denied(&e) {
                " (the role needs ecs:RegisterTaskDefinition, and iam:PassRole for the task and execution roles)"
            } else {
                ""
            };
            call_failed("ECS RegisterTaskDefinition", &e)
                .context(format!("could not register the new task definition revision{hint}"))
        })?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("ECS registered the task definition but returned no ARN"))
}

#[cfg(test)]
mod field_tests {
    use aws_sdk_ecs::types::TaskDefinition;

    /// Every field of the SDK's `TaskDefinition` that `register` sends. With `READ_ONLY_FIELDS` (what ECS
    /// sets itself) they name all of its fields, and a test fails when the SDK adds one: a field nobody
    /// handles would otherwise be dropped silently from every revision we register. (The SDK's types are
    /// `#[non_exhaustive]`, so a destructure without `..` cannot compile outside its crate; their Debug
    /// field names are the check that can.)
    const REGISTERED_FIELDS: &[&str] = &[
        "family",
        "task_role_arn",
        "execution_role_arn",
        "network_mode",
        "container_definitions",
        "volumes",
        "placement_constraints",
        "requires_compatibilities",
        "cpu",
        "memory",
        "pid_mode",
        "ipc_mode",
        "proxy_configuration",
        "ephemeral_storage",
        "runtime_platform",
        "enable_fault_injection",
    ];

    /// Fields `register` refuses: Elastic Inference is retired (the SDK deprecates the setter).
    const REFUSED_FIELDS: &[&str] = &["inference_accelerators"];

    /// Fields of `TaskDefinition` that ECS sets and refuses on RegisterTaskDefinition.
    const READ_ONLY_FIELDS: &[&str] = &[
        "task_definition_arn",
        "revision",
        "status",
        "requires_attributes",
        "compatibilities",
        "registered_at",
        "deregistered_at",
        "delete_requested_at",
        "registered_by",
    ];

    /// The field names of the SDK's `TaskDefinition`, read from its derived Debug output.
    fn sdk_fields() -> Vec<String> {
        let debug = format!("{:?}", TaskDefinition::builder().build());
        let inner = debug.trim_start_matches("TaskDefinition {").trim_end_matches('}');
        inner.split(", ").filter_map(|f| f.split_once(':')).map(|(name, _)| name.trim().to_string()).collect()
    }

    #[test]
    fn every_task_definition_field_is_registered_or_read_only() {
        let fields = sdk_fields();
        assert!(fields.len() > 20, "could not read the fields: {fields:?}");
        let unhandled: Vec<&String> = fields
            .iter()
            .filter(|f| ![REGISTERED_FIELDS, REFUSED_FIELDS, READ_ONLY_FIELDS].iter().any(|l| l.contains(&f.as_str())))
            .collect();
        assert!(
            unhandled.is_empty(),
            "the SDK's TaskDefinition has fields `register` neither sends nor strips: {unhandled:?}; \
             send them in ecs::register::register and list them in REGISTERED_FIELDS"
        );
        let gone: Vec<&&str> = [REGISTERED_FIELDS, REFUSED_FIELDS, READ_ONLY_FIELDS]
            .iter()
            .flat_map(|l| l.iter())
            .filter(|f| !fields.iter().any(|g| g == **f))
            .collect();
        assert!(gone.is_empty(), "listed but not in the SDK any more: {gone:?}");
    }
}
