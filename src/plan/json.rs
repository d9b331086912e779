//! The plan as data, for a dry run's `plan` output: what a later step (or a reviewer's script) reads
//! to decide, without parsing the log. Names only where the plan holds values that may be secret
//! (environment variables, build arguments).

use serde_json::{Value, json};

use super::{ImagePlan, Plan, PlannedStep, StrategyPlan};
use crate::ecs::taskdef::Change;
use crate::text::family_revision;

pub(crate) fn json(plan: &Plan) -> Value {
    let image = match &plan.image {
        ImagePlan::Build { build_arg_names, .. } => {
            json!({"reference": plan.image.reference(), "build": true, "build_args": build_arg_names})
        }
        other => json!({"reference": other.reference(), "build": false}),
    };
    let deploy = plan.deploy.as_ref().map(|d| {
        let services: Vec<Value> = d
            .services
            .iter()
            .map(|s| {
                let changes: Vec<Value> = s
                    .rendered
                    .changes
                    .iter()
                    .map(|c| match c {
                        Change::Image { from, to } => json!({"image": {"from": from, "to": to}}),
                        Change::EnvAdded(name) => json!({"environment_added": name}),
                        Change::EnvChanged(name) => json!({"environment_changed": name}),
                    })
                    .collect();
                let steps = match &s.strategy {
                    StrategyPlan::Rolling | StrategyPlan::Preview(_) => Vec::new(),
                    StrategyPlan::Canary(c) => steps(&c.steps),
                    StrategyPlan::Native(n) => steps(&n.steps),
                };
                json!({
                    "service": s.service,
                    "desired_count": s.desired_count,
                    "new_desired_count": s.new_desired_count,
                    "previous_task_definition": family_revision(&s.previous_task_definition_arn),
                    "registers_a_revision": s.as_is.is_none(),
                    "changes": changes,
                    "strategy": s.strategy.label(),
                    "steps": steps,
                    "preview_url": s.strategy.preview().map(|p| p.url.clone()),
                })
            })
            .collect();
        json!({
            "cluster": d.cluster,
            "services": services,
            "wait_timeout_seconds": d.wait_timeout.as_secs(),
            "rollback": d.rollback,
            "pre_deploy_command": d.pre_deploy.is_some(),
        })
    });
    json!({"image": image, "deploy": deploy})
}

fn steps(steps: &[PlannedStep]) -> Vec<Value> {
    steps
        .iter()
        .map(|s| json!({"weight": s.weight, "bake_seconds": s.bake.as_secs(), "tasks": s.canary_tasks}))
        .collect()
}
