//! Canary deploys: the step grammar and the weighted traffic between stable and canary target groups;
//! the controller and gates build on them.

pub(crate) mod controller;
pub(crate) mod deploy;
pub(crate) mod gates;
pub(crate) mod steps;
pub(crate) mod table;
pub(crate) mod traffic;

#[cfg(test)]
mod stack_tests;
