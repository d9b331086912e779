//! Amazon ECS: services, task definitions, and (later) rolling them out.

pub(crate) mod events;
pub(crate) mod lease;
pub(crate) mod poll;
pub(crate) mod pre_deploy;
pub(crate) mod register;
pub(crate) mod rollout;
pub(crate) mod service;
pub(crate) mod stopped;
pub(crate) mod taskdef;
pub(crate) mod taskdef_check;
pub(crate) mod taskdef_file;
