//! The health gates checked at every interval of a bake: CloudWatch alarms, the canary target group's
//! healthy targets, its 5xx rate and response time over the bake so far (against a bound or the
//! stable version's), and an HTTP probe. Each gate reports the value it saw and the requests behind
//! it, so the step table shows the evidence. Reading them is here; what they conclude is `verdicts`.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use crate::aws::{Aws, call_failed};
use crate::config::Gates;
use crate::config::thresholds::{ErrorRateLimit, LatencyGate, LatencyLimit};
use crate::plan::TargetGroup;
use crate::records::{GateResult, Verdict};

use super::metrics::{Counts, counts, response_time};
use super::statistics::{latency_samples_needed, rate_samples_needed};
use super::verdicts::{Side, latency_verdict, rate_verdict};

/// The error-rate gate's value while the canary has had no request yet, and at the end of a step
/// that saw none (shown in the step table as a warning, never as a measured rate).
pub(crate) const NO_REQUESTS_YET: &str = "no requests yet";
pub(crate) const NO_REQUESTS_IN_STEP: &str = "⚠ no requests in the step";

pub(crate) struct GateContext<'a> {
    pub(crate) aws: &'a Aws,
    pub(crate) gates: &'a Gates,
    pub(crate) canary_target_group: &'a TargetGroup,
    /// The baseline of the relative gates.
    pub(crate) stable_target_group: &'a TargetGroup,
    pub(crate) http: &'a reqwest::Client,
}

/// The window a check looks at: from the step's traffic shift, and for a baseline the stable
/// version had too little traffic in (the 100% step sends it none), from the first shift.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) since: SystemTime,
    pub(crate) first_shift: SystemTime,
}

/// Checks every gate. `canary_tasks` is what the canary should run.
/// `watched`: the canary targets that were healthy at the step's shift (the next step's tasks,
/// started during the bake, join later and are not judged yet).
pub(crate) async fn check(
    ctx: &GateContext<'_>,
    canary_tasks: i32,
    watched: &[String],
    window: Window,
) -> Vec<GateResult> {
    let mut results = Vec::new();
    if !ctx.gates.alarms.is_empty() {
        results.push(alarms(ctx).await.unwrap_or_else(|e| unknown("alarms", e)));
    }
    results.push(target_health(ctx, canary_tasks, watched).await.unwrap_or_else(|e| unknown("target-health", e)));
    // What the error-rate and latency gates both read is asked once a check.
    let (rate, latency_gate) = (ctx.gates.max_error_rate, ctx.gates.max_latency);
    let relative = matches!(rate, Some(ErrorRateLimit::AboveStable(_)))
        || matches!(latency_gate, Some(LatencyGate { limit: LatencyLimit::TimesStable { .. }, .. }));
    let canary = match rate.is_some() || latency_gate.is_some() {
        true => Some(counts(ctx.aws, ctx.canary_target_group, window.since).await.map_err(|e| format!("{e:#}"))),
        false => None,
    };
    let stable = match relative {
        true => Some(baseline(ctx, window).await.map_err(|e| format!("{e:#}"))),
        false => None,
    };
    // Each verdict carries the canary requests it was made on.
    let on = |r: GateResult| match &canary {
        Some(Ok(c)) => r.on(c.requests),
        _ => r,
    };
    if let (Some(limit), Some(canary)) = (rate, &canary) {
        let stable = stable.as_ref().map(|b| b.as_ref().map(|b| (b.counts, b.label)));
        let result = error_rate_verdict(canary, stable, limit, ctx.gates).map(on);
        results.push(result.unwrap_or_else(|e| unknown("error-rate", anyhow::anyhow!("{e}"))));
    }
    if let (Some(gate), Some(canary)) = (latency_gate, &canary) {
        let result = latency(ctx, gate, window, canary, stable.as_ref()).await.map(on);
        results.push(result.unwrap_or_else(|e| unknown("latency", e)));
    }
    if let Some(url) = &ctx.gates.probe_url {
        results.push(probe(ctx.http, url).await);
    }
    results
}

/// A gate that could not be read is no verdict either way (never a pass: a deploy tool must not
/// pass what it could not see); the controller asks again and fails the step if it stays unread.
fn unknown(gate: &'static str, e: anyhow::Error) -> GateResult {
    let detail = Some(format!("{e:#}"));
    GateResult { gate, verdict: Verdict::Unreadable, value: "could not read".into(), detail, samples: None }
}

async fn alarms(ctx: &GateContext<'_>) -> Result<GateResult> {
    let firing: Vec<(String, String)> = crate::alarms::alarm_states(ctx.aws, &ctx.gates.alarms)
        .await?
        .into_iter()
        .filter(|a| a.firing)
        .map(|a| (a.name, a.reason))
        .collect();
    Ok(match firing.as_slice() {
        [] => GateResult::pass("alarms", "OK"),
        // CloudWatch already wanted its datapoints out of its evaluation periods: no second look.
        _ => GateResult::breach(
            "alarms",
            format!("{} in ALARM", firing.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
            firing.iter().map(|(n, r)| format!("{n}: {r}")).collect::<Vec<_>>().join("; "),
        ),
    })
}

async fn target_health(ctx: &GateContext<'_>, canary_tasks: i32, watched: &[String]) -> Result<GateResult> {
    let targets = healthy_targets(ctx.aws, &ctx.canary_target_group.arn).await?;
    if !watched.is_empty() {
        // The targets that took the step's traffic from its shift on must all still be healthy.
        let lost: Vec<&String> = watched.iter().filter(|id| !targets.healthy.contains(id)).collect();
        let value = format!("{}/{} healthy", watched.len() - lost.len(), watched.len());
        if lost.is_empty() {
            return Ok(GateResult::pass("target-health", value));
        }
        let why: Vec<String> = lost.iter().map(|id| targets.why_not_healthy(id)).collect();
        // ELB took it out after its own count of failed health checks: no second look.
        return Ok(GateResult::breach("target-health", value, why.join("; ")));
    }
    let healthy = targets.healthy.len();
    let value = format!("{healthy}/{canary_tasks} healthy");
    if i32::try_from(healthy).unwrap_or(i32::MAX) >= canary_tasks {
        return Ok(GateResult::pass("target-health", value));
    }
    let detail = if targets.reasons.is_empty() {
        // No unhealthy target: every registered one is healthy.
        format!("{healthy} target(s) registered in {}", ctx.canary_target_group.name)
    } else {
        targets.reasons.join("; ")
    };
    Ok(GateResult::fail("target-health", value, detail))
}

/// A target group's targets as ELB sees them.
pub(crate) struct Targets {
    /// Ids (`ip:port` as registered: the id) of the healthy ones.
    pub(crate) healthy: Vec<String>,
    /// `<id> <state>: <why>` of every other one.
    pub(crate) reasons: Vec<String>,
}

impl Targets {
    /// Why target `id` is not among the healthy ones: ELB's reason, or that it left the group.
    fn why_not_healthy(&self, id: &str) -> String {
        // The id and a space: `127.0.0.1:3000` is not `127.0.0.1:30001`.
        let reason = self.reasons.iter().find(|r| r.strip_prefix(id).is_some_and(|rest| rest.starts_with(' ')));
        reason.cloned().unwrap_or_else(|| format!("{id} is no longer registered"))
    }
}

/// The healthy targets of a target group, and the reasons of the others.
pub(crate) async fn healthy_targets(aws: &Aws, target_group_arn: &str) -> Result<Targets> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| call_failed("ELB DescribeTargetHealth", &e))?;
    let descriptions = out.target_health_descriptions();
    let mut healthy = Vec::new();
    let mut reasons = Vec::new();
    for d in descriptions {
        let health = d.target_health();
        let target = d.target();
        let id = match (target.and_then(|t| t.id()), target.and_then(|t| t.port())) {
            (Some(id), Some(port)) => format!("{id}:{port}"),
            (Some(id), None) => id.to_string(),
            _ => "?".to_string(),
        };
        if health.and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy) {
            healthy.push(id);
        } else {
            let state = health.and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default();
            let why = health.and_then(|h| h.description()).unwrap_or_default();
            reasons.push(format!("{id} {state}: {why}"));
        }
    }
    Ok(Targets { healthy, reasons })
}

/// The stable side of a comparison: its numbers over the same window, or since the first shift when
/// it had fewer requests in it than the comparisons need (the 100% step sends it none).
struct Baseline {
    since: SystemTime,
    /// How the table says where the window starts when it is not the step's.
    label: &'static str,
    counts: Counts,
}

async fn baseline(ctx: &GateContext<'_>, window: Window) -> Result<Baseline> {
    let same = counts(ctx.aws, ctx.stable_target_group, window.since).await?;
    if same.requests >= baseline_needs(ctx.gates) {
        return Ok(Baseline { since: window.since, label: "", counts: same });
    }
    let whole = counts(ctx.aws, ctx.stable_target_group, window.first_shift).await?;
    Ok(Baseline { since: window.first_shift, label: ", since the first step", counts: whole })
}

/// Requests the stable side needs for every relative comparison configured (at least one).
fn baseline_needs(gates: &Gates) -> f64 {
    let mut needed = gates.min_requests.max(1);
    if let Some(LatencyGate { stat, limit: LatencyLimit::TimesStable { .. } }) = gates.max_latency {
        needed = needed.max(latency_samples_needed(stat));
    }
    if let Some(ErrorRateLimit::AboveStable(delta)) = gates.max_error_rate {
        needed = needed.max(rate_samples_needed(delta, gates.confidence));
    }
    needed as f64
}

/// The error-rate gate from the counts the check read (an error if they could not be read).
fn error_rate_verdict(
    canary: &Result<Counts, String>,
    stable: Option<Result<(Counts, &str), &String>>,
    limit: ErrorRateLimit,
    gates: &Gates,
) -> Result<GateResult, String> {
    let canary = canary.clone()?;
    let stable = match (limit, stable) {
        (ErrorRateLimit::AboveStable(_), Some(stable)) => Some(stable.map_err(String::clone)?),
        _ => None,
    };
    Ok(rate_verdict(canary, stable, limit, gates))
}

async fn latency(
    ctx: &GateContext<'_>,
    gate: LatencyGate,
    window: Window,
    canary: &Result<Counts, String>,
    stable: Option<&Result<Baseline, String>>,
) -> Result<GateResult> {
    let requests = canary.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.requests;
    let canary_time = match requests > 0.0 {
        true => response_time(ctx.aws, ctx.canary_target_group, gate.stat, window.since).await?,
        false => None,
    };
    let stable = match (gate.limit, stable) {
        (LatencyLimit::TimesStable { .. }, Some(baseline)) => {
            let baseline = baseline.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            let value = response_time(ctx.aws, ctx.stable_target_group, gate.stat, baseline.since).await?;
            Some(Side { time: value, requests: baseline.counts.requests, label: baseline.label })
        }
        _ => None,
    };
    Ok(latency_verdict(Side { time: canary_time, requests, label: "" }, stable, gate, ctx.gates.min_requests))
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
    #[test]
    fn a_lost_target_is_explained_by_its_own_reason_not_one_whose_port_it_prefixes() {
        let targets = super::Targets {
            healthy: Vec::new(),
            reasons: vec![
                "127.0.0.1:30001 draining: Target deregistration is in progress".into(),
                "127.0.0.1:3000 unhealthy: Health checks failed".into(),
            ],
        };
        assert_eq!(targets.why_not_healthy("127.0.0.1:3000"), "127.0.0.1:3000 unhealthy: Health checks failed");
        assert_eq!(targets.why_not_healthy("127.0.0.1:300"), "127.0.0.1:300 is no longer registered");
    }
}
