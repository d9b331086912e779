//! Canary deploys: the controller decides from observations, the gates observe, the executor
//! (`deploy`) makes the calls; the step grammar lives in `config::steps`, the listener's weights in
//! `listener`.

pub(crate) mod controller;
pub(crate) mod deploy;
pub(crate) mod gates;
mod metrics;
pub(crate) mod table;

#[cfg(test)]
mod stack_tests;
