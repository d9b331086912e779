//! The health gates checked at every interval of a bake: CloudWatch alarms, the canary target group's
//! healthy targets, its 5xx rate and response time over the bake so far (against a bound or the
//! stable version's), and an HTTP probe. Each gate reports the value it saw and the requests behind
//! it, so the step table shows the evidence; `statistics` says when the numbers may decide.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use crate::aws::{Aws, call_failed};
use crate::config::Gates;
use crate::config::duration;
use crate::config::thresholds::{ErrorRateLimit, LatencyGate, LatencyLimit};
use crate::plan::TargetGroup;
use crate::records::{GateResult, Verdict};

use super::metrics::{Counts, counts, response_time};
use super::statistics::{
    BREACH_FACTOR, difference_lower_bound, latency_samples_needed, rate_lower_bound, rate_samples_needed,
};

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

fn pct(fraction: f64) -> String {
    format!("{}%", round2(fraction * 100.0))
}

/// `99%`, `99.5%`.
fn confidence(fraction: f64) -> String {
    format!("{}%", (fraction * 1000.0).round() / 10.0)
}

/// A count of requests as CloudWatch sums them (whole numbers, in practice).
fn n(requests: f64) -> String {
    format!("{}", requests.round())
}

/// The error-rate gate's verdict from the canary's 5xx and request counts since the shift, and for
/// a relative limit the stable side's (with where its window starts, when not the same). It fails
/// only when the counts put the canary's rate above its limit beyond chance at `gate-confidence`
/// (a one-sided test on the counts, not two rounded percentages), and passes only on enough
/// requests with a rate within the limit; anything between is inconclusive.
pub(crate) fn rate_verdict(
    canary: Counts,
    stable: Option<(Counts, &str)>,
    limit: ErrorRateLimit,
    gates: &Gates,
) -> GateResult {
    let (min_requests, level) = (gates.min_requests, gates.confidence);
    if canary.requests < min_requests as f64 {
        return GateResult::waiting(
            "error-rate",
            format!("{} of min-requests {min_requests}", n(canary.requests)),
            format!("{} 5xx so far; the rate is judged from {min_requests} requests on", n(canary.errors)),
        );
    }
    if canary.requests <= 0.0 {
        return GateResult::waiting("error-rate", NO_REQUESTS_YET, "no request reached the canary yet");
    }
    let rate = canary.rate();
    // The limit, what the canary may not exceed beyond chance, the requests each side needs, and
    // the evidence as the table and the log say it.
    let (bound, beyond_chance, needed, stable_short, value, evidence) = match (limit, stable) {
        (ErrorRateLimit::AboveStable(delta), Some((stable, label))) => {
            if stable.requests <= 0.0 {
                return GateResult::waiting(
                    "error-rate",
                    format!("{} of {} (stable: no requests)", pct(rate), n(canary.requests)),
                    "the stable version has answered no request to compare with yet",
                );
            }
            let bound = stable.rate() + delta;
            let needed = rate_samples_needed(bound, level).max(min_requests);
            let lowest =
                difference_lower_bound((canary.errors, canary.requests), (stable.errors, stable.requests), level);
            (
                bound,
                (lowest > delta).then(|| format!("the canary's rate is at least {} above stable's", pct(lowest))),
                needed,
                stable.requests < needed as f64,
                format!(
                    "{} of {} (stable {} of {}{label})",
                    pct(rate),
                    n(canary.requests),
                    pct(stable.rate()),
                    n(stable.requests)
                ),
                format!(
                    "canary {} 5xx of {} requests = {}, stable {} of {}{label} = {}; limit stable + {} = {}",
                    n(canary.errors),
                    n(canary.requests),
                    pct(rate),
                    n(stable.errors),
                    n(stable.requests),
                    pct(stable.rate()),
                    pct(delta),
                    pct(bound)
                ),
            )
        }
        (ErrorRateLimit::Absolute(max), _) | (ErrorRateLimit::AboveStable(max), None) => {
            let lowest = rate_lower_bound(canary.errors, canary.requests, level);
            (
                max,
                (lowest > max).then(|| format!("the canary's rate is at least {}", pct(lowest))),
                rate_samples_needed(max, level).max(min_requests),
                false,
                format!("{} of {}", pct(rate), n(canary.requests)),
                format!(
                    "{} 5xx of {} requests = {}; limit max-error-rate {}",
                    n(canary.errors),
                    n(canary.requests),
                    pct(rate),
                    pct(max)
                ),
            )
        }
    };
    let enough = canary.requests >= needed as f64 && !stable_short;
    if let Some(lowest) = beyond_chance {
        let test = format!("above the limit beyond chance at {} ({lowest})", confidence(level));
        if enough && rate >= BREACH_FACTOR * bound {
            let times = if bound > 0.0 { format!("{:.0} times the limit", rate / bound) } else { "any 5xx".into() };
            return GateResult::breach("error-rate", value, format!("{evidence}; {test}; {times}: failed at once"));
        }
        return GateResult::fail("error-rate", value, format!("{evidence}; {test}"));
    }
    if !enough {
        let sides = if stable_short { "on each side " } else { "" };
        return GateResult::waiting(
            "error-rate",
            format!("{value}: {} of {needed} requests needed", n(canary.requests)),
            format!(
                "{evidence}; a rate is judged from {needed} requests {sides}on (enough to tell {} from no 5xx at {})",
                pct(bound),
                confidence(level)
            ),
        );
    }
    if rate > bound {
        return GateResult::waiting(
            "error-rate",
            value,
            format!("{evidence}; above the limit, but not beyond chance at {} yet", confidence(level)),
        );
    }
    GateResult::pass("error-rate", value)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
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

/// One side of a latency comparison: its statistic (None: none published yet) over its requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side<'a> {
    pub(crate) time: Option<f64>,
    pub(crate) requests: f64,
    /// Where its window starts, when not at the step's shift.
    pub(crate) label: &'a str,
}

/// The latency gate's verdict: the canary's statistic over its requests, and for a relative limit
/// the stable side's. Compared only when each side has the requests the statistic needs (and the
/// canary `min_requests`); the limit of a relative gate is stable × factor plus its slack.
pub(crate) fn latency_verdict(
    canary: Side<'_>,
    stable: Option<Side<'_>>,
    gate: LatencyGate,
    min_requests: u64,
) -> GateResult {
    let stat = gate.stat;
    let needed = latency_samples_needed(stat).max(min_requests);
    if canary.requests <= 0.0 {
        return GateResult::waiting("latency", NO_REQUESTS_YET, "no request reached the canary yet");
    }
    let seen = |side: &Side<'_>| side.time.map(ms).unwrap_or_else(|| "not published yet".into());
    let relative = matches!(gate.limit, LatencyLimit::TimesStable { .. });
    let stable = stable.filter(|_| relative);
    let value = match &stable {
        Some(s) => format!(
            "{stat} {} of {} (stable {} of {}{})",
            seen(&canary),
            n(canary.requests),
            seen(s),
            n(s.requests),
            s.label
        ),
        None => format!("{stat} {} of {}", seen(&canary), n(canary.requests)),
    };
    let short: Vec<String> = [Some(("canary", &canary)), stable.as_ref().map(|s| ("stable", s))]
        .into_iter()
        .flatten()
        .filter(|(_, side)| side.requests < needed as f64 || side.time.is_none())
        .map(|(name, side)| format!("{name} {} of {needed}", n(side.requests)))
        .collect();
    if !short.is_empty() {
        return GateResult::waiting(
            "latency",
            format!("{value}: {} requests needed", short.join(", ")),
            format!("a {stat} is compared from {needed} requests on each side on, so that some ten lie beyond it"),
        );
    }
    let (limit, how) = match (gate.limit, stable.and_then(|s| s.time)) {
        (LatencyLimit::TimesStable { factor, slack }, Some(base)) => {
            let limit = base * factor + slack.as_secs_f64();
            (limit, format!("limit stable × {factor} + {} = {}", duration::format(slack), ms(limit)))
        }
        (LatencyLimit::Below(limit), _) => (limit.as_secs_f64(), format!("limit {}", ms(limit.as_secs_f64()))),
        (LatencyLimit::TimesStable { .. }, None) => {
            return GateResult::waiting(
                "latency",
                value,
                "the stable version has published no response time to compare with yet",
            );
        }
    };
    let Some(time) = canary.time else {
        return GateResult::waiting("latency", value, "the canary has published no response time yet");
    };
    let evidence = match &stable {
        Some(s) => format!(
            "canary {stat} {} over {} requests, stable {stat} {} over {}{}; {how}",
            ms(time),
            n(canary.requests),
            seen(s),
            n(s.requests),
            s.label
        ),
        None => format!("canary {stat} {} over {} requests; {how}", ms(time), n(canary.requests)),
    };
    if time < limit {
        return GateResult::pass("latency", value);
    }
    if time >= BREACH_FACTOR * limit {
        return GateResult::breach(
            "latency",
            value,
            format!("{evidence}; {:.0} times the limit: failed at once", time / limit),
        );
    }
    GateResult::fail("latency", value, evidence)
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

    fn gates(min_requests: u64) -> Gates {
        Gates {
            alarms: Vec::new(),
            max_error_rate: None,
            max_latency: None,
            min_requests,
            failure_limit: 2,
            confidence: 0.99,
            probe_url: None,
        }
    }

    fn verdict(r: &GateResult) -> (Verdict, &str) {
        (r.verdict, r.value.as_str())
    }

    #[test]
    fn the_error_rate_is_judged_only_on_enough_requests() {
        let limit = ErrorRateLimit::Absolute(0.01);
        let waiting = rate_verdict(counts(0.0, 12.0), None, limit, &gates(50));
        assert_eq!(verdict(&waiting), (Verdict::Waiting, "12 of min-requests 50"), "the user's floor first");
        assert_eq!(rate_verdict(counts(5.0, 12.0), None, limit, &gates(50)).verdict, Verdict::Waiting);
        // 1% is told from no 5xx at 99% from 459 requests on: fewer is no pass.
        let short = rate_verdict(counts(0.0, 50.0), None, limit, &gates(50));
        assert_eq!(verdict(&short), (Verdict::Waiting, "0% of 50: 50 of 459 requests needed"));
        assert_eq!(verdict(&rate_verdict(counts(0.0, 459.0), None, limit, &gates(0))), (Verdict::Passed, "0% of 459"));
        // 2 of 100 is 2%, above 1%, but two 5xx are no evidence of it.
        assert_eq!(rate_verdict(counts(2.0, 100.0), None, limit, &gates(0)).verdict, Verdict::Waiting);
        // Above the limit on enough requests but not beyond chance: no pass either.
        let close = rate_verdict(counts(7.0, 500.0), None, limit, &gates(0));
        assert_eq!(close.verdict, Verdict::Waiting);
        assert!(close.detail.as_deref().is_some_and(|d| d.contains("not beyond chance at 99% yet")), "{close:?}");
        let failed = rate_verdict(counts(30.0, 1000.0), None, limit, &gates(0));
        assert_eq!(verdict(&failed), (Verdict::Failed, "3% of 1000"));
        assert_eq!(
            failed.detail.as_deref(),
            Some(
                "30 5xx of 1000 requests = 3%; limit max-error-rate 1%; above the limit beyond chance at 99% \
                 (the canary's rate is at least 1.98%)"
            )
        );
        let breached = rate_verdict(counts(200.0, 1000.0), None, limit, &gates(0));
        assert_eq!(breached.verdict, Verdict::Breached, "20 times the limit fails at once");
        assert!(breached.detail.as_deref().is_some_and(|d| d.ends_with("; 20 times the limit: failed at once")));
        let nothing = rate_verdict(counts(0.0, 0.0), None, limit, &gates(0));
        assert_eq!(verdict(&nothing), (Verdict::Waiting, NO_REQUESTS_YET));
    }

    #[test]
    fn against_stable_the_limit_moves_with_the_stable_rate_and_both_sides_are_shown() {
        let limit = ErrorRateLimit::AboveStable(0.01);
        // A day the whole service runs at 1.2%: a canary at 1.5% passes (an absolute 1% would not).
        let passed = rate_verdict(counts(15.0, 1000.0), Some((counts(120.0, 10000.0), "")), limit, &gates(0));
        assert_eq!(verdict(&passed), (Verdict::Passed, "1.5% of 1000 (stable 1.2% of 10000)"));
        let stable = (counts(100.0, 10000.0), ", since the first step");
        let failed = rate_verdict(counts(100.0, 1000.0), Some(stable), limit, &gates(0));
        assert_eq!(failed.verdict, Verdict::Failed);
        assert_eq!(
            failed.detail.as_deref(),
            Some(
                "canary 100 5xx of 1000 requests = 10%, stable 100 of 10000, since the first step = 1%; limit stable + \
                 1% = 2%; above the limit beyond chance at 99% (the canary's rate is at least 6.85% above stable's)"
            )
        );
        let nothing = rate_verdict(counts(1.0, 100.0), Some((counts(0.0, 0.0), "")), limit, &gates(0));
        assert_eq!(nothing.verdict, Verdict::Waiting, "no baseline is no verdict, never a pass");
        // The identical release: no 5xx on either side, 87 canary requests. Not a verdict.
        let thin = rate_verdict(counts(0.0, 87.0), Some((counts(0.0, 900.0), "")), limit, &gates(0));
        assert_eq!(verdict(&thin), (Verdict::Waiting, "0% of 87 (stable 0% of 900): 87 of 459 requests needed"));
        // The same rate on both sides passes on enough requests, whatever it is.
        let same = rate_verdict(counts(40.0, 1000.0), Some((counts(400.0, 10000.0), "")), limit, &gates(0));
        assert_eq!(same.verdict, Verdict::Passed);
    }

    fn side(time: Option<f64>, requests: f64) -> Side<'static> {
        Side { time, requests, label: "" }
    }

    #[test]
    fn latency_absolute_and_against_stable_with_its_slack() {
        let p99 = LatencyStat::Percentile(99.0);
        let below = LatencyGate { stat: p99, limit: LatencyLimit::Below(Duration::from_millis(800)) };
        let v = latency_verdict(side(Some(0.31), 2000.0), None, below, 0);
        assert_eq!(verdict(&v), (Verdict::Passed, "p99 310ms of 2000"));
        let times = LatencyGate {
            stat: p99,
            limit: LatencyLimit::TimesStable { factor: 1.3, slack: Duration::from_millis(5) },
        };
        let v = latency_verdict(side(Some(0.31), 2000.0), Some(side(Some(0.12), 9000.0)), times, 0);
        assert_eq!(verdict(&v), (Verdict::Failed, "p99 310ms of 2000 (stable 120ms of 9000)"));
        assert_eq!(
            v.detail.as_deref(),
            Some("canary p99 310ms over 2000 requests, stable p99 120ms over 9000; limit stable × 1.3 + 5ms = 161ms")
        );
        let v = latency_verdict(side(Some(0.31), 2000.0), Some(side(Some(0.3), 9000.0)), times, 0);
        assert_eq!(v.verdict, Verdict::Passed);
        let v = latency_verdict(side(Some(0.31), 2000.0), Some(side(None, 9000.0)), times, 0);
        assert_eq!(v.verdict, Verdict::Waiting, "no stable response time is no verdict");
    }

    #[test]
    fn a_p99_from_a_few_requests_is_no_verdict_and_a_millisecond_is_no_regression() {
        let p99 = LatencyStat::Percentile(99.0);
        let times = LatencyGate {
            stat: p99,
            limit: LatencyLimit::TimesStable { factor: 1.3, slack: Duration::from_millis(5) },
        };
        // The false alarm: p99 3 ms (stable 2 ms) after 87 canary requests.
        let thin = latency_verdict(side(Some(0.003), 87.0), Some(side(Some(0.002), 5000.0)), times, 0);
        assert_eq!(thin.verdict, Verdict::Waiting);
        assert_eq!(thin.value, "p99 3ms of 87 (stable 2ms of 5000): canary 87 of 1000 requests needed");
        // On enough requests, 3 ms against 2 ms is within stable × 1.3 + 5 ms = 7.6 ms.
        let enough = latency_verdict(side(Some(0.003), 1000.0), Some(side(Some(0.002), 5000.0)), times, 0);
        assert_eq!(enough.verdict, Verdict::Passed);
        // The stable side needs its requests as well.
        let short = latency_verdict(side(Some(0.003), 1000.0), Some(side(Some(0.002), 300.0)), times, 0);
        assert!(short.value.ends_with(": stable 300 of 1000 requests needed"), "{short:?}");
        // 300 ms more on a few-ms service: far past the limit, failed at once.
        let slow = latency_verdict(side(Some(0.305), 1000.0), Some(side(Some(0.003), 5000.0)), times, 0);
        assert_eq!(slow.verdict, Verdict::Breached);
        // min-requests on top of what the statistic needs.
        let p50 = LatencyGate { stat: LatencyStat::Percentile(50.0), ..times };
        let floor = latency_verdict(side(Some(0.003), 40.0), Some(side(Some(0.003), 5000.0)), p50, 100);
        assert!(floor.value.ends_with(": canary 40 of 100 requests needed"), "{floor:?}");
    }
}
