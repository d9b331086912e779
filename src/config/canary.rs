//! The canary's inputs checked together: its steps, the second service, the listener or rule whose
//! weights move, and the gates with their evidence. Messages name the input and a value that works.

use std::time::Duration;

use super::check::Check;
use super::parse::{alarm_names, arn, check_interval, confidence, ecs_name, failure_limit, http_url, request_count};
use super::{CanarySettings, Gates, Inputs, TrafficSource, steps};

const DEFAULT_CANARY_STEPS: &str = "10%:2m, 50%:2m, 100%";
/// Two failing checks in a row: one noisy reading never rolls a release back, and a real regression
/// is caught one interval later (the checks' statistics already need enough requests).
const DEFAULT_FAILURE_LIMIT: u32 = 2;
const DEFAULT_CONFIDENCE: f64 = 0.99;

pub(super) fn settings(c: &mut Check, i: &Inputs, service: &str, region: Option<&str>) -> Option<CanarySettings> {
    let steps = c.parse("canary-steps", Some(i.canary_steps.as_deref().unwrap_or(DEFAULT_CANARY_STEPS)), steps::parse);
    let canary_service = match i.canary_service.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(name) => c.parse("canary-service", Some(name), |v| ecs_name(v, "service")),
        None => Some(format!("{service}-canary")),
    };
    if canary_service.as_deref() == Some(service) {
        c.fail(
            "canary-service",
            format!(
                "is the stable service `{service}` itself: the canary runs in a second service, e.g. `{service}-canary`"
            ),
        );
    }
    let in_region = |arn_region: &str| match region {
        Some(r) if r != arn_region => Err(format!(
            "is in region {arn_region}, but `aws-region` is {r}: use the listener of the load balancer in {r}"
        )),
        _ => Ok(()),
    };
    let listener = c.parse("listener-arn", i.listener_arn.as_deref(), |v| {
        let parts = arn(v, "elasticloadbalancing", "listener/")?;
        in_region(&parts.region)?;
        Ok(v.to_string())
    });
    let rule = c.parse("listener-rule-arn", i.listener_rule_arn.as_deref(), |v| {
        let parts = arn(v, "elasticloadbalancing", "listener-rule/")?;
        in_region(&parts.region)?;
        Ok(v.to_string())
    });
    let listener_set = i.listener_arn.as_deref().is_some_and(|v| !v.trim().is_empty());
    let rule_set = i.listener_rule_arn.as_deref().is_some_and(|v| !v.trim().is_empty());
    let traffic = match (listener, rule) {
        _ if listener_set && rule_set => {
            c.fail("listener-rule-arn", "and `listener-arn` are both set: give the one whose forward action splits traffic between the stable and canary target groups");
            None
        }
        (Some(l), None) => Some(TrafficSource::ListenerDefault(l)),
        (None, Some(r)) => Some(TrafficSource::Rule(r)),
        _ if !listener_set && !rule_set => {
            c.fail("listener-arn", "is required for `strategy: canary` (or `listener-rule-arn`): the ALB listener whose forward action splits traffic between the stable and canary target groups");
            None
        }
        _ => None,
    };
    let (gates, check_interval) = judging(c, i);
    // Evidence takes time: a step without bake is checked once, at its shift, with no request yet.
    if gates.min_requests > 0
        && let Some(steps) = &steps
        && let Some((n, step)) = steps.iter().enumerate().find(|(_, s)| s.bake.is_zero())
    {
        c.fail(
            "min-requests",
            format!(
                "needs every canary step to bake, and step {} ({}%) has no bake time: write it like `{}%:1m`",
                n + 1,
                step.weight,
                step.weight
            ),
        );
    }
    Some(CanarySettings { steps: steps?, canary_service: canary_service?, traffic: traffic?, gates, check_interval })
}

/// The gates and how often they are checked: the canary's, and those that judge ECS's own strategies
/// at their pauses (`strategy: ecs`).
pub(super) fn judging(c: &mut Check, i: &Inputs) -> (Gates, Duration) {
    let alarms = c.parse("alarms", i.alarms.as_deref(), alarm_names).unwrap_or_default();
    let max_error_rate = c.parse("max-error-rate", i.max_error_rate.as_deref(), super::thresholds::error_rate);
    let max_latency = c.parse("max-latency", i.max_latency.as_deref(), super::thresholds::latency);
    let min_requests = c.parse("min-requests", i.min_requests.as_deref(), request_count).unwrap_or(0);
    if min_requests > 0 && max_error_rate.is_none() && max_latency.is_none() {
        c.warnings.push("`min-requests` has no effect without `max-error-rate` or `max-latency`".into());
    }
    let failure_limit =
        c.parse("failure-limit", i.failure_limit.as_deref(), failure_limit).unwrap_or(DEFAULT_FAILURE_LIMIT);
    let confidence = c.parse("gate-confidence", i.gate_confidence.as_deref(), confidence).unwrap_or(DEFAULT_CONFIDENCE);
    let probe_url = c.parse("probe-url", i.probe_url.as_deref(), |v| http_url(v).map(|_| v.to_string()));
    let check_interval =
        c.parse("check-interval", i.check_interval.as_deref(), check_interval).unwrap_or(Duration::from_secs(10));
    (Gates { alarms, max_error_rate, max_latency, min_requests, failure_limit, confidence, probe_url }, check_interval)
}
