//! The health gates checked at every interval of a bake: CloudWatch alarms, the canary target group's
//! healthy targets, its 5xx rate over the bake window, and an HTTP probe. Each gate reports the value
//! it saw, so the step table shows the evidence.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, StateValue, Statistic};
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use super::controller::{GateResult, Verdict};
use crate::aws::{Aws, call_failed};
use crate::config::Gates;
use crate::plan::TargetGroup;

/// The error-rate gate's value while the canary has had no request yet, and at the end of a step
/// that saw none (shown in the step table as a warning, never as a measured rate).
pub(crate) const NO_REQUESTS_YET: &str = "no requests yet";
pub(crate) const NO_REQUESTS_IN_STEP: &str = "⚠ no requests in the step";

pub(crate) struct GateContext<'a> {
    pub(crate) aws: &'a Aws,
    pub(crate) gates: &'a Gates,
    pub(crate) canary_target_group: &'a TargetGroup,
    pub(crate) http: &'a reqwest::Client,
}

/// Checks every gate. `canary_tasks` is what the canary should run; `since` starts the error-rate window.
pub(crate) async fn check(ctx: &GateContext<'_>, canary_tasks: i32, since: SystemTime) -> Vec<GateResult> {
    let mut results = Vec::new();
    if !ctx.gates.alarms.is_empty() {
        results.push(alarms(ctx).await.unwrap_or_else(|e| unknown("alarms", e)));
    }
    results.push(target_health(ctx, canary_tasks).await.unwrap_or_else(|e| unknown("target-health", e)));
    if let Some(max) = ctx.gates.max_error_rate {
        let rate = error_rate(ctx, max, ctx.gates.min_requests, since).await;
        results.push(rate.unwrap_or_else(|e| unknown("error-rate", e)));
    }
    if let Some(url) = &ctx.gates.probe_url {
        results.push(probe(ctx.http, url).await);
    }
    results
}

/// A gate that could not be read is no verdict either way (never a pass: a deploy tool must not
/// pass what it could not see); the controller asks again and fails the step if it stays unread.
fn unknown(gate: &'static str, e: anyhow::Error) -> GateResult {
    GateResult { gate, verdict: Verdict::Unreadable, value: "could not read".into(), detail: Some(format!("{e:#}")) }
}

/// One CloudWatch alarm as DescribeAlarms tells it (metric and composite alike).
pub(crate) struct AlarmState {
    pub(crate) name: String,
    pub(crate) firing: bool,
    pub(crate) reason: String,
}

/// The alarms named `names` that exist, metric and composite: the one DescribeAlarms of the action
/// (the plan checks they exist, the gate whether they fire).
pub(crate) async fn alarm_states(aws: &Aws, names: &[String]) -> Result<Vec<AlarmState>> {
    let out = aws
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| call_failed("CloudWatch DescribeAlarms", &e))?;
    let state = |name: Option<&str>, value: Option<&StateValue>, reason: Option<&str>| AlarmState {
        name: name.unwrap_or("?").to_string(),
        firing: value == Some(&StateValue::Alarm),
        reason: reason.unwrap_or("no reason given").to_string(),
    };
    Ok(out
        .metric_alarms()
        .iter()
        .map(|a| state(a.alarm_name(), a.state_value(), a.state_reason()))
        .chain(out.composite_alarms().iter().map(|a| state(a.alarm_name(), a.state_value(), a.state_reason())))
        .collect())
}

async fn alarms(ctx: &GateContext<'_>) -> Result<GateResult> {
    let firing: Vec<(String, String)> = alarm_states(ctx.aws, &ctx.gates.alarms)
        .await?
        .into_iter()
        .filter(|a| a.firing)
        .map(|a| (a.name, a.reason))
        .collect();
    Ok(match firing.as_slice() {
        [] => GateResult::pass("alarms", "OK"),
        _ => GateResult::fail(
            "alarms",
            format!("{} in ALARM", firing.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
            firing.iter().map(|(n, r)| format!("{n}: {r}")).collect::<Vec<_>>().join("; "),
        ),
    })
}

async fn target_health(ctx: &GateContext<'_>, canary_tasks: i32) -> Result<GateResult> {
    let (healthy, total, reasons) = healthy_targets(ctx.aws, &ctx.canary_target_group.arn).await?;
    let value = format!("{healthy}/{canary_tasks} healthy");
    if i32::try_from(healthy).unwrap_or(i32::MAX) >= canary_tasks {
        return Ok(GateResult::pass("target-health", value));
    }
    let detail = if reasons.is_empty() {
        format!("{total} target(s) registered in {}", ctx.canary_target_group.name)
    } else {
        reasons.join("; ")
    };
    Ok(GateResult::fail("target-health", value, detail))
}

/// Healthy and registered target counts of a target group, with the reasons of unhealthy ones.
pub(crate) async fn healthy_targets(aws: &Aws, target_group_arn: &str) -> Result<(usize, usize, Vec<String>)> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeTargetHealth", &e))?;
    let descriptions = out.target_health_descriptions();
    let mut healthy = 0;
    let mut reasons = Vec::new();
    for d in descriptions {
        let health = d.target_health();
        if health.and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy) {
            healthy += 1;
        } else {
            let id = d.target().and_then(|t| t.id()).unwrap_or("?");
            let state = health.and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default();
            let why = health.and_then(|h| h.description()).unwrap_or_default();
            reasons.push(format!("{id} {state}: {why}"));
        }
    }
    Ok((healthy, descriptions.len(), reasons))
}

async fn error_rate(ctx: &GateContext<'_>, max: f64, min_requests: u64, since: SystemTime) -> Result<GateResult> {
    let errors = metric_sum(ctx, "HTTPCode_Target_5XX_Count", since).await?;
    let requests = metric_sum(ctx, "RequestCount", since).await?;
    Ok(rate_verdict(errors, requests, max, min_requests))
}

/// The error-rate gate's verdict from the canary's 5xx and request counts since the shift.
fn rate_verdict(errors: f64, requests: f64, max: f64, min_requests: u64) -> GateResult {
    if requests < min_requests as f64 {
        return GateResult {
            gate: "error-rate",
            verdict: Verdict::Waiting,
            value: format!("{requests} of min-requests {min_requests}"),
            detail: Some(format!("{errors} 5xx so far; the rate is judged from {min_requests} requests on")),
        };
    }
    if requests <= 0.0 {
        return GateResult::pass("error-rate", NO_REQUESTS_YET);
    }
    let rate = errors / requests;
    let value = format!("{}%", round2(rate * 100.0));
    if rate <= max {
        return GateResult::pass("error-rate", value);
    }
    let detail = format!("{errors} 5xx of {requests} requests, above max-error-rate {}%", round2(max * 100.0));
    GateResult::fail("error-rate", value, detail)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Sum of `metric` for the canary target group from `since` until now (whole seconds, as CloudWatch
/// stores them).
async fn metric_sum(ctx: &GateContext<'_>, metric: &str, since: SystemTime) -> Result<f64> {
    let tg = ctx.canary_target_group;
    let mut dimensions = vec![Dimension::builder().name("TargetGroup").value(&tg.dimension).build()];
    if let Some(lb) = &tg.load_balancer_dimension {
        dimensions.push(Dimension::builder().name("LoadBalancer").value(lb).build());
    }
    let start = DateTime::from_secs(DateTime::from(since).secs());
    let end = DateTime::from_secs(DateTime::from(SystemTime::now() + Duration::from_secs(1)).secs() + 1);
    let out = ctx
        .aws
        .cloudwatch
        .get_metric_statistics()
        .namespace("AWS/ApplicationELB")
        .metric_name(metric)
        .set_dimensions(Some(dimensions))
        .start_time(start)
        .end_time(end)
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .map_err(|e| call_failed("CloudWatch GetMetricStatistics", &e))?;
    // Folded from +0.0: an empty `sum()` of f64 is -0.0, which printed as "-0%" when ALB had
    // published no 5xx datapoint (it publishes none for a count of zero).
    Ok(out.datapoints().iter().filter_map(|d| d.sum()).fold(0.0, |total, x| total + x))
}

/// GET `url`: 2xx within 5 s passes.
pub(crate) async fn probe(http: &reqwest::Client, url: &str) -> GateResult {
    match http.get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) if r.status().is_success() => GateResult::pass("probe", format!("HTTP {}", r.status().as_u16())),
        Ok(r) => {
            GateResult::fail("probe", format!("HTTP {}", r.status().as_u16()), format!("{url} answered {}", r.status()))
        }
        Err(e) => {
            GateResult::fail("probe", if e.is_timeout() { "timeout" } else { "no answer" }, format!("{url}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_rate_is_judged_only_on_enough_requests() {
        let waiting = rate_verdict(0.0, 12.0, 0.01, 50);
        assert_eq!(waiting.verdict, Verdict::Waiting, "12 requests are not evidence when 50 are asked for");
        assert_eq!(waiting.value, "12 of min-requests 50");
        assert_eq!(rate_verdict(5.0, 12.0, 0.01, 50).verdict, Verdict::Waiting, "nor against the canary");
        assert_eq!(rate_verdict(0.0, 50.0, 0.01, 50).verdict, Verdict::Passed);
        let failed = rate_verdict(2.0, 100.0, 0.01, 50);
        assert_eq!((failed.verdict, failed.value.as_str()), (Verdict::Failed, "2%"));
        assert_eq!(rate_verdict(0.0, 0.0, 0.01, 0), GateResult::pass("error-rate", NO_REQUESTS_YET));
    }
}
