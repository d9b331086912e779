//! Canary deploys: the controller decides from observations, the gates observe (`verdicts` says
//! what their numbers conclude, `statistics` when they are evidence), the executor (`deploy`) makes the calls; the step grammar lives
//! in `config::steps`, the listener's weights in `listener`.

pub(crate) mod controller;
pub(crate) mod deploy;
pub(crate) mod gates;
mod metrics;
pub(crate) mod statistics;
pub(crate) mod table;
mod verdicts;

#[cfg(test)]
mod stack_tests;
