//! Amazon ECS, every verb in one place: services read and updated, task definitions rendered and
//! registered, the rolling wait and undo, the pre-deploy task, the lease, what ECS says.

pub(crate) mod copies;
pub(crate) mod deployments;
pub(crate) mod events;
pub(crate) mod lease;
pub(crate) mod poll;
pub(crate) mod pre_deploy;
pub(crate) mod prune;
pub(crate) mod reads;
pub(crate) mod register;
pub(crate) mod rollout;
pub(crate) mod service;
pub(crate) mod stopped;
pub(crate) mod task_counts;
pub(crate) mod taskdef;
pub(crate) mod taskdef_check;
pub(crate) mod taskdef_file;
