//! The canary's comparison gates as a user writes them: an error rate absolute (`1%`) or against the
//! stable version over the same window (`stable + 1%`), and a latency statistic (`p99`, `avg`) below
//! a duration (`p99 < 800ms`) or a multiple of the stable version's plus a slack
//! (`p99 < stable × 1.3 + 5ms`; the slack defaults to `DEFAULT_SLACK`).

use std::fmt;
use std::time::Duration;

use super::duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ErrorRateLimit {
    /// Highest accepted 5xx share, as a fraction (1% is 0.01).
    Absolute(f64),
    /// The stable target group's share over the same window plus this fraction.
    AboveStable(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LatencyStat {
    Average,
    /// `p99` is 99.0.
    Percentile(f64),
}

/// What a relative latency limit adds to `stable × factor` when the user writes none: a difference
/// of a few milliseconds is the metric's rounding and a scheduler's hiccup, not a regression (a 2 ms
/// stable p99 times 1.3 would otherwise fail a canary at 3 ms).
pub(crate) const DEFAULT_SLACK: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LatencyLimit {
    Below(Duration),
    /// Below the stable target group's same statistic over the same window, times `factor`, plus
    /// `slack`.
    TimesStable {
        factor: f64,
        slack: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencyGate {
    pub(crate) stat: LatencyStat,
    pub(crate) limit: LatencyLimit,
}

fn pct(fraction: f64) -> String {
    format!("{}%", (fraction * 100.0 * 1000.0).round() / 1000.0)
}

impl fmt::Display for ErrorRateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorRateLimit::Absolute(max) => write!(f, "{}", pct(*max)),
            ErrorRateLimit::AboveStable(delta) => write!(f, "stable + {}", pct(*delta)),
        }
    }
}

impl fmt::Display for LatencyStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LatencyStat::Average => write!(f, "avg"),
            LatencyStat::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

impl LatencyStat {
    /// CloudWatch's name for it (`Average`, `p99`, `p99.9`).
    pub(crate) fn cloudwatch(&self) -> String {
        match self {
            LatencyStat::Average => "Average".into(),
            LatencyStat::Percentile(p) => format!("p{p}"),
        }
    }
}

impl fmt::Display for LatencyGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            LatencyLimit::Below(d) => write!(f, "{} < {}", self.stat, duration::format(d)),
            LatencyLimit::TimesStable { factor, slack } => {
                write!(f, "{} < stable × {factor} + {}", self.stat, duration::format(slack))
            }
        }
    }
}

/// A confidence as the user writes it (`gate-confidence`): 0.99 is `99%`, 0.995 is `99.5%`.
pub(crate) fn confidence(fraction: f64) -> String {
    format!("{}%", (fraction * 1000.0).round() / 10.0)
}

/// `1%`, `0.5%`, or `stable + 1%`.
pub(crate) fn error_rate(v: &str) -> Result<ErrorRateLimit, String> {
    let percent = |text: &str| -> Option<f64> {
        let n: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
        (0.0..=100.0).contains(&n).then_some(n / 100.0)
    };
    let bad = || {
        format!(
            "`{v}` is not an error rate: write it like `1%` (absolute) or `stable + 1%` (against the stable version)"
        )
    };
    match v.trim().strip_prefix("stable") {
        Some(rest) => {
            let delta = rest.trim().strip_prefix('+').ok_or_else(bad)?;
            percent(delta).map(ErrorRateLimit::AboveStable).ok_or_else(bad)
        }
        None => percent(v)
            .map(ErrorRateLimit::Absolute)
            .ok_or_else(|| format!("`{v}` is not a percentage: write it like `1%` or `0.5%`, or `stable + 1%`")),
    }
}

/// `p99 < 800ms`, `avg < 200ms`, `p99 < stable × 1.3`, `p99 < stable × 1.3 + 10ms` (`×`, `x` and `*`
/// all mean times).
pub(crate) fn latency(v: &str) -> Result<LatencyGate, String> {
    let bad = |why: &str| {
        format!(
            "`{v}` {why}: write it like `p99 < 800ms`, `avg < 200ms` or `p99 < stable × 1.3` (`+ 10ms` for a slack)"
        )
    };
    let (stat, limit) = v.split_once('<').ok_or_else(|| bad("has no `<`"))?;
    let stat = match stat.trim() {
        "avg" | "average" => LatencyStat::Average,
        s => match s.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()) {
            Some(p) if p > 0.0 && p < 100.0 => LatencyStat::Percentile(p),
            _ => return Err(bad("names no statistic (`avg`, or a percentile such as `p99`, `p99.9`)")),
        },
    };
    let limit = limit.trim();
    let limit = match limit.strip_prefix("stable") {
        Some(rest) => {
            let factor =
                rest.trim().strip_prefix(['×', 'x', '*']).ok_or_else(|| bad("compares with `stable` without `×`"))?;
            let (factor, slack) = match factor.split_once('+') {
                Some((factor, slack)) => match duration::parse(slack.trim()) {
                    Ok(d) if d <= Duration::from_secs(60) => (factor, d),
                    _ => return Err(bad("has no slack of at most 60s after `+`")),
                },
                None => (factor, DEFAULT_SLACK),
            };
            match factor.trim().parse::<f64>() {
                Ok(x) if (1.0..=100.0).contains(&x) => LatencyLimit::TimesStable { factor: x, slack },
                _ => return Err(bad("needs a factor from 1 to 100 after `stable ×`")),
            }
        }
        None => match duration::parse(limit) {
            Ok(d) if !d.is_zero() => LatencyLimit::Below(d),
            _ => return Err(bad("has no duration after `<`")),
        },
    };
    Ok(LatencyGate { stat, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rates_absolute_and_against_stable() {
        assert_eq!(error_rate("1%"), Ok(ErrorRateLimit::Absolute(0.01)));
        assert_eq!(error_rate("stable + 1%"), Ok(ErrorRateLimit::AboveStable(0.01)));
        assert_eq!(error_rate("stable+0.5%"), Ok(ErrorRateLimit::AboveStable(0.005)));
        assert_eq!(error_rate("stable + 1%").unwrap().to_string(), "stable + 1%");
        assert!(error_rate("stable - 1%").unwrap_err().contains("`stable + 1%`"));
        assert!(error_rate("1").unwrap_err().contains("not a percentage"));
        assert!(error_rate("150%").is_err());
    }

    #[test]
    fn latencies_with_every_way_of_writing_times() {
        let times = |factor, ms| LatencyGate {
            stat: LatencyStat::Percentile(99.0),
            limit: LatencyLimit::TimesStable { factor, slack: Duration::from_millis(ms) },
        };
        for written in ["p99 < stable × 1.3", "p99<stable x 1.3", "p99 < stable * 1.3"] {
            assert_eq!(latency(written), Ok(times(1.3, 5)), "{written}: the default slack");
        }
        assert_eq!(latency("p99 < stable × 1.3 + 20ms"), Ok(times(1.3, 20)));
        assert_eq!(latency("p99 < stable x 2+0ms"), Ok(times(2.0, 0)), "no slack, when asked");
        assert!(latency("p99 < stable × 1.3 + soon").unwrap_err().contains("no slack"));
        assert_eq!(
            latency("avg < 200ms"),
            Ok(LatencyGate { stat: LatencyStat::Average, limit: LatencyLimit::Below(Duration::from_millis(200)) })
        );
        assert_eq!(latency("p99.9 < 1s").unwrap().stat.cloudwatch(), "p99.9");
        assert_eq!(latency("p99 < stable × 1.3").unwrap().to_string(), "p99 < stable × 1.3 + 5ms");
        assert_eq!(latency("p99 < 800ms").unwrap().to_string(), "p99 < 800ms");
        assert!(latency("p99 800ms").unwrap_err().contains("has no `<`"));
        assert!(latency("median < 1s").unwrap_err().contains("names no statistic"));
        assert!(latency("p99 < stable 2").unwrap_err().contains("without `×`"));
        assert!(latency("p99 < stable × 0.5").unwrap_err().contains("from 1 to 100"));
        assert!(latency("p99 < soon").unwrap_err().contains("no duration"));
    }
}
