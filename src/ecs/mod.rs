//! Amazon ECS: services, task definitions, and (later) rolling them out.

pub mod events;
pub mod rollout;
pub mod service;
pub mod taskdef;
pub mod taskdef_file;
