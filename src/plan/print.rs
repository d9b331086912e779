//! The plan as a person reads it: plain text for the log, markdown for the job summary. Environment
//! and build-argument values are never shown (they may be secrets), only their names.

use std::fmt::Write as _;

use super::{DeployPlan, ImagePlan, Plan, ServicePlan, StrategyPlan};
use crate::config::TrafficSource;
use crate::config::duration::format as dur;
use crate::ecs::taskdef::{Change, describe};
use crate::text::cell;

/// The plan as log lines.
pub(crate) fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "image:    {}", image_line(&plan.image));
    match &plan.deploy {
        None => {
            let _ = writeln!(out, "deploy:   none (no cluster/service): the run stops once the image is pushed");
        }
        Some(d) => deploy_text(&mut out, plan, d),
    }
    out
}

fn image_line(image: &ImagePlan) -> String {
    match image {
        ImagePlan::Existing { uri, .. } => format!("deploy existing {uri} (no build, no push)"),
        ImagePlan::AsRegistered { uri } => format!("the known revision's own: {uri} (no build, no push)"),
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

fn deploy_text(out: &mut String, plan: &Plan, d: &DeployPlan) {
    // The first service's lines; the others follow as `also:` (their strategy is rolling).
    let f = d.first();
    let current = f.previous_task_definition_arn.rsplit('/').next().unwrap_or(&f.previous_task_definition_arn);
    let count = match f.new_desired_count {
        Some(n) if n != f.desired_count => format!("{} desired, to become {n}", f.desired_count),
        _ => format!("{} desired", f.desired_count),
    };
    match f.strategy.preview().filter(|p| p.create.is_some()) {
        Some(p) => {
            let _ = writeln!(out, "service:  {}/{} (new, a preview of {})", d.cluster, f.service, p.base);
        }
        None => {
            let _ = writeln!(out, "service:  {}/{} ({count}), now on {current}", d.cluster, f.service);
        }
    }
    if let Some(by) = &f.deployed_by {
        let _ = writeln!(out, "          {current} was {by}");
    }
    for drifted in d.services.iter().flat_map(|s| &s.drift) {
        let _ = writeln!(out, "drift:    {drifted} (changed outside the action)");
    }
    if let Some(known) = &f.as_is {
        let _ = writeln!(out, "revision: {} as it is (nothing registered)", known.rsplit('/').next().unwrap_or(known));
    } else {
        let _ = writeln!(out, "revision: new revision of {} with, in container {}:", family(f), f.rendered.container);
    }
    if f.as_is.is_none() && f.rendered.changes.is_empty() {
        let _ = writeln!(out, "            no change (same image and environment)");
    }
    for change in &f.rendered.changes {
        let _ = writeln!(out, "            {}", change_line(change));
    }
    match &f.strategy {
        StrategyPlan::Rolling => {
            let _ = writeln!(
                out,
                "strategy: rolling: update the service, wait until it is stable (timeout {})",
                dur(d.wait_timeout)
            );
        }
        StrategyPlan::Canary(c) => {
            let _ = writeln!(out, "strategy: canary via {}", traffic_line(&c.traffic));
            let _ = writeln!(out, "  stable: {} → target group {} (weight 100)", f.service, c.stable_target_group.name);
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
                f.service, c.canary_service
            );
            let _ = writeln!(out, "  gates:  {} (every {})", gates_line(c), dur(c.check_interval));
        }
        StrategyPlan::Native(n) => native_text(out, n, &f.service),
        StrategyPlan::Preview(p) => super::preview::text(out, p, d.wait_timeout),
    }
    if let Some((command, _)) = &d.pre_deploy {
        let _ = writeln!(
            out,
            "first:    run `{}` once in container {} of the new revision; any exit but 0 stops the deploy before a service changes",
            command.join(" "),
            f.rendered.container
        );
    }
    for a in d.services.iter().skip(1) {
        let current = a.previous_task_definition_arn.rsplit('/').next().unwrap_or(&a.previous_task_definition_arn);
        let _ = writeln!(
            out,
            "also:     {}/{} ({} desired), now on {current}: {}, at the same time as {}; new revision of {} with, in container {}:",
            d.cluster,
            a.service,
            a.desired_count,
            a.strategy.label(),
            f.service,
            describe(&a.rendered.task_definition),
            a.rendered.container
        );
        if a.rendered.changes.is_empty() {
            let _ = writeln!(out, "            no change (same image and environment)");
        }
        for change in &a.rendered.changes {
            let _ = writeln!(out, "            {}", change_line(change));
        }
    }
    let new_preview = d.first().strategy.preview().is_some_and(|p| p.create.is_some());
    let rollback = match (d.rollback, !d.several()) {
        _ if new_preview => "remove what this run made of the preview (service, rule, target group)",
        (true, true) => "restore the previous revision",
        (true, false) => "restore every service that changed to its previous revision (traffic first)",
        (false, _) => "leave it as it is (rollback: false)",
    };
    let _ = writeln!(out, "failure:  {rollback}");
    if let Some(n) = d.parallel.filter(|n| *n < d.services.len()) {
        let _ = writeln!(
            out,
            "at once:  {n} of the {} services at a time (the next starts as one has rolled out)",
            d.services.len()
        );
    }
    for s in &d.scheduled {
        let _ = writeln!(out, "schedule: {}; after success, the new revision of {}", s.describe(), s.family);
    }
    if let Some(n) = d.keep_revisions {
        let _ = writeln!(
            out,
            "success:  keep each family's newest {n} revision(s); deregister its older ACTIVE ones no service of {} and no scheduled task uses",
            d.cluster
        );
    }
    let build = if matches!(plan.image, ImagePlan::Build { .. }) {
        format!(", and {} allowed for the build", dur(super::BUILD_ALLOWANCE))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "at most:  {} (every wait at wait-timeout, then an abort{build}; cover it with the job's timeout-minutes)",
        dur(super::run_worst_case(plan, d))
    );
}

/// ECS's own strategy as ECS will run it, and where the action judges.
fn native_text(out: &mut String, n: &super::NativePlan, service: &str) {
    let _ = writeln!(
        out,
        "strategy: ECS's own {} (ECS shifts traffic on listener rule {}; the action watches{})",
        n.strategy,
        n.production_rule,
        if n.judged() { " and judges" } else { ", no gate configured" }
    );
    let _ = writeln!(out, "  blue:   {service} on target group {} (production now)", n.blue.name);
    let tasks = n.steps.first().map(|s| s.canary_tasks).unwrap_or_default();
    let _ = writeln!(out, "  green:  {tasks} task(s) of the new revision on target group {}", n.green.name);
    if let Some(rule) = &n.test_rule {
        let _ = writeln!(out, "  test:   listener rule {rule} sends test traffic to green before production");
    }
    let last = n.steps.len().saturating_sub(1);
    for (i, s) in n.steps.iter().enumerate() {
        let after = match (i == last, s.bake.is_zero()) {
            (true, true) => "then blue's tasks go (no bake)".to_string(),
            (true, false) => format!("then bake {} before blue's tasks go", dur(s.bake)),
            (false, _) => format!("then {}", dur(s.bake)),
        };
        let _ = writeln!(out, "  shift {}: green takes {}% of production, {after}", i + 1, s.weight);
    }
    if let Some(point) = &n.resume {
        let answer = match point.proceed {
            true => "continue it once the gates pass over the paused window (else roll it back)",
            false => "roll it back (ECS puts production traffic back on blue first)",
        };
        let _ = writeln!(
            out,
            "  resume: service deployment {} waits at {} (hook {}), green on {}% of production: {answer}",
            point.arn, point.seen.stage, point.hook, point.seen.production
        );
    }
    if let Some(approval) = n.approval {
        let at = match approval {
            crate::config::Approval::BeforeProduction => "before green takes production traffic",
            crate::config::Approval::AfterFirstShift => "after green's first production shift",
        };
        let _ = writeln!(
            out,
            "  approval: the job ends `paused` {at} (the gates pass first); a later run with `resume` answers it, \
             and ECS rolls back by itself after {}m unanswered",
            n.pause_timeout_minutes
        );
    }
    if n.judged() || n.approval.is_some() {
        let stages: Vec<&str> = n.pauses.iter().map(|p| p.as_str()).collect();
        let pauses = match stages.is_empty() {
            true => "none (ECS allows none where this strategy needs judging)".to_string(),
            false => format!(
                "{} (each times out after {}m with ROLLBACK: a runner that dies never leaves a pause unjudged)",
                stages.join(", "),
                n.pause_timeout_minutes
            ),
        };
        let _ = writeln!(out, "  pauses: {pauses}");
    }
    if n.judged() {
        let _ = writeln!(
            out,
            "  gates:  {} (every {}; during the bake too, where a failure stops the deployment with a rollback)",
            gates_line_for(&n.gates, format!("green targets healthy in {}", n.green.name)),
            dur(n.check_interval)
        );
    }
    if !n.ecs_alarms.is_empty() {
        let _ = writeln!(out, "  ECS itself rolls back on: {}", n.ecs_alarms.join(", "));
    }
}

fn family(f: &ServicePlan) -> String {
    describe(&f.rendered.task_definition)
}

fn traffic_line(t: &TrafficSource) -> String {
    match t {
        TrafficSource::ListenerDefault(arn) => format!("listener {arn}"),
        TrafficSource::Rule(arn) => format!("listener rule {arn}"),
    }
}

/// The canary's gates as configured, one line (the plan, and the comment's header).
pub(crate) fn gates_line(c: &super::CanaryPlan) -> String {
    gates_line_for(&c.gates, format!("canary targets healthy in {}", c.canary_target_group.name))
}

/// Gates as configured, one line, after the target-health gate's words `health`.
pub(crate) fn gates_line_for(g: &crate::config::Gates, health: String) -> String {
    let mut gates = vec![health];
    if !g.alarms.is_empty() {
        gates.push(format!("alarms not in ALARM: {}", g.alarms.join(", ")));
    }
    if let Some(rate) = g.max_error_rate {
        gates.push(format!(
            "5xx rate ≤ {rate} (tested at {} confidence)",
            crate::config::thresholds::confidence(g.confidence)
        ));
    }
    if let Some(latency) = g.max_latency {
        gates.push(format!("response time {latency}"));
    }
    if g.min_requests > 0 && (g.max_error_rate.is_some() || g.max_latency.is_some()) {
        gates.push(format!("judged from {} canary requests a step on", g.min_requests));
    }
    if let Some(url) = &g.probe_url {
        gates.push(format!("{url} answers 2xx"));
    }
    let noisy = g.max_error_rate.is_some() || g.max_latency.is_some() || g.probe_url.is_some();
    if noisy && g.failure_limit > 1 {
        gates
            .push(format!("a rate, latency or probe fails its step after {} failing checks in a row", g.failure_limit));
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
        let f = d.first();
        let _ = writeln!(md, "| Service | `{}/{}` ({} desired) |", d.cluster, f.service, f.desired_count);
        let _ = writeln!(md, "| Current revision | `{}` |", f.previous_task_definition_arn);
        let changes: Vec<String> = f.rendered.changes.iter().map(|c| cell(&change_line(c))).collect();
        let _ = writeln!(
            md,
            "| Container `{}` | {} |",
            f.rendered.container,
            if changes.is_empty() { "no change".into() } else { changes.join("<br>") }
        );
        let _ = writeln!(md, "| Strategy | {} |", cell(&f.strategy.label()));
        for a in d.services.iter().skip(1) {
            let changes: Vec<String> = a.rendered.changes.iter().map(|c| cell(&change_line(c))).collect();
            let _ = writeln!(
                md,
                "| Also `{}/{}` | {}, at the same time; `{}`, container `{}`: {} |",
                d.cluster,
                a.service,
                cell(&a.strategy.label()),
                a.previous_task_definition_arn.rsplit('/').next().unwrap_or(&a.previous_task_definition_arn),
                a.rendered.container,
                if changes.is_empty() { "no change".into() } else { changes.join("<br>") }
            );
        }
        if let Some(c) = f.strategy.canary() {
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

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use aws_sdk_ecs::types::TaskDefinition;
    use expect_test::expect;

    use super::*;
    use crate::config::thresholds::ErrorRateLimit;
    use crate::config::{Gates, TrafficSource};
    use crate::ecs::taskdef::{Change, Rendered};
    use crate::plan::{CanaryPlan, DeployPlan, ImagePlan, PlannedStep, ServicePlan, TargetGroup};

    fn tg(name: &str) -> TargetGroup {
        TargetGroup {
            arn: format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0123456789abcdef"),
            name: name.into(),
            dimension: format!("targetgroup/{name}/0123456789abcdef"),
            load_balancer_dimension: Some("app/web/50dc6c495c0c9188".into()),
        }
    }

    /// A canary of web:8 over web:7, with every gate.
    pub(crate) fn canary_plan() -> Plan {
        let step = |weight, bake, canary_tasks| PlannedStep { weight, bake: Duration::from_secs(bake), canary_tasks };
        Plan {
            image: ImagePlan::Existing {
                registry: None,
                uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65".into(),
            },
            deploy: Some(DeployPlan {
                cluster: "prod".into(),
                pre_deploy: None,
                keep_revisions: Some(3),
                scheduled: Vec::new(),
                parallel: None,
                services: vec![ServicePlan {
                    service: "web".into(),
                    service_arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/web".into(),
                    desired_count: 4,
                    new_desired_count: None,
                    as_is: None,
                    previous_task_definition_arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into(),
                    tags: Vec::new(),
                    drift: Vec::new(),
                    deployed_by: Some("deployed by octocat from 0123456789ab (https://github.com/octo/app/actions/runs/41)".into()),
                    rendered: Rendered {
                        task_definition: TaskDefinition::builder().family("web").build(),
                        container: "web".into(),
                        changes: vec![
                            Change::Image {
                                from: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4".into()),
                                to: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65".into(),
                            },
                            Change::EnvAdded("LOG_LEVEL".into()),
                            Change::EnvChanged("APP_ENV".into()),
                        ],
                    },
                    strategy: StrategyPlan::Canary(Box::new(CanaryPlan {
                        canary_service: "web-canary".into(),
                        stable_target_group: tg("web-stable"),
                        canary_target_group: tg("web-canary"),
                        traffic: TrafficSource::ListenerDefault(
                            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
                                .into(),
                        ),
                        steps: vec![step(10, 120, 1), step(50, 120, 2), step(100, 0, 4)],
                        gates: Gates {
                            alarms: vec!["web-5xx".into()],
                            max_error_rate: Some(ErrorRateLimit::Absolute(0.01)),
                            max_latency: None,
                            min_requests: 0,
                            failure_limit: 2,
                            confidence: 0.99,
                            probe_url: Some("https://example.com/health".into()),
                        },
                        check_interval: Duration::from_secs(10),
                    })),
                }],
                wait_timeout: Duration::from_secs(900),
                rollback: true,
            }),
        }
    }

    #[test]
    fn the_dry_run_plan_as_text() {
        expect![[r#"
            image:    deploy existing 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65 (no build, no push)
            service:  prod/web (4 desired), now on web:7
                      web:7 was deployed by octocat from 0123456789ab (https://github.com/octo/app/actions/runs/41)
            revision: new revision of web with, in container web:
                        image 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4 → 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65
                        env LOG_LEVEL added
                        env APP_ENV changed
            strategy: canary via listener arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2
              stable: web → target group web-stable (weight 100)
              canary: web-canary → target group web-canary (weight 0, idle)
              step 1: 1 task(s) of the new revision on web-canary, weights 90/10, bake 2m
              step 2: 2 task(s) of the new revision on web-canary, weights 50/50, bake 2m
              step 3: 4 task(s) of the new revision on web-canary, weights 0/100, no bake
              then:   promote web to the new revision, weights 100/0, web-canary to 0 tasks
              gates:  canary targets healthy in web-canary; alarms not in ALARM: web-5xx; 5xx rate ≤ 1% (tested at 99% confidence); https://example.com/health answers 2xx; a rate, latency or probe fails its step after 2 failing checks in a row (every 10s)
            failure:  restore the previous revision
            success:  keep each family's newest 3 revision(s); deregister its older ACTIVE ones no service of prod and no scheduled task uses
            at most:  1h41m20s (every wait at wait-timeout, then an abort; cover it with the job's timeout-minutes)
        "#]].assert_eq(&text(&canary_plan()));
    }

    #[test]
    fn the_dry_run_plan_as_markdown() {
        expect![[r#"
            ### Deployment plan (dry run: nothing was changed)

            | | |
            |---|---|
            | Image | deploy existing 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65 (no build, no push) |
            | Service | `prod/web` (4 desired) |
            | Current revision | `arn:aws:ecs:us-east-1:123456789012:task-definition/web:7` |
            | Container `web` | image 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4 → 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65<br>env LOG_LEVEL added<br>env APP_ENV changed |
            | Strategy | canary 10%:2m, 50%:2m, 100% |
            | Traffic | listener arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2 |
            | Gates | canary targets healthy in web-canary; alarms not in ALARM: web-5xx; 5xx rate ≤ 1% (tested at 99% confidence); https://example.com/health answers 2xx; a rate, latency or probe fails its step after 2 failing checks in a row (every 10s) |

            | Step | Weight (stable/canary) | Canary tasks | Bake |
            |---|---|---|---|
            | 1 | 90/10 | 1 | 2m |
            | 2 | 50/50 | 2 | 2m |
            | 3 | 0/100 | 4 | 0s |
        "#]].assert_eq(&markdown(&canary_plan(), true));
    }
}
