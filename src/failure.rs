//! The few failures the pipeline branches on (exit code, report title). Everything else is an
//! `anyhow::Error` with context.

/// The deploy was refused before anything changed: the target is not in a state to deploy to.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub String);
