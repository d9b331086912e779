//! The canary step grammar (`10%:2m, 50%:5m, 100%`): how much traffic the new revision gets, and for
//! how long it bakes there before the next step.

use std::time::Duration;

use crate::config::duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CanaryStep {
    /// Percent of traffic sent to the canary target group, 1..=100.
    pub(crate) weight: u8,
    /// How long gates are watched at this weight before moving on.
    pub(crate) bake: Duration,
}

/// Parses comma- or newline-separated steps. Weights are whole percents, strictly increasing, and the
/// last is 100. Every step but the last needs a bake time; the last may have one (bake at 100% before
/// promoting).
pub(crate) fn parse(text: &str) -> Result<Vec<CanaryStep>, String> {
    let parts: Vec<&str> = text.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("no steps: write e.g. `10%:2m, 50%:2m, 100%`".into());
    }
    let mut steps: Vec<CanaryStep> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let n = i + 1;
        let (weight_text, bake_text) = match part.split_once(':') {
            Some((w, b)) => (w.trim(), Some(b.trim())),
            None => (*part, None),
        };
        let Some(number) = weight_text.strip_suffix('%') else {
            return Err(format!("step {n} `{part}`: the weight needs a percent sign, e.g. `{weight_text}%`"));
        };
        let weight: u8 = match number.trim().parse::<u32>() {
            Ok(w @ 1..=100) => w as u8,
            _ => return Err(format!("step {n} `{part}`: the weight must be a whole percent from 1% to 100%")),
        };
        let last = n == parts.len();
        let bake = match bake_text {
            Some(b) => duration::parse(b).map_err(|e| format!("step {n} `{part}`: the bake time {e}"))?,
            None if last => Duration::ZERO,
            None => {
                return Err(format!(
                    "step {n} `{part}` needs a bake time, e.g. `{weight}%:2m` (use `:0s` to skip baking)"
                ));
            }
        };
        if let Some(prev) = steps.last()
            && weight <= prev.weight
        {
            return Err(format!(
                "step {n} ({weight}%) must be above step {} ({}%): weights increase strictly, e.g. `10%:2m, 50%:2m, 100%`",
                n - 1,
                prev.weight
            ));
        }
        steps.push(CanaryStep { weight, bake });
    }
    if let Some(last) = steps.last()
        && last.weight != 100
    {
        return Err(format!(
            "the last step is {}%: end with `100%` so the new revision takes all traffic before it is promoted",
            last.weight
        ));
    }
    Ok(steps)
}

/// The form `parse` reads back, for logs and reports.
pub(crate) fn format(steps: &[CanaryStep]) -> String {
    steps
        .iter()
        .map(|s| {
            if s.bake.is_zero() {
                format!("{}%", s.weight)
            } else {
                format!("{}%:{}", s.weight, duration::format(s.bake))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(weight: u8, secs: u64) -> CanaryStep {
        CanaryStep { weight, bake: Duration::from_secs(secs) }
    }

    #[test]
    fn default_steps() {
        assert_eq!(parse("10%:2m, 50%:2m, 100%"), Ok(vec![step(10, 120), step(50, 120), step(100, 0)]));
    }

    #[test]
    fn newlines_and_a_bake_at_full_weight() {
        assert_eq!(parse("25%:30s\n100%:1m\n"), Ok(vec![step(25, 30), step(100, 60)]));
        assert_eq!(parse("100%"), Ok(vec![step(100, 0)]));
    }

    #[test]
    fn round_trips_through_format() {
        let text = "10%:5s, 50%:1m30s, 100%";
        assert_eq!(format(&parse(text).unwrap()), text);
    }

    #[test]
    fn refusals_say_which_step_and_why() {
        let cases = [
            ("50%:1m, 10%:1m", "must be above step 1"),
            ("10%:1m, 10%:1m, 100%", "must be above"),
            ("10%:1m, 50%:1m", "end with `100%`"),
            ("10:1m, 100%", "percent sign"),
            ("0%:1m, 100%", "from 1% to 100%"),
            ("150%", "from 1% to 100%"),
            ("10%, 100%", "needs a bake time"),
            ("10%:2, 100%", "no unit"),
            ("", "no steps"),
            ("10.5%:1m, 100%", "whole percent"),
        ];
        for (input, expected) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.contains(expected), "{input:?} -> {err}");
        }
    }
}
