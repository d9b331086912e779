//! The health gates checked at every interval of a bake: CloudWatch alarms, the canary target group's
//! healthy targets, its 5xx rate over the bake window, and an HTTP probe. Each gate reports the value
//! it saw, so the step table shows the evidence.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use crate::aws::{Aws, call_failed};
use crate::config::Gates;
use crate::config::thresholds::{ErrorRateLimit, LatencyGate, LatencyLimit};
use crate::plan::TargetGroup;
use crate::records::{GateResult, Verdict};

use super::metrics::{Counts, counts, response_time};

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
        || matches!(latency_gate, Some(LatencyGate { limit: LatencyLimit::TimesStable(_), .. }));
    let canary = match rate.is_some() || latency_gate.is_some() {
        true => Some(counts(ctx.aws, ctx.canary_target_group, window.since).await.map_err(|e| format!("{e:#}"))),
        false => None,
    };
    let stable = match relative {
        true => Some(baseline(ctx, window).await.map_err(|e| format!("{e:#}"))),
        false => None,
    };
    if let (Some(limit), Some(canary)) = (rate, &canary) {
        let stable = stable.as_ref().map(|b| b.as_ref().map(|b| (b.counts, b.label)));
        let result = error_rate_verdict(canary, stable, limit, ctx.gates.min_requests);
        results.push(result.unwrap_or_else(|e| unknown("error-rate", anyhow::anyhow!("{e}"))));
    }
    if let (Some(gate), Some(canary)) = (latency_gate, &canary) {
        let result = latency(ctx, gate, window, canary, stable.as_ref()).await;
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
    GateResult { gate, verdict: Verdict::Unreadable, value: "could not read".into(), detail: Some(format!("{e:#}")) }
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
        _ => GateResult::fail(
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
        return Ok(GateResult::fail("target-health", value, why.join("; ")));
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
/// it had fewer than `min-requests` (at least one) requests in it (the 100% step sends it none).
struct Baseline {
    since: SystemTime,
    /// How the table says where the window starts when it is not the step's.
    label: &'static str,
    counts: Counts,
}

async fn baseline(ctx: &GateContext<'_>, window: Window) -> Result<Baseline> {
    let same = counts(ctx.aws, ctx.stable_target_group, window.since).await?;
    if same.requests >= (ctx.gates.min_requests as f64).max(1.0) {
        return Ok(Baseline { since: window.since, label: "", counts: same });
    }
    let whole = counts(ctx.aws, ctx.stable_target_group, window.first_shift).await?;
    Ok(Baseline { since: window.first_shift, label: ", since the first step", counts: whole })
}

/// The error-rate gate from the counts the check read (an error if they could not be read).
fn error_rate_verdict(
    canary: &Result<Counts, String>,
    stable: Option<Result<(Counts, &str), &String>>,
    limit: ErrorRateLimit,
    min_requests: u64,
) -> Result<GateResult, String> {
    let canary = canary.clone()?;
    let stable = match (limit, stable) {
        (ErrorRateLimit::AboveStable(_), Some(stable)) => Some(stable.map_err(String::clone)?),
        _ => None,
    };
    Ok(rate_verdict(canary, stable, limit, min_requests))
}

fn pct(fraction: f64) -> String {
    format!("{}%", round2(fraction * 100.0))
}

/// The error-rate gate's verdict from the canary's 5xx and request counts since the shift, and for
/// a relative limit the stable side's (with where its window starts, when not the same).
pub(crate) fn rate_verdict(
    canary: Counts,
    stable: Option<(Counts, &str)>,
    limit: ErrorRateLimit,
    min_requests: u64,
) -> GateResult {
    if canary.requests < min_requests as f64 {
        return GateResult {
            gate: "error-rate",
            verdict: Verdict::Waiting,
            value: format!("{} of min-requests {min_requests}", canary.requests),
            detail: Some(format!("{} 5xx so far; the rate is judged from {min_requests} requests on", canary.errors)),
        };
    }
    if canary.requests <= 0.0 {
        return GateResult::pass("error-rate", NO_REQUESTS_YET);
    }
    let rate = canary.rate();
    let (max, value, evidence) = match (limit, stable) {
        (ErrorRateLimit::AboveStable(delta), Some((stable, label))) => {
            if stable.requests <= 0.0 {
                return GateResult {
                    gate: "error-rate",
                    verdict: Verdict::Waiting,
                    value: format!("{} of {} (stable: no requests)", pct(rate), canary.requests),
                    detail: Some("the stable version has answered no request to compare with yet".into()),
                };
            }
            let max = stable.rate() + delta;
            (
                max,
                format!(
                    "{} of {} (stable {} of {}{label})",
                    pct(rate),
                    canary.requests,
                    pct(stable.rate()),
                    stable.requests
                ),
                format!(
                    "canary {} 5xx of {} requests = {}, stable {} of {}{label} = {}; limit stable + {} = {}",
                    canary.errors,
                    canary.requests,
                    pct(rate),
                    stable.errors,
                    stable.requests,
                    pct(stable.rate()),
                    pct(delta),
                    pct(max)
                ),
            )
        }
        (ErrorRateLimit::Absolute(max), _) | (ErrorRateLimit::AboveStable(max), None) => (
            max,
            format!("{} of {}", pct(rate), canary.requests),
            format!("{} 5xx of {} requests, above max-error-rate {}", canary.errors, canary.requests, pct(max)),
        ),
    };
    if rate <= max {
        return GateResult::pass("error-rate", value);
    }
    GateResult::fail("error-rate", value, evidence)
}

fn ms(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms >= 1000.0 { format!("{:.2}s", seconds) } else { format!("{}ms", ms.round()) }
}

async fn latency(
    ctx: &GateContext<'_>,
    gate: LatencyGate,
    window: Window,
    canary: &Result<Counts, String>,
    stable: Option<&Result<Baseline, String>>,
) -> Result<GateResult> {
    let min = ctx.gates.min_requests;
    let requests = canary.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.requests;
    if requests < min as f64 {
        return Ok(GateResult {
            gate: "latency",
            verdict: Verdict::Waiting,
            value: format!("{requests} of min-requests {min}"),
            detail: Some(format!("the {} is judged from {min} requests on", gate.stat)),
        });
    }
    if requests <= 0.0 {
        return Ok(GateResult::pass("latency", NO_REQUESTS_YET));
    }
    let Some(canary) = response_time(ctx.aws, ctx.canary_target_group, gate.stat, window.since).await? else {
        return Ok(GateResult {
            gate: "latency",
            verdict: Verdict::Waiting,
            value: "no response time published yet".into(),
            detail: None,
        });
    };
    let stable = match (gate.limit, stable) {
        (LatencyLimit::TimesStable(_), Some(baseline)) => {
            let baseline = baseline.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            let value = response_time(ctx.aws, ctx.stable_target_group, gate.stat, baseline.since).await?;
            Some((value, baseline.label))
        }
        _ => None,
    };
    Ok(latency_verdict(canary, requests, stable, gate))
}

/// The latency gate's verdict: the canary's statistic over `requests` requests, and for a relative
/// limit the stable side's (None: it has published no response time).
pub(crate) fn latency_verdict(
    canary: f64,
    requests: f64,
    stable: Option<(Option<f64>, &str)>,
    gate: LatencyGate,
) -> GateResult {
    let stat = gate.stat;
    let (max, value, evidence) = match (gate.limit, stable) {
        (LatencyLimit::TimesStable(factor), Some((Some(stable), label))) => {
            let max = stable * factor;
            (
                max,
                format!("{stat} {} (stable {}{label})", ms(canary), ms(stable)),
                format!(
                    "canary {stat} {} over {requests} requests, stable {stat} {}{label}; limit stable × {factor} = {}",
                    ms(canary),
                    ms(stable),
                    ms(max)
                ),
            )
        }
        (LatencyLimit::TimesStable(_), _) => {
            return GateResult {
                gate: "latency",
                verdict: Verdict::Waiting,
                value: format!("{stat} {} (stable: no response time yet)", ms(canary)),
                detail: Some("the stable version has published no response time to compare with yet".into()),
            };
        }
        (LatencyLimit::Below(limit), _) => {
            let max = limit.as_secs_f64();
            (
                max,
                format!("{stat} {}", ms(canary)),
                format!("canary {stat} {} over {requests} requests, limit {}", ms(canary), ms(max)),
            )
        }
    };
    if canary < max {
        return GateResult::pass("latency", value);
    }
    GateResult::fail("latency", value, evidence)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
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

    use super::*;
    use crate::config::thresholds::LatencyStat;

    fn counts(errors: f64, requests: f64) -> Counts {
        Counts { errors, requests }
    }

    #[test]
    fn the_error_rate_is_judged_only_on_enough_requests() {
        let limit = ErrorRateLimit::Absolute(0.01);
        let waiting = rate_verdict(counts(0.0, 12.0), None, limit, 50);
        assert_eq!(waiting.verdict, Verdict::Waiting, "12 requests are not evidence when 50 are asked for");
        assert_eq!(waiting.value, "12 of min-requests 50");
        assert_eq!(
            rate_verdict(counts(5.0, 12.0), None, limit, 50).verdict,
            Verdict::Waiting,
            "nor against the canary"
        );
        assert_eq!(rate_verdict(counts(0.0, 50.0), None, limit, 50).verdict, Verdict::Passed);
        let failed = rate_verdict(counts(2.0, 100.0), None, limit, 50);
        assert_eq!((failed.verdict, failed.value.as_str()), (Verdict::Failed, "2% of 100"));
        assert_eq!(rate_verdict(counts(0.0, 0.0), None, limit, 0), GateResult::pass("error-rate", NO_REQUESTS_YET));
    }

    #[test]
    fn against_stable_the_limit_moves_with_the_stable_rate_and_both_sides_are_shown() {
        let limit = ErrorRateLimit::AboveStable(0.01);
        // A day the whole service runs at 1.2%: a canary at 1.5% passes (an absolute 1% would not).
        let passed = rate_verdict(counts(15.0, 1000.0), Some((counts(120.0, 10000.0), "")), limit, 0);
        assert_eq!((passed.verdict, passed.value.as_str()), (Verdict::Passed, "1.5% of 1000 (stable 1.2% of 10000)"));
        let failed =
            rate_verdict(counts(100.0, 1000.0), Some((counts(100.0, 10000.0), ", since the first step")), limit, 0);
        assert_eq!(failed.verdict, Verdict::Failed);
        assert_eq!(
            failed.detail.as_deref(),
            Some(
                "canary 100 5xx of 1000 requests = 10%, stable 100 of 10000, since the first step = 1%; limit stable + 1% = 2%"
            )
        );
        let nothing = rate_verdict(counts(1.0, 100.0), Some((counts(0.0, 0.0), "")), limit, 0);
        assert_eq!(nothing.verdict, Verdict::Waiting, "no baseline is no verdict, never a pass");
    }

    #[test]
    fn latency_absolute_and_against_stable() {
        let p99 = LatencyStat::Percentile(99.0);
        let below = LatencyGate { stat: p99, limit: LatencyLimit::Below(Duration::from_millis(800)) };
        let v = latency_verdict(0.31, 200.0, None, below);
        assert_eq!((v.verdict, v.value.as_str()), (Verdict::Passed, "p99 310ms"));
        let times = LatencyGate { stat: p99, limit: LatencyLimit::TimesStable(1.3) };
        let v = latency_verdict(0.31, 200.0, Some((Some(0.12), "")), times);
        assert_eq!((v.verdict, v.value.as_str()), (Verdict::Failed, "p99 310ms (stable 120ms)"));
        assert_eq!(
            v.detail.as_deref(),
            Some("canary p99 310ms over 200 requests, stable p99 120ms; limit stable × 1.3 = 156ms")
        );
        assert_eq!(latency_verdict(0.31, 200.0, Some((Some(0.3), "")), times).verdict, Verdict::Passed);
        assert_eq!(latency_verdict(0.31, 200.0, Some((None, "")), times).verdict, Verdict::Waiting);
    }
}
