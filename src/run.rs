//! One run, start to end: inputs → config → credentials → plan → (dry run stops here) → image →
//! deploy, mapped to an exit status. Everything a person needs to follow goes through `Gha`.

use std::ffi::OsString;
use std::time::SystemTime;

use anyhow::Result;

use crate::aws::{Aws, ambient_config};
use crate::config::{Config, ImageSource, Inputs};
use crate::credentials::{self, Runner};
use crate::failure::Refused;
use crate::gha::Gha;
use crate::{image, plan};

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
            gha.info(failure.consequence);
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

/// A failed run: in which stage, why, and what that left behind.
struct Failure {
    stage: &'static str,
    error: anyhow::Error,
    consequence: &'static str,
}

trait InStage<T> {
    fn in_stage(self, stage: &'static str, consequence: &'static str) -> Result<T, Failure>;
}

impl<T> InStage<T> for Result<T> {
    fn in_stage(self, stage: &'static str, consequence: &'static str) -> Result<T, Failure> {
        self.map_err(|error| Failure { stage, error, consequence })
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

    match &plan.deploy {
        None => {
            gha.info(&format!("image ready: {} (no cluster/service: nothing to deploy)", image.uri));
            output(gha, "status", "succeeded");
            Ok(())
        }
        Some(_) => Err(Failure {
            stage: "Not available yet",
            error: anyhow::anyhow!("this build can build and push, but not yet roll out to ECS"),
            consequence: SERVICE_UNCHANGED,
        }),
    }
}

fn output(gha: &Gha, name: &str, value: &str) {
    if let Err(e) = gha.set_output(name, value) {
        gha.warning(&format!("could not set output `{name}`: {e}"));
    }
}
