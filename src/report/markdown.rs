//! The deploy as markdown: one body for the pull-request comment and the job summary. Pure, so every
//! state is a snapshot test. Environment values never appear here: only names reach the plan.

use std::fmt::Write as _;

use crate::canary::table;
use crate::outcome::Outcome;
use crate::records::StepRecord;
use crate::records::StoppedTask;
use crate::text::{cell, code, fenced};

/// GitHub refuses comment bodies over 65,536 characters; the report stays under it with room to spare.
pub(crate) const BODY_LIMIT: usize = 60_000;

/// Where the deploy stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    /// A dry run: the plan, nothing changed.
    Planned,
    /// Under way; the text says where (`building the image`, `canary step 2 of 3 (50%)`).
    InProgress(String),
    Ended(Outcome),
}

/// Everything the report shows, gathered by the pipeline as it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReportView {
    pub(crate) cluster: String,
    pub(crate) service: String,
    pub(crate) region: String,
    pub(crate) status: Status,
    /// `rolling`, or `canary 10%:2m, 50%:2m, 100%`.
    pub(crate) strategy: String,
    pub(crate) image: Option<String>,
    /// How this run built it (`built with BuildKit in 44.0s: 6 step(s), 4 from cache`).
    pub(crate) image_build: Option<String>,
    /// `family:revision` of the new and the previous task definition.
    pub(crate) revision: Option<String>,
    pub(crate) previous: Option<String>,
    pub(crate) steps: Vec<StepRecord>,
    /// The last ECS service events, newest first; shown when the deploy did not succeed.
    pub(crate) events: Vec<String>,
    /// The plan as markdown, for a dry run.
    pub(crate) plan: Option<String>,
    /// The canary's gates as configured.
    pub(crate) gates: Option<String>,
    /// The new revision's tasks that stopped, when the deploy did not succeed.
    pub(crate) stopped: Vec<StoppedTask>,
    /// The other services of a run that deploys several, each with where it stands.
    pub(crate) services: Vec<ServiceRow>,
    pub(crate) run_url: Option<String>,
    /// What a run that did not succeed left behind, in one sentence (`outcome::Left`): what a
    /// person must look at.
    pub(crate) left: Option<String>,
    /// Where the deployed service answers (a preview's URL).
    pub(crate) url: Option<String>,
}

/// Another service of the run: its revisions (`family:revision`) and its state in words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceRow {
    pub(crate) service: String,
    pub(crate) revision: String,
    pub(crate) previous: String,
    pub(crate) state: String,
}

/// The hidden marker that finds this service's comment again on later runs.
pub(crate) fn marker(cluster: &str, service: &str) -> String {
    format!("<!-- ecs-deploy-action:{cluster}/{service} -->")
}

pub(crate) fn render(v: &ReportView) -> String {
    let mut md = marker(&v.cluster, &v.service);
    md.push('\n');
    let (icon, headline) = match &v.status {
        Status::Planned => ("📝", "planned (dry run, nothing changed)".to_string()),
        Status::InProgress(what) => ("⏳", format!("in progress: {what}")),
        Status::Ended(outcome) => {
            let (icon, words) = outcome.headline();
            (icon, words.to_string())
        }
    };
    let _ = writeln!(md, "### {icon} Deploy to `{}/{}`: {headline}\n", v.cluster, v.service);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Strategy | {} |", cell(&v.strategy));
    if let Some(url) = &v.url {
        let _ = writeln!(md, "| Preview | {} |", cell(url));
    }
    if let Some(gates) = &v.gates {
        let _ = writeln!(md, "| Gates | {} |", cell(gates));
    }
    if let Some(image) = &v.image {
        let built = v.image_build.as_deref().map(|b| format!(" ({b})")).unwrap_or_default();
        let _ = writeln!(md, "| Image | {}{} |", cell(&code(image)), cell(&built));
    }
    match (&v.revision, &v.previous) {
        (Some(new), Some(old)) => {
            let _ = writeln!(md, "| Task definition | `{new}` (was `{old}`) |");
        }
        (None, Some(old)) => {
            let _ = writeln!(md, "| Task definition | `{old}` (current) |");
        }
        _ => {}
    }
    md.push('\n');
    if !v.services.is_empty() {
        services_table(&mut md, v, &headline);
    }
    if let Status::Ended(crate::outcome::Outcome::Paused(at)) = &v.status {
        let _ = writeln!(md, "**Waiting for approval:** {}\n", cell(&at.how_to_answer()));
    }
    let ended_badly = matches!(&v.status, Status::Ended(o) if o.reason().is_some());
    if let Status::Ended(outcome) = &v.status
        && let Some((what, reason)) = outcome.reason()
    {
        // The reason quotes what AWS said (alarm reasons, stopped reasons): inert.
        let _ = writeln!(md, "**{what}:** {}\n", code(&reason));
        if let Some(left) = &v.left {
            let _ = writeln!(md, "**Where it stands:** {}\n", cell(left));
        }
    }
    if !v.steps.is_empty() {
        md.push_str(&table::markdown(&v.steps));
        md.push('\n');
    }
    if let Some(plan) = &v.plan {
        md.push_str(plan);
        md.push('\n');
    }
    if ended_badly && !v.stopped.is_empty() {
        let _ = writeln!(md, "<details open><summary>Why the new revision's tasks stopped</summary>\n");
        for task in &v.stopped {
            let _ = writeln!(md, "**Task `{}` (`{}`):** {}\n", task.id, task.revision, code(&task.reason));
            for c in &task.containers {
                let _ = writeln!(md, "- {}: {}", code(&c.name), code(&c.ended));
            }
            md.push('\n');
            for c in task.containers.iter().filter(|c| !c.last_lines.is_empty()) {
                let _ = writeln!(md, "Last {} line(s) of {}:\n", c.last_lines.len(), code(&c.name));
                md.push_str(&fenced(&c.last_lines));
                md.push('\n');
            }
        }
        let _ = writeln!(md, "</details>\n");
    }
    if ended_badly && !v.events.is_empty() {
        let _ = writeln!(md, "<details><summary>Last service events</summary>\n");
        for e in v.events.iter().take(10) {
            let _ = writeln!(md, "- {}", code(e));
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    let mut links = Vec::new();
    if let Some(url) = &v.run_url {
        links.push(format!("[Workflow run]({url})"));
    }
    links.push(format!(
        "[ECS console](https://{r}.console.aws.amazon.com/ecs/v2/clusters/{c}/services/{s}/deployments?region={r})",
        r = v.region,
        c = v.cluster,
        s = v.service
    ));
    let _ = writeln!(md, "{}", links.join(" · "));
    cap(md)
}

/// Every service of the run, the first one first, with where each stands (states quote what AWS
/// said: inert).
fn services_table(md: &mut String, v: &ReportView, first_state: &str) {
    let _ = writeln!(md, "| Service | Task definition | State |\n|---|---|---|");
    let first_revision = match (&v.revision, &v.previous) {
        (Some(new), Some(old)) => format!("`{new}` (was `{old}`)"),
        (None, Some(old)) => format!("`{old}`"),
        _ => String::new(),
    };
    let first_strategy = v.strategy.split_whitespace().next().unwrap_or_default();
    let _ = writeln!(md, "| `{}` ({first_strategy}) | {first_revision} | {} |", v.service, cell(&code(first_state)));
    for row in &v.services {
        let _ = writeln!(
            md,
            "| `{}` (rolling) | `{}` (was `{}`) | {} |",
            row.service,
            row.revision,
            row.previous,
            cell(&code(&row.state))
        );
    }
    md.push('\n');
}

/// The body cut at a line boundary (every line holds its own code spans, so no cut leaves text
/// live) when it would pass `BODY_LIMIT`, saying so.
fn cap(md: String) -> String {
    if md.len() <= BODY_LIMIT {
        return md;
    }
    let mut end = BODY_LIMIT - 200;
    while !md.is_char_boundary(end) {
        end -= 1;
    }
    let end = md[..end].rfind('\n').unwrap_or(0);
    format!("{}\n\n… (cut at {BODY_LIMIT} characters, under GitHub's limit: the job log has all of it)\n", &md[..end])
}

/// The comment of a preview once its pull request closed: what was removed, or why not all of it.
pub(crate) fn preview_closed(
    cluster: &str,
    service: &str,
    removed: Option<&Result<Vec<String>, String>>,
    run_url: Option<&str>,
) -> String {
    let mut md = marker(cluster, service);
    md.push('\n');
    match removed {
        Some(Err(why)) => {
            let _ = writeln!(md, "### ❌ Preview `{cluster}/{service}`: not fully removed\n");
            let _ = writeln!(md, "**Why:** {}\n", code(why));
        }
        Some(Ok(parts)) => {
            let _ = writeln!(md, "### 🧹 Preview `{cluster}/{service}`: removed (the pull request closed)\n");
            for part in parts {
                let _ = writeln!(md, "- {}", code(part));
            }
            md.push('\n');
        }
        None => {
            let _ = writeln!(md, "### 🧹 Preview `{cluster}/{service}`: gone (the pull request closed)\n");
        }
    }
    if let Some(url) = run_url {
        let _ = writeln!(md, "[Workflow run]({url})");
    }
    md
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use expect_test::expect;

    use super::*;
    use crate::records::{GateResult, StepResult, Verdict};

    fn gate(gate: &'static str, passed: bool, value: &str) -> GateResult {
        let verdict = if passed { Verdict::Passed } else { Verdict::Failed };
        GateResult { gate, verdict, value: value.into(), detail: None, samples: None }
    }

    fn row(weight: u8, tasks: i32, result: StepResult, gates: Vec<GateResult>, took: Option<u64>) -> StepRecord {
        StepRecord {
            weight,
            bake: Duration::from_secs(120),
            canary_tasks: tasks,
            gates,
            result,
            took: took.map(Duration::from_secs),
        }
    }

    fn view(status: Status, steps: Vec<StepRecord>) -> ReportView {
        ReportView {
            cluster: "prod".into(),
            service: "web".into(),
            region: "us-east-1".into(),
            status,
            strategy: "canary 10%:2m, 50%:2m, 100%".into(),
            image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65".into()),
            image_build: None,
            revision: Some("web:8".into()),
            previous: Some("web:7".into()),
            steps,
            events: vec![
                "(service web-canary) has stopped 2 running tasks: (task 1a2b) (task 3c4d).".into(),
                "(service web-canary) has started 2 tasks: (task 1a2b) (task 3c4d).".into(),
            ],
            plan: None,
            stopped: Vec::new(),
            services: Vec::new(),
            gates: Some(
                "canary targets healthy in web-canary; 5xx rate ≤ stable + 1%; response time p99 < stable × 1.3".into(),
            ),
            run_url: Some("https://github.com/org/app/actions/runs/42".into()),
            left: None,
            url: None,
        }
    }

    fn ok_gates() -> Vec<GateResult> {
        vec![gate("alarms", true, "OK"), gate("target-health", true, "1/1 healthy"), gate("error-rate", true, "0.12%")]
    }

    #[test]
    fn canary_in_progress_at_step_2_of_3() {
        let v = view(
            Status::InProgress("canary step 2 of 3 (50%)".into()),
            vec![
                row(10, 1, StepResult::Passed, ok_gates(), Some(124)),
                row(50, 2, StepResult::Running, vec![], None),
                row(100, 4, StepResult::Pending, vec![], None),
            ],
        );
        expect![[r#"
            <!-- ecs-deploy-action:prod/web -->
            ### ⏳ Deploy to `prod/web`: in progress: canary step 2 of 3 (50%)

            | | |
            |---|---|
            | Strategy | canary 10%:2m, 50%:2m, 100% |
            | Gates | canary targets healthy in web-canary; 5xx rate ≤ stable + 1%; response time p99 < stable × 1.3 |
            | Image | ` 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65 ` |
            | Task definition | `web:8` (was `web:7`) |

            | Step | Weight | Bake | Canary tasks | Gates (last check) | Result | Time |
            |---|---|---|---|---|---|---|
            | 1 | 10% | 2m | 1 | ` alarms OK, target-health 1/1 healthy, error-rate 0.12% ` | passed | 2m4s |
            | 2 | 50% | 2m | 2 | - | running | - |
            | 3 | 100% | 2m | 4 | - | pending | - |

            [Workflow run](https://github.com/org/app/actions/runs/42) · [ECS console](https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments?region=us-east-1)
        "#]]
        .assert_eq(&render(&v));
    }

    #[test]
    fn canary_succeeded() {
        let v = view(
            Status::Ended(Outcome::Succeeded),
            vec![
                row(10, 1, StepResult::Passed, ok_gates(), Some(121)),
                row(50, 2, StepResult::Passed, ok_gates(), Some(122)),
                row(100, 4, StepResult::Passed, ok_gates(), Some(123)),
            ],
        );
        expect![[r#"
            <!-- ecs-deploy-action:prod/web -->
            ### ✅ Deploy to `prod/web`: succeeded

            | | |
            |---|---|
            | Strategy | canary 10%:2m, 50%:2m, 100% |
            | Gates | canary targets healthy in web-canary; 5xx rate ≤ stable + 1%; response time p99 < stable × 1.3 |
            | Image | ` 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65 ` |
            | Task definition | `web:8` (was `web:7`) |

            | Step | Weight | Bake | Canary tasks | Gates (last check) | Result | Time |
            |---|---|---|---|---|---|---|
            | 1 | 10% | 2m | 1 | ` alarms OK, target-health 1/1 healthy, error-rate 0.12% ` | passed | 2m1s |
            | 2 | 50% | 2m | 2 | ` alarms OK, target-health 1/1 healthy, error-rate 0.12% ` | passed | 2m2s |
            | 3 | 100% | 2m | 4 | ` alarms OK, target-health 1/1 healthy, error-rate 0.12% ` | passed | 2m3s |

            [Workflow run](https://github.com/org/app/actions/runs/42) · [ECS console](https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments?region=us-east-1)
        "#]]
        .assert_eq(&render(&v));
    }

    #[test]
    fn canary_rolled_back_at_step_2_with_alarm_evidence() {
        let mut failing = ok_gates();
        failing[0] = GateResult {
            gate: "alarms",
            verdict: Verdict::Failed,
            value: "api-5xx in ALARM".into(),
            detail: Some("api-5xx: Threshold Crossed: 3 datapoints were greater than 1.0".into()),
            samples: None,
        };
        let mut v = view(
            Status::Ended(Outcome::RolledBack {
                reason: "alarms gate failed: api-5xx in ALARM (api-5xx: Threshold Crossed: 3 datapoints were greater than 1.0)"
                    .into(),
                at: Some(2),
            }),
            vec![
                row(10, 1, StepResult::Passed, ok_gates(), Some(121)),
                row(50, 2, StepResult::Failed, failing, Some(47)),
                row(100, 4, StepResult::Pending, vec![], None),
            ],
        );
        v.left = Some("prod/web is back on web:7, with all traffic.".into());
        expect![[r#"
            <!-- ecs-deploy-action:prod/web -->
            ### ↩️ Deploy to `prod/web`: rolled back

            | | |
            |---|---|
            | Strategy | canary 10%:2m, 50%:2m, 100% |
            | Gates | canary targets healthy in web-canary; 5xx rate ≤ stable + 1%; response time p99 < stable × 1.3 |
            | Image | ` 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65 ` |
            | Task definition | `web:8` (was `web:7`) |

            **Rolled back:** ` step 2: alarms gate failed: api-5xx in ALARM (api-5xx: Threshold Crossed: 3 datapoints were greater than 1.0) `

            **Where it stands:** prod/web is back on web:7, with all traffic.

            | Step | Weight | Bake | Canary tasks | Gates (last check) | Result | Time |
            |---|---|---|---|---|---|---|
            | 1 | 10% | 2m | 1 | ` alarms OK, target-health 1/1 healthy, error-rate 0.12% ` | passed | 2m1s |
            | 2 | 50% | 2m | 2 | ` alarms api-5xx in ALARM ✗, target-health 1/1 healthy, error-rate 0.12% ` | FAILED | 47s |
            | 3 | 100% | 2m | 4 | - | pending | - |

            <details><summary>Last service events</summary>

            - ` (service web-canary) has stopped 2 running tasks: (task 1a2b) (task 3c4d). `
            - ` (service web-canary) has started 2 tasks: (task 1a2b) (task 3c4d). `

            </details>

            [Workflow run](https://github.com/org/app/actions/runs/42) · [ECS console](https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments?region=us-east-1)
        "#]]
        .assert_eq(&render(&v));
    }

    #[test]
    fn a_deploy_paused_for_approval_says_how_to_answer_it_and_blames_nothing() {
        let at = crate::outcome::PausedAt {
            service: "web".into(),
            service_deployment_arn: "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/abc".into(),
            hook_id: "ecs-pause-x".into(),
            stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
            production: 10.0,
            expires: Some("2026-12-06T18:00:00Z".into()),
        };
        let mut v = view(Status::Ended(Outcome::Paused(Box::new(at))), vec![]);
        v.events = vec!["(service web) has started 2 tasks".into()];
        let md = render(&v);
        assert!(md.contains("### ⏸️ Deploy to `prod/web`: paused for approval"), "{md}");
        assert!(md.contains("**Waiting for approval:** ECS holds web at PRE_PRODUCTION_TRAFFIC_SHIFT with green on 10% of production traffic until 2026-12-06T18:00:00Z"), "{md}");
        assert!(md.contains("`resume: continue`") && md.contains("`resume: rollback`"), "{md}");
        assert!(!md.contains("**Failed:**") && !md.contains("Last service events"), "a pause is no failure:\n{md}");
    }

    #[test]
    fn rolling_deploy_failed_with_its_last_events() {
        let failed = Outcome::Failed { reason: "the deployment did not become stable within wait-timeout 15m".into() };
        let mut v = view(Status::Ended(failed), vec![]);
        v.strategy = "rolling".into();
        v.events = vec![
            "(service web) is unable to consistently start tasks successfully.".into(),
            "task 9e1f (web:8) stopped: Essential container in task exited (web: exit code 1)".into(),
        ];
        expect![[r#"
            <!-- ecs-deploy-action:prod/web -->
            ### ❌ Deploy to `prod/web`: failed

            | | |
            |---|---|
            | Strategy | rolling |
            | Gates | canary targets healthy in web-canary; 5xx rate ≤ stable + 1%; response time p99 < stable × 1.3 |
            | Image | ` 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:9f86d081884c7d65 ` |
            | Task definition | `web:8` (was `web:7`) |

            **Failed:** ` the deployment did not become stable within wait-timeout 15m `

            <details><summary>Last service events</summary>

            - ` (service web) is unable to consistently start tasks successfully. `
            - ` task 9e1f (web:8) stopped: Essential container in task exited (web: exit code 1) `

            </details>

            [Workflow run](https://github.com/org/app/actions/runs/42) · [ECS console](https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments?region=us-east-1)
        "#]]
        .assert_eq(&render(&v));
    }

    #[test]
    fn dry_run_plan() {
        let mut v = view(Status::Planned, vec![]);
        v.revision = None;
        v.image = None;
        v.plan = Some(
            "| Step | Weight (stable/canary) | Canary tasks | Bake |\n|---|---|---|---|\n| 1 | 90/10 | 1 | 2m |\n"
                .into(),
        );
        expect![[r#"
            <!-- ecs-deploy-action:prod/web -->
            ### 📝 Deploy to `prod/web`: planned (dry run, nothing changed)

            | | |
            |---|---|
            | Strategy | canary 10%:2m, 50%:2m, 100% |
            | Gates | canary targets healthy in web-canary; 5xx rate ≤ stable + 1%; response time p99 < stable × 1.3 |
            | Task definition | `web:7` (current) |

            | Step | Weight (stable/canary) | Canary tasks | Bake |
            |---|---|---|---|
            | 1 | 90/10 | 1 | 2m |

            [Workflow run](https://github.com/org/app/actions/runs/42) · [ECS console](https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments?region=us-east-1)
        "#]]
        .assert_eq(&render(&v));
    }
}
