//! The health gates checked at every interval of a bake: CloudWatch alarms, the canary target group's
//! healthy targets, its 5xx rate over the bake window, and an HTTP probe. Each gate reports the value
//! it saw, so the step table shows the evidence.

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, StateValue, Statistic};
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use super::controller::GateResult;
use crate::aws::{Aws, describe_error};
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
        results.push(error_rate(ctx, max, since).await.unwrap_or_else(|e| unknown("error-rate", e)));
    }
    if let Some(url) = &ctx.gates.probe_url {
        results.push(probe(ctx.http, url).await);
    }
    results
}

/// A gate that could not be evaluated fails: a deploy tool must not pass what it could not see.
fn unknown(gate: &'static str, e: anyhow::Error) -> GateResult {
    GateResult { gate, passed: false, value: "could not check".into(), detail: Some(format!("{e:#}")) }
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
        .map_err(|e| anyhow!("{}", describe_error(&e)))?;
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
        [] => GateResult { gate: "alarms", passed: true, value: "OK".into(), detail: None },
        _ => GateResult {
            gate: "alarms",
            passed: false,
            value: format!("{} in ALARM", firing.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
            detail: Some(firing.iter().map(|(n, r)| format!("{n}: {r}")).collect::<Vec<_>>().join("; ")),
        },
    })
}

async fn target_health(ctx: &GateContext<'_>, canary_tasks: i32) -> Result<GateResult> {
    let (healthy, total, reasons) = healthy_targets(ctx.aws, &ctx.canary_target_group.arn).await?;
    let passed = i32::try_from(healthy).unwrap_or(i32::MAX) >= canary_tasks;
    Ok(GateResult {
        gate: "target-health",
        passed,
        value: format!("{healthy}/{canary_tasks} healthy"),
        detail: (!passed).then(|| {
            if reasons.is_empty() {
                format!("{total} target(s) registered in {}", ctx.canary_target_group.name)
            } else {
                reasons.join("; ")
            }
        }),
    })
}

/// Healthy and registered target counts of a target group, with the reasons of unhealthy ones.
pub(crate) async fn healthy_targets(aws: &Aws, target_group_arn: &str) -> Result<(usize, usize, Vec<String>)> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| anyhow!("{}", describe_error(&e)))?;
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

async fn error_rate(ctx: &GateContext<'_>, max: f64, since: SystemTime) -> Result<GateResult> {
    let errors = metric_sum(ctx, "HTTPCode_Target_5XX_Count", since).await?;
    let requests = metric_sum(ctx, "RequestCount", since).await?;
    if requests <= 0.0 {
        return Ok(GateResult { gate: "error-rate", passed: true, value: NO_REQUESTS_YET.into(), detail: None });
    }
    let rate = errors / requests;
    Ok(GateResult {
        gate: "error-rate",
        passed: rate <= max,
        value: format!("{}%", round2(rate * 100.0)),
        detail: (rate > max)
            .then(|| format!("{errors} 5xx of {requests} requests, above max-error-rate {}%", round2(max * 100.0))),
    })
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
        .map_err(|e| anyhow!("{}", describe_error(&e)))?;
    // Folded from +0.0: an empty `sum()` of f64 is -0.0, which printed as "-0%" when ALB had
    // published no 5xx datapoint (it publishes none for a count of zero).
    Ok(out.datapoints().iter().filter_map(|d| d.sum()).fold(0.0, |total, x| total + x))
}

/// GET `url`: 2xx within 5 s passes.
pub(crate) async fn probe(http: &reqwest::Client, url: &str) -> GateResult {
    match http.get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) if r.status().is_success() => {
            GateResult { gate: "probe", passed: true, value: format!("HTTP {}", r.status().as_u16()), detail: None }
        }
        Ok(r) => GateResult {
            gate: "probe",
            passed: false,
            value: format!("HTTP {}", r.status().as_u16()),
            detail: Some(format!("{url} answered {}", r.status())),
        },
        Err(e) => GateResult {
            gate: "probe",
            passed: false,
            value: if e.is_timeout() { "timeout".into() } else { "no answer".into() },
            detail: Some(format!("{url}: {e}")),
        },
    }
}
