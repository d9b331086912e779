//! Canary deploys: the step grammar and the weighted traffic between stable and canary target groups;
//! the controller and gates build on them.

pub mod controller;
pub mod deploy;
pub mod gates;
pub mod steps;
pub mod table;
pub mod traffic;
