//! One run, start to end: inputs → config → plan → (dry run stops here) → execute, mapped to an exit
//! status. Everything a person needs to follow goes through `Gha`.

use std::ffi::OsString;

use crate::aws::{Aws, ambient_config};
use crate::config::{Config, Inputs};
use crate::failure::Refused;
use crate::gha::Gha;
use crate::plan;

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
    let inputs = match Inputs::from_env_and_args(&var, args) {
        Ok(inputs) => inputs,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return if code == 0 { ExitStatus::Success } else { ExitStatus::InvalidInput };
        }
    };
    if let Some(token) = &inputs.github_token {
        gha.mask(token);
    }
    let config = match Config::from_inputs(&inputs, &var) {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors.0 {
                gha.error("Invalid input", &e.to_string());
            }
            gha.info(&format!(
                "{} invalid input{}: nothing was called or changed. Fix the workflow's `with:` (or the flags) and run again.",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            ));
            return ExitStatus::InvalidInput;
        }
    };
    for warning in &config.warnings {
        gha.warning(warning);
    }

    let aws = Aws::new(ambient_config(&config.aws).await, None);
    let plan = {
        let _group = gha.group("Plan");
        match plan::resolve(&config, &aws).await {
            Ok(plan) => {
                gha.info(&plan::text(&plan));
                plan
            }
            Err(e) => {
                let title = if e.is::<Refused>() { "Deploy refused" } else { "Could not plan the deploy" };
                gha.error(title, &format!("{e:#}"));
                gha.info("Nothing was changed.");
                return ExitStatus::Failed;
            }
        }
    };
    if let Err(e) = gha.append_summary(&plan::markdown(&plan, config.dry_run)) {
        gha.warning(&format!("could not write the job summary: {e}"));
    }
    if config.dry_run {
        gha.info("DRY RUN OK: the plan is valid and nothing was changed.");
        return ExitStatus::Success;
    }
    gha.error(
        "Not available yet",
        "this build of ecs-deploy-action can plan (dry-run: true) but not yet build, push or deploy",
    );
    ExitStatus::Failed
}
