//! The stages of a run after its inputs are valid: credentials → plan → (a dry run stops here) →
//! image → register → every service by its strategy, telling the report (a sink) as it goes. Each
//! stage's failure says what it left behind.

use std::time::SystemTime;

use anyhow::Result;

use crate::aws::{Aws, ambient_config};
use crate::config::{Config, ImageSource};
use crate::credentials::{self, Runner};
use crate::ecs::lease::Leases;
use crate::ecs::rollout;
use crate::gha::Gha;
use crate::outcome::{Left, Outcome};
use crate::plan::{self, DeployPlan, StrategyPlan};
use crate::progress::{Event, Progress};
use crate::{image, signals};

mod close;
mod deploy;
mod service;
mod timings;

pub(crate) use close::close_preview;
use deploy::{deploy_stage, take_leases};
use timings::Timings;

/// A run that did not succeed: in which stage, why, what that left behind, and how it ended.
pub(crate) struct Failure {
    pub(crate) stage: &'static str,
    pub(crate) error: anyhow::Error,
    pub(crate) left: Left,
    pub(crate) outcome: Outcome,
}

trait InStage<T> {
    fn in_stage(self, stage: &'static str, left: Left) -> Result<T, Failure>;
}

impl<T> InStage<T> for Result<T> {
    fn in_stage(self, stage: &'static str, left: Left) -> Result<T, Failure> {
        self.map_err(|error| {
            let outcome = Outcome::Failed { reason: format!("{error:#}") };
            Failure { stage, error, left, outcome }
        })
    }
}

/// Runs the stages; `report` (a run that deploys a service) hears what the comment, the Deployment
/// and the summary show.
pub(crate) async fn execute<R: Progress + Clone>(
    config: &Config,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
    report: Option<R>,
) -> Result<(Outcome, Option<String>), Failure> {
    let mut timings = Timings::new();
    let result = execute_timed(config, var, gha, report, &mut timings).await;
    detail(config, gha, &timings.line());
    // What was deployed, for the run's last line.
    result.map(|outcome| (outcome, timings.result()))
}

async fn execute_timed<R: Progress + Clone>(
    config: &Config,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
    report: Option<R>,
    timings: &mut Timings,
) -> Result<Outcome, Failure> {
    let ambient = ambient_config(&config.aws).await;
    let credentials = {
        let _group = gha.group("Credentials");
        unless_cancelled(
            "Could not get AWS credentials",
            Left::Nothing,
            credentials::obtain(&config.aws, &ambient, Runner::from_env(var), gha),
        )
        .await?
    };
    let (path, provider) = credentials;
    let aws = Aws::new(ambient, provider);
    timings.mark("credentials");
    let result = stages(config, var, gha, &aws, path, report, timings).await;
    for line in aws.calls.summary() {
        detail(config, gha, &format!("AWS calls: {line}"));
    }
    result
}

/// Stage timings and call counts: for whoever measures or debugs the run, not the run's story.
fn detail(config: &Config, gha: &Gha, line: &str) {
    if config.verbose { gha.info(line) } else { gha.debug(line) }
}

async fn stages<R: Progress + Clone>(
    config: &Config,
    var: &impl Fn(&str) -> Option<String>,
    gha: &Gha,
    aws: &Aws,
    path: credentials::Path,
    mut report: Option<R>,
    timings: &mut Timings,
) -> Result<Outcome, Failure> {
    let plan = {
        let _group = gha.group("Plan");
        let plan =
            unless_cancelled("Could not plan the deploy", Left::Nothing, plan::resolve(config, aws, gha)).await?;
        if let ImageSource::Build(build) = &config.image {
            let checked = crate::image::buildkit::check_builder(build);
            unless_cancelled("Could not plan the deploy", Left::Nothing, checked).await?;
        }
        if let Some(deploy) = &plan.deploy {
            mask_environment(deploy, gha);
        }
        gha.info(&plan::text(&plan));
        if let Some(deploy) = &plan.deploy {
            credentials::check_lifetime(path, var, plan::run_worst_case(&plan, deploy), gha)
                .in_stage("Could not plan the deploy", Left::Nothing)?;
        }
        plan
    };
    timings.mark("plan");
    if report.is_some() {
        if let Some(d) = &plan.deploy {
            let shown = config.dry_run.then(|| plan::markdown(&plan, true));
            let first = &d.first().strategy;
            let gates = match first {
                StrategyPlan::Canary(c) => Some(plan::gates_line(c)),
                StrategyPlan::Native(n) if n.judged() => {
                    Some(plan::gates_line_for(&n.gates, format!("green targets healthy in {}", n.green.name)))
                }
                _ => None,
            };
            let previous = &d.first().previous_task_definition_arn;
            let strategy = first.label();
            let url = d.first().strategy.preview().map(|p| p.url.as_str());
            let planned =
                Event::Planned { previous, plan: shown.as_deref(), gates: gates.as_deref(), strategy: &strategy, url };
            report.emit(planned, &[]).await;
        }
        if !config.dry_run {
            report.emit(Event::StageStarted { what: "building the image" }, &[]).await;
        }
    } else if let Err(e) = gha.append_summary(&plan::markdown(&plan, config.dry_run)) {
        gha.warning(&format!("could not write the job summary: {e}"));
    }
    if config.dry_run {
        output(gha, "plan", &plan::json(&plan).to_string());
        gha.info("DRY RUN OK: the plan is valid and nothing was changed.");
        return Ok(Outcome::Succeeded);
    }

    let build = match &config.image {
        ImageSource::Build(b) => Some(b.as_ref()),
        ImageSource::Existing { .. } | ImageSource::AsRegistered => None,
    };
    let tag = build.map(|b| b.tag.as_str()).unwrap_or_default();
    let labels = image::oci_labels(var, tag, SystemTime::now());
    let services = config.deploy.as_ref().map_or(1, |d| 1 + d.also.len());
    let unchanged = Left::Unchanged { services, registered: Vec::new() };
    // What the first service runs now: a build may reuse its cache.
    let replaced = plan.deploy.as_ref().and_then(|d| {
        d.first().rendered.changes.iter().find_map(|c| match c {
            crate::ecs::taskdef::Change::Image { from, .. } => from.clone(),
            _ => None,
        })
    });
    let ensured = image::ensure(&plan.image, build, labels, replaced.as_deref(), aws, gha);
    let image = unless_cancelled("Image failed", unchanged, ensured).await?;
    timings.mark("image");
    output(gha, "image-uri", &image.uri);
    output(gha, "image-digest", image.digest.as_deref().unwrap_or_default());

    let (Some(deploy), Some(mut report)) = (&plan.deploy, report) else {
        gha.info(&format!("image ready: {} (no cluster/service: nothing to deploy)", image.uri));
        if plan.deploy.is_none()
            && let Some(built) = &image.build
            && let Err(e) = gha.append_summary(&format!("### Image\n\n`{}` ({built})\n", image.uri))
        {
            gha.warning(&format!("could not write the job summary: {e}"));
        }
        return Ok(Outcome::Succeeded);
    };
    report.emit(Event::ImageReady { uri: &image.uri, build: image.build.as_deref() }, &[]).await;

    let leases = Leases::keep(take_leases(deploy, aws, var, gha).await?, &aws.ecs, gha);
    let result = deploy_stage(deploy, &image.uri, aws, var, gha, report, &leases, timings).await;
    match &result {
        // The lease stays taken while ECS waits for people: no other deploy starts meanwhile.
        Ok(Outcome::Paused(at)) => leases.hold_while_paused(at, &aws.ecs, gha).await,
        _ => leases.release(&aws.ecs, gha).await,
    }
    result
}

/// Masks the secret-looking environment values of every new revision (`secret::to_mask`) before
/// anything of the deploy is shown: a crashed container's last lines go to the pull-request
/// comment and the summary, which the runner does not mask.
fn mask_environment(deploy: &DeployPlan, gha: &Gha) {
    for definition in deploy.services.iter().map(|s| &s.rendered) {
        for container in definition.task_definition.container_definitions() {
            for pair in container.environment() {
                if let Some(secret) = pair.name().zip(pair.value()).and_then(|(n, v)| crate::secret::to_mask(n, v)) {
                    gha.mask(secret);
                }
            }
        }
    }
}

/// Runs a stage that changes nothing in AWS until it ends or the run is cancelled, whichever comes
/// first (a cancelled build stops at once: nothing was deployed yet).
async fn unless_cancelled<T>(
    stage: &'static str,
    left: Left,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T, Failure> {
    let mut cancel = signals::cancelled();
    tokio::select! {
        result = work => result.in_stage(stage, left),
        _ = cancel.wait_for(|c| *c) => Err(anyhow::anyhow!(signals::CANCELLED_REASON)).in_stage(stage, left),
    }
}

/// How often to poll ECS. `ECS_DEPLOY_POLL_INTERVAL` (e.g. `200ms`) fixes the interval, for local
/// stacks and tests; the default asks after 1 s, then every 2 s at most (`Poll::default`).
fn poll_setting(var: &impl Fn(&str) -> Option<String>) -> rollout::Poll {
    match var("ECS_DEPLOY_POLL_INTERVAL").and_then(|v| crate::config::duration::parse(&v).ok()) {
        Some(d) if !d.is_zero() => rollout::Poll { first: d, max: d },
        _ => rollout::Poll::default(),
    }
}

pub(crate) fn output(gha: &Gha, name: &str, value: &str) {
    if let Err(e) = gha.set_output(name, value) {
        gha.warning(&format!("could not set output `{name}`: {e}"));
    }
}
