//! Human durations as users write them in workflow files (`30s`, `5m`, `1h`, `1m30s`, `500ms`), and
//! back again for logs and reports.

use std::time::Duration;

/// Parses `1h`, `5m`, `30s`, `500ms` and sums of them (`1m30s`). A bare number is refused: `30`
/// could mean seconds or minutes, and a deploy tool should not guess.
/// The longest duration any input accepts: a deploy that waits longer is stuck, and deadlines stay
/// far from overflowing.
pub(crate) const LONGEST: Duration = Duration::from_secs(24 * 3600);

pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty: write a number and a unit, e.g. 30s, 5m or 1h".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}` is not a duration: write a number and a unit, e.g. 30s, 5m, 1h or 1m30s"));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let n: u64 = number.parse().map_err(|_| format!("`{text}`: {number} is too large"))?;
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => {
                return Err(format!("`{text}` has no unit: write {number}s for seconds or {number}m for minutes"));
            }
            other => return Err(format!("`{text}`: unknown unit `{other}`: use ms, s, m or h")),
        };
        total = total.saturating_add(part);
        rest = tail;
    }
    if total > LONGEST {
        return Err(format!("`{text}` is longer than 24h: nothing in a deploy should wait that long; use at most 24h"));
    }
    Ok(total)
}

/// The shortest form `parse` reads back: `2m`, `1m30s`, `500ms`, `0s`.
pub(crate) fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_and_sums() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse(" 500ms "), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_ambiguous_or_malformed() {
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("5 minutes").is_err());
        assert!(parse("5d").unwrap_err().contains("unknown unit"));
        assert!(parse("").is_err());
        assert!(parse("m5").is_err());
        assert!(parse("-5s").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["2m", "1m30s", "500ms", "0s", "1h", "1h1m1s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
