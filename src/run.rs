//! One run, start to end: inputs → config → the pipeline, mapped to an exit status. Everything a
//! person needs to follow goes through `Gha`.

use std::ffi::OsString;

use crate::config::{Config, Inputs};
use crate::failure::Refused;
use crate::gha::Gha;
use crate::pipeline;

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
    match pipeline::execute(&config, &var, gha).await {
        Ok(()) => ExitStatus::Success,
        Err(failure) => {
            let title = if failure.error.is::<Refused>() { "Deploy refused" } else { failure.stage };
            gha.error(title, &format!("{:#}", failure.error));
            gha.info(&failure.consequence);
            pipeline::output(gha, "status", failure.status);
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
