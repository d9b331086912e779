//! One run, start to end: inputs → config → the pipeline, mapped to an exit status. Everything a
//! person needs to follow goes through `Gha`.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::config::{Config, Inputs};
use crate::failure::Refused;
use crate::gha::Gha;
use crate::iam::command::IamArgs;
use crate::outcome::{ExitStatus, Outcome};
use crate::pipeline;
use crate::report::Running;
use crate::report::markdown::Status;

/// The process: the environment, an async runtime, one run, its exit code.
pub fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).ok();
    let gha = Gha::from_env(var);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            gha.error("Could not start", &format!("cannot create the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(run(std::env::args_os().collect(), var, &gha));
    ExitCode::from(status as u8)
}

/// Runs the action with `args` (program name first) and the environment `var`.
pub(crate) async fn run(args: Vec<OsString>, var: impl Fn(&str) -> Option<String>, gha: &Gha) -> ExitStatus {
    // First thing: from here on a cancelled workflow run is a flag every stage watches.
    crate::signals::install();
    if args.get(1).and_then(|a| a.to_str()) == Some("setup") {
        return crate::setup::run(&args[2..], &var, gha).await;
    }
    if args.get(1).and_then(|a| a.to_str()) == Some("previews") {
        return match args.get(2).and_then(|a| a.to_str()) {
            Some("prune") => crate::preview::prune::run(&args[3..], &var, gha).await,
            _ => {
                gha.error(
                    "Invalid input",
                    "previews: the one command is `previews prune` (see `previews prune --help`)",
                );
                ExitStatus::InvalidInput
            }
        };
    }
    match crate::iam::command::split(&args) {
        Ok(Some((iam, rest))) => return iam_policy(iam, rest, &var).await,
        Ok(None) => {}
        Err(e) => {
            gha.error("Invalid input", &format!("iam-policy: {e}"));
            return ExitStatus::InvalidInput;
        }
    }
    let config = match configure(args, &var, gha) {
        Ok(config) => config,
        Err(status) => return status,
    };
    if let Some(preview) = config.deploy.as_ref().and_then(|d| d.preview.as_ref()) {
        if preview.fork {
            // GitHub gives a fork's pull-request runs no OIDC token and no secrets: nothing is made.
            gha.warning(&format!(
                "no preview for #{}: it comes from a fork, and GitHub gives runs of a fork's pull request no OIDC token or secrets to deploy with. A maintainer can deploy it by pushing its branch to this repository",
                preview.number
            ));
            pipeline::output(gha, "status", "skipped");
            return ExitStatus::Success;
        }
        if preview.closing {
            return pipeline::close_preview(&config, &var, gha).await;
        }
    }
    // The report starts first: a run that cannot even get credentials says so on the pull request.
    let report = crate::report::start(&config, &var, gha);
    let result = pipeline::execute(&config, &var, gha, report.as_ref().map(Running::sink)).await;
    // How the run ended, in one value: the report, the `status` output and the exit code read it.
    let outcome = match &result {
        Ok((outcome, _)) => outcome.clone(),
        Err(failure) => failure.outcome.clone(),
    };
    let planned = result.is_ok() && config.dry_run;
    // A dry run changed nothing: its status says so.
    pipeline::output(gha, "status", if planned { "planned" } else { outcome.status() });
    if let Some(report) = report {
        let status = if planned { Status::Planned } else { Status::Ended(outcome.clone()) };
        report.finish(gha, status, result.as_ref().err().map(|f| f.left.sentence())).await;
    }
    if let Err(failure) = &result {
        let title = if failure.error.is::<Refused>() { "Deploy refused" } else { failure.stage };
        let preview = config.deploy.as_ref().is_some_and(|d| d.preview.is_some());
        gha.error(title, &with_policy_hint(format!("{:#}", failure.error), preview));
        gha.info(&failure.left.sentence());
    }
    // The last line says how it ended: what was deployed, or what waits (a failure said it above).
    match (&outcome, &result) {
        (Outcome::Paused(at), _) => gha.notice("Paused for approval", &at.how_to_answer()),
        (_, Ok((_, Some(deployed)))) => gha.notice("Deployed", deployed),
        _ => {}
    }
    outcome.exit_status()
}

/// A failure AWS refused for a missing permission (its message names the action and resource), with
/// the command that prints what the deploy needs.
fn with_policy_hint(message: String, preview: bool) -> String {
    let command = if preview { "iam-policy --preview" } else { "iam-policy" };
    if message.contains("AccessDenied") || message.contains("is not authorized to perform") {
        format!(
            "{message}\nhint: the role lacks the permission named above; `ecs-deploy-action {command}` with this workflow's inputs prints the policy this deploy needs (README, \"Permissions\")"
        )
    } else {
        message
    }
}

/// `iam-policy`: the policy JSON on stdout, everything else on stderr.
async fn iam_policy(iam: IamArgs, args: Vec<OsString>, var: &impl Fn(&str) -> Option<String>) -> ExitStatus {
    if iam.help {
        print!("{}", crate::iam::command::HELP);
        return ExitStatus::Success;
    }
    let stderr: crate::gha::Sink = std::sync::Arc::new(std::sync::Mutex::new(std::io::stderr()));
    let gha = Gha::new(false, stderr, None, None);
    let policy = if iam.setup {
        match crate::setup::args::parse(&args[1..], var) {
            Ok(crate::setup::args::Parsed::Run(setup)) => {
                Ok(crate::iam::document(&crate::iam::setup::statements(&setup)))
            }
            Ok(crate::setup::args::Parsed::Help) => {
                print!("{}", crate::setup::args::HELP);
                return ExitStatus::Success;
            }
            Err(errors) => {
                for e in &errors {
                    gha.error("Invalid input", &format!("iam-policy --setup: {e}"));
                }
                return ExitStatus::InvalidInput;
            }
        }
    } else if iam.trust {
        // The deploy inputs are optional here: only the region and the audience are read.
        let config = Inputs::from_env_and_args(var, args).ok().and_then(|i| Config::from_inputs(&i, var).ok());
        crate::iam::command::trust_policy(&iam, config.as_ref()).await
    } else {
        let config = match configure(args, var, &gha) {
            Ok(config) => config,
            Err(status) => return status,
        };
        crate::iam::command::identity_policy(&iam, &config, var, &gha).await
    };
    match policy {
        Ok(json) => {
            println!("{json}");
            ExitStatus::Success
        }
        Err(e) => {
            gha.error("iam-policy", &format!("{e:#}"));
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
    // Before anything could print them: the build's secrets, one ID=VALUE a line.
    for line in inputs.secrets.as_deref().unwrap_or_default().lines() {
        if let Some((_, value)) = line.trim().split_once('=').filter(|(_, v)| !v.is_empty()) {
            gha.mask(value);
        }
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
    // The runner masks the log only; redacting from every sink needs the values masked here too.
    for (name, value) in config.deploy.iter().flat_map(|d| &d.environment) {
        if let Some(secret) = crate::secret::to_mask(name, value) {
            gha.mask(secret);
        }
    }
    for warning in &config.warnings {
        gha.warning(warning);
    }
    Ok(config)
}
