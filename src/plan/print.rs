//! The plan as a person reads it: plain text for the log, markdown for the job summary. Environment
//! and build-argument values are never shown (they may be secrets), only their names.

use std::fmt::Write as _;

use super::{DeployPlan, ImagePlan, Plan, StrategyPlan};
use crate::config::TrafficSource;
use crate::config::duration::format as dur;
use crate::ecs::taskdef::{Change, describe};

/// The plan as log lines.
pub(crate) fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "image:    {}", image_line(&plan.image));
    match &plan.deploy {
        None => {
            let _ = writeln!(out, "deploy:   none (no cluster/service): the run stops once the image is pushed");
        }
        Some(d) => deploy_text(&mut out, d),
    }
    out
}

fn image_line(image: &ImagePlan) -> String {
    match image {
        ImagePlan::Existing { uri } => format!("deploy existing {uri} (no build, no push)"),
        ImagePlan::Build { context, dockerfile, target, platform, build_arg_names, .. } => {
            let mut line = format!("build {} ({dockerfile}", context.display());
            if let Some(t) = target {
                let _ = write!(line, ", target {t}");
            }
            if let Some(p) = platform {
                let _ = write!(line, ", {p}");
            }
            if !build_arg_names.is_empty() {
                let _ = write!(line, ", build args {}", build_arg_names.join(" "));
            }
            let _ = write!(line, ") and push {}, unless that tag exists; deploy it by digest", image.reference());
            line
        }
    }
}

fn change_line(change: &Change) -> String {
    match change {
        Change::Image { from, to } => format!("image {} → {to}", from.as_deref().unwrap_or("(none)")),
        Change::EnvAdded(k) => format!("env {k} added"),
        Change::EnvChanged(k) => format!("env {k} changed"),
    }
}

fn deploy_text(out: &mut String, d: &DeployPlan) {
    let current = d.previous_task_definition_arn.rsplit('/').next().unwrap_or(&d.previous_task_definition_arn);
    let _ = writeln!(out, "service:  {}/{} ({} desired), now on {current}", d.cluster, d.service, d.desired_count);
    let _ = writeln!(out, "revision: new revision of {} with, in container {}:", family(d), d.rendered.container);
    if d.rendered.changes.is_empty() {
        let _ = writeln!(out, "            no change (same image and environment)");
    }
    for change in &d.rendered.changes {
        let _ = writeln!(out, "            {}", change_line(change));
    }
    match &d.strategy {
        StrategyPlan::Rolling => {
            let _ = writeln!(
                out,
                "strategy: rolling: update the service, wait until it is stable (timeout {})",
                dur(d.wait_timeout)
            );
        }
        StrategyPlan::Canary(c) => {
            let _ = writeln!(out, "strategy: canary via {}", traffic_line(&c.traffic));
            let _ = writeln!(out, "  stable: {} → target group {} (weight 100)", d.service, c.stable_target_group.name);
            let _ = writeln!(
                out,
                "  canary: {} → target group {} (weight 0, idle)",
                c.canary_service, c.canary_target_group.name
            );
            for (i, s) in c.steps.iter().enumerate() {
                let bake = if s.bake.is_zero() { "no bake".to_string() } else { format!("bake {}", dur(s.bake)) };
                let _ = writeln!(
                    out,
                    "  step {}: {} task(s) of the new revision on {}, weights {}/{}, {bake}",
                    i + 1,
                    s.canary_tasks,
                    c.canary_service,
                    100 - u16::from(s.weight),
                    s.weight
                );
            }
            let _ = writeln!(
                out,
                "  then:   promote {} to the new revision, weights 100/0, {} to 0 tasks",
                d.service, c.canary_service
            );
            let _ = writeln!(out, "  gates:  {} (every {})", gates_line(c), dur(c.check_interval));
        }
    }
    let rollback = if d.rollback { "restore the previous revision" } else { "leave it as it is (rollback: false)" };
    let _ = writeln!(out, "failure:  {rollback}");
}

fn family(d: &DeployPlan) -> String {
    describe(&d.rendered.task_definition)
}

fn traffic_line(t: &TrafficSource) -> String {
    match t {
        TrafficSource::ListenerDefault(arn) => format!("listener {arn}"),
        TrafficSource::Rule(arn) => format!("listener rule {arn}"),
    }
}

fn gates_line(c: &super::CanaryPlan) -> String {
    let mut gates = vec![format!("canary targets healthy in {}", c.canary_target_group.name)];
    if !c.gates.alarms.is_empty() {
        gates.push(format!("alarms not in ALARM: {}", c.gates.alarms.join(", ")));
    }
    if let Some(rate) = c.gates.max_error_rate {
        gates.push(format!("5xx rate ≤ {}%", rate * 100.0));
    }
    if let Some(url) = &c.gates.probe_url {
        gates.push(format!("{url} answers 2xx"));
    }
    gates.join("; ")
}

/// The plan as markdown, for the job summary.
pub(crate) fn markdown(plan: &Plan, dry_run: bool) -> String {
    let mut md = String::new();
    let title = if dry_run { "Deployment plan (dry run: nothing was changed)" } else { "Deployment plan" };
    let _ = writeln!(md, "### {title}\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Image | {} |", cell(&image_line(&plan.image)));
    if let Some(d) = &plan.deploy {
        let _ = writeln!(md, "| Service | `{}/{}` ({} desired) |", d.cluster, d.service, d.desired_count);
        let _ = writeln!(md, "| Current revision | `{}` |", d.previous_task_definition_arn);
        let changes: Vec<String> = d.rendered.changes.iter().map(|c| cell(&change_line(c))).collect();
        let _ = writeln!(
            md,
            "| Container `{}` | {} |",
            d.rendered.container,
            if changes.is_empty() { "no change".into() } else { changes.join("<br>") }
        );
        let _ = writeln!(md, "| Strategy | {} |", d.strategy_name());
        if let StrategyPlan::Canary(c) = &d.strategy {
            let _ = writeln!(md, "| Traffic | {} |", cell(&traffic_line(&c.traffic)));
            let _ = writeln!(md, "| Gates | {} (every {}) |", cell(&gates_line(c)), dur(c.check_interval));
            let _ = writeln!(md, "\n| Step | Weight (stable/canary) | Canary tasks | Bake |\n|---|---|---|---|");
            for (i, s) in c.steps.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {}/{} | {} | {} |",
                    i + 1,
                    100 - u16::from(s.weight),
                    s.weight,
                    s.canary_tasks,
                    dur(s.bake)
                );
            }
        }
    } else {
        let _ = writeln!(md, "| Deploy | none: the run stops once the image is pushed |");
    }
    md
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

impl DeployPlan {
    pub(crate) fn strategy_name(&self) -> &'static str {
        match self.strategy {
            StrategyPlan::Rolling => "rolling",
            StrategyPlan::Canary(_) => "canary",
        }
    }
}
