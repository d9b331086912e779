//! ecs-deploy-action: build, push and deploy to Amazon ECS from one GitHub Actions step.
//!
//! Only what the binary and the tests need is public; every module is crate-private, so the
//! compiler reports code nothing calls.

mod alarms;
mod all_or_nothing;
mod aws;
mod calls;
mod canary;
mod clock;
mod config;
mod credentials;
mod ecs;
mod elb;
mod failure;
mod flags;
mod gha;
mod iam;
mod image;
mod listener;
mod native;
mod outcome;
mod pipeline;
mod plan;
mod preview;
mod progress;
mod provenance;
mod records;
mod report;
mod retry;
mod run;
mod schedules;
mod secret;
mod setup;
mod signals;
mod stop;
mod text;
mod workflow_run;

pub use run::main;

/// The kebab-case names of every input, as the CLI knows them (tests compare them with action.yml).
pub fn input_names() -> Vec<String> {
    config::Inputs::names()
}
