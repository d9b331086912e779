//! Amazon ECS: services, task definitions, and (later) rolling them out.

pub mod service;
pub mod taskdef;
