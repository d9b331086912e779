//! Canary deploys: the step grammar now; the controller, gates and traffic shifting build on it.

pub mod steps;
