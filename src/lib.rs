//! ecs-deploy-action: build, push and deploy to Amazon ECS from one GitHub Actions step.

pub mod aws;
pub mod calls;
pub mod canary;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod ecs;
pub mod failure;
pub mod gha;
pub mod image;
pub mod pipeline;
pub mod plan;
pub mod report;
mod retry;
mod run;
pub mod secret;
pub mod signals;

pub use run::{ExitStatus, run};
