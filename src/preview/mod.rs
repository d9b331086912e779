//! Pull-request previews: a service of its own per pull request, behind a rule of the listener.
//! `make` adds what the first deploy of a preview needs (target group, rule, service) and takes it
//! away again when that deploy fails; `teardown` removes a preview, only what carries its tags;
//! `prune` (`previews prune`) finds the previews whose pull request closed or which outlived an age.

mod make;
pub(crate) mod prune;
pub(crate) mod teardown;

pub(crate) use make::{make, undo};
