//! One run, start to end: inputs → config → credentials → plan → (dry run stops here) → image →
//! deploy, mapped to an exit status. Everything a person needs to follow goes through `Gha`.

use std::ffi::OsString;
use std::time::SystemTime;

use anyhow::Result;

use crate::aws::{Aws, ambient_config};
use crate::config::{Config, ImageSource, Inputs};
use crate::credentials::{self, Runner};
use crate::ecs::{rollout, taskdef};
use crate::failure::Refused;
use crate::gha::Gha;
use crate::plan::StrategyPlan;
use crate::{canary, image, plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// The deploy failed, was refused, or was rolled back.
    Failed = 1,
    /// An input is invalid; nothing was called.
    InvalidInput = 2,
}

/// Runs the action with `args` (program name first) and the environment `var`.
pub async fn run(args: Vec<OsString>, var: impl Fn(&str) -> Option<String>, gha: &Gha) -> ExitStatus {
    let config = match configure(args, &var, gha) {
        Ok(config) => config,
        Err(status) => return status,
    };
    match execute(&config, &var, gha).await {
        Ok(()) => ExitStatus::Success,
        Err(failure) => {
            let title = if failure.error.is::<Refused>() { "Deploy refused" } else { failure.stage };
            gha.error(title, &format!("{:#}", failure.error));
            gha.info(&failure.consequence);
            output(gha, "status", failure.status);
            ExitStatus::Failed
        }
    }
}

/// Inputs to a validated config, or the exit status that ends the run (help, version, bad input).
fn configure(args: Vec<OsString>, var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> Result<Config, ExitStatus> {
    let inputs = match Inputs::from_env_and_args(var, args) {
        Ok(inputs) => inputs,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return Err(if code == 0 { ExitStatus::Success } else { ExitStatus::InvalidInput });
        }
    };
    if let Some(token) = &inputs.github_token {
        gha.mask(token);
    }
    let config = Config::from_inputs(&inputs, var).map_err(|errors| {
        for e in &errors.0 {
            gha.error("Invalid input", &e.to_string());
        }
        gha.info(&format!(
            "{} invalid input{}: nothing was called or changed. Fix the workflow's `with:` (or the flags) and run again.",
            errors.0.len(),
            if errors.0.len() == 1 { "" } else { "s" }
        ));
        ExitStatus::InvalidInput
    })?;
    for warning in &config.warnings {
        gha.warning(warning);
    }
    Ok(config)
}

/// A failed run: in which stage, why, what that left behind, and the `status` output.
struct Failure {
    stage: &'static str,
    error: anyhow::Error,
    consequence: String,
    status: &'static str,
}

trait InStage<T> {
    fn in_stage(self, stage: &'static str, consequence: &str) -> Result<T, Failure>;
}

impl<T> InStage<T> for Result<T> {
    fn in_stage(self, stage: &'static str, consequence: &str) -> Result<T, Failure> {
        self.map_err(|error| Failure { stage, error, consequence: consequence.to_string(), status: "failed" })
    }
}

const NOTHING_CHANGED: &str = "Nothing was changed.";
const SERVICE_UNCHANGED: &str = "The service was not changed.";

async fn execute(config: &Config, var: &impl Fn(&str) -> Option<String>, gha: &Gha) -> Result<(), Failure> {
    let ambient = ambient_config(&config.aws).await;
    let credentials = {
        let _group = gha.group("Credentials");
        credentials::obtain(&config.aws, &ambient, &Runner::from_env(var), gha)
            .await
            .in_stage("Could not get AWS credentials", NOTHING_CHANGED)?
    };
    let aws = Aws::new(ambient, credentials.1);

    let plan = {
        let _group = gha.group("Plan");
        let plan = plan::resolve(config, &aws).await.in_stage("Could not plan the deploy", NOTHING_CHANGED)?;
        gha.info(&plan::text(&plan));
        plan
    };
    if let Err(e) = gha.append_summary(&plan::markdown(&plan, config.dry_run)) {
        gha.warning(&format!("could not write the job summary: {e}"));
    }
    if config.dry_run {
        gha.info("DRY RUN OK: the plan is valid and nothing was changed.");
        return Ok(());
    }

    let build = match &config.image {
        ImageSource::Build(b) => Some(b),
        ImageSource::Existing(_) => None,
    };
    let tag = build.map(|b| b.tag.as_str()).unwrap_or_default();
    let labels = image::oci_labels(var, tag, SystemTime::now());
    let image =
        image::ensure(&plan.image, build, labels, &aws, gha).await.in_stage("Image failed", SERVICE_UNCHANGED)?;
    output(gha, "image-uri", &image.uri);
    output(gha, "image-digest", image.digest.as_deref().unwrap_or_default());

    let Some(deploy) = &plan.deploy else {
        gha.info(&format!("image ready: {} (no cluster/service: nothing to deploy)", image.uri));
        output(gha, "status", "succeeded");
        return Ok(());
    };

    let mut rendered = deploy.rendered.clone();
    taskdef::set_image(&mut rendered, &image.uri);
    let revision = rollout::register(&aws.ecs, &rendered.task_definition, &deploy.tags)
        .await
        .in_stage("Deploy failed", SERVICE_UNCHANGED)?;
    gha.info(&format!("registered {} ({} in container {})", rollout::short(&revision), image.uri, rendered.container));
    output(gha, "task-definition-arn", &revision);
    output(gha, "previous-task-definition-arn", &deploy.previous_task_definition_arn);

    match &deploy.strategy {
        StrategyPlan::Rolling => {
            let request = rollout::Rolling {
                cluster: &deploy.cluster,
                service: &deploy.service,
                revision: &revision,
                previous: &deploy.previous_task_definition_arn,
                wait_timeout: deploy.wait_timeout,
                rollback: deploy.rollback,
                poll: poll_setting(var),
            };
            let (outcome, _events) = {
                let _group = gha.group(&format!("Rolling deploy of {}/{}", deploy.cluster, deploy.service));
                rollout::rolling(&aws.ecs, &request, gha)
                    .await
                    .in_stage("Deploy failed", "The service may be mid-deployment: check it in the ECS console.")?
            };
            finish(outcome, deploy, gha)
        }
        StrategyPlan::Canary(canary_plan) => {
            let run = canary::deploy::CanaryRun {
                aws: &aws,
                cluster: &deploy.cluster,
                stable_service: &deploy.service,
                plan: canary_plan,
                revision: &revision,
                previous: &deploy.previous_task_definition_arn,
                wait_timeout: deploy.wait_timeout,
                poll: poll_setting(var),
                cancel: cancel_on_signals(),
            };
            let result = {
                let _group = gha.group(&format!("Canary deploy of {}/{}", deploy.cluster, deploy.service));
                canary::deploy::run(run, gha).await
            };
            gha.info(&canary::table::text(&result.table));
            if let Err(e) =
                gha.append_summary(&format!("#### Canary steps\n\n{}", canary::table::markdown(&result.table)))
            {
                gha.warning(&format!("could not write the job summary: {e}"));
            }
            let outcome = match result.outcome {
                canary::controller::Outcome::Succeeded => rollout::Outcome::Succeeded,
                canary::controller::Outcome::RolledBack { reason, step } => rollout::Outcome::RolledBack {
                    reason: match step {
                        Some(n) => format!("step {n}: {reason}"),
                        None => reason,
                    },
                },
                canary::controller::Outcome::Failed { reason } => rollout::Outcome::Failed { reason },
            };
            finish(outcome, deploy, gha)
        }
    }
}

/// Becomes true on SIGINT or SIGTERM (a cancelled workflow run), so the canary can put traffic back
/// before the process ends. Later signals are caught too: the abort finishes.
fn cancel_on_signals() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        let _ = tx.send(true);
        // Keep the handlers installed: a second signal must not kill the abort half-way.
        std::future::pending::<()>().await;
    });
    rx
}

/// The end of a deploy: its status output, and for anything but success, the failure that ends the run.
fn finish(outcome: rollout::Outcome, deploy: &plan::DeployPlan, gha: &Gha) -> Result<(), Failure> {
    let previous = rollout::short(&deploy.previous_task_definition_arn);
    match outcome {
        rollout::Outcome::Succeeded => {
            output(gha, "status", "succeeded");
            Ok(())
        }
        rollout::Outcome::RolledBack { reason } => Err(Failure {
            stage: "Deploy rolled back",
            error: anyhow::anyhow!("{reason}"),
            consequence: format!("{}/{} is back on {previous}.", deploy.cluster, deploy.service),
            status: "rolled-back",
        }),
        rollout::Outcome::Failed { reason } => Err(Failure {
            stage: "Deploy failed",
            error: anyhow::anyhow!("{reason}"),
            consequence: format!(
                "{}/{} was left as it is (rollback: false, or the rollback did not finish).",
                deploy.cluster, deploy.service
            ),
            status: "failed",
        }),
    }
}

/// How often to poll ECS. `ECS_DEPLOY_POLL_INTERVAL` (e.g. `200ms`) fixes the interval, for local
/// stacks and tests; the default starts at 2 s and backs off to 10 s.
fn poll_setting(var: &impl Fn(&str) -> Option<String>) -> rollout::Poll {
    match var("ECS_DEPLOY_POLL_INTERVAL").and_then(|v| crate::config::duration::parse(&v).ok()) {
        Some(d) if !d.is_zero() => rollout::Poll { first: d, max: d },
        _ => rollout::Poll::default(),
    }
}

fn output(gha: &Gha, name: &str, value: &str) {
    if let Err(e) = gha.set_output(name, value) {
        gha.warning(&format!("could not set output `{name}`: {e}"));
    }
}
