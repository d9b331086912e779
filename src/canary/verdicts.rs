//! What a check's error-rate and latency numbers conclude: passed, failed, a breach, or not yet
//! evidence (and what is missing), with the values and evidence the log and the table show. Pure:
//! the gates read the numbers, `statistics` says when they are evidence.

use crate::config::Gates;
use crate::config::duration;
use crate::config::thresholds::{ErrorRateLimit, LatencyGate, LatencyLimit, confidence};
use crate::records::GateResult;

use super::gates::NO_REQUESTS_YET;
use super::metrics::Counts;
use super::statistics::{
    BREACH_FACTOR, difference_lower_bound, latency_samples_needed, rate_lower_bound, rate_samples_needed,
};

fn pct(fraction: f64) -> String {
    format!("{}%", round2(fraction * 100.0))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::thresholds::LatencyStat;
    use crate::records::Verdict;

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
