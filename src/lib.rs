//! ecs-deploy-action: build, push and deploy to Amazon ECS from one GitHub Actions step.

pub mod canary;
pub mod config;
pub mod gha;
pub mod secret;
