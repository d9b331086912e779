//! When a gate's numbers are evidence, and what they prove: how many requests a statistic needs
//! before it may be compared, the one-sided tests that judge an error rate from counts (against a
//! bound, or against the stable version's), and when a failure is so far past its bound that
//! waiting for a second check would be worse. Pure arithmetic, table-tested against known values.

use crate::config::thresholds::LatencyStat;

/// A failure this many times its limit, on enough requests, fails the step at once.
pub(crate) const BREACH_FACTOR: f64 = 10.0;

/// Requests on each side before a latency statistic may be compared: a percentile `q` needs about
/// `10 / (1 - q)` (p99: 1,000, p95: 200, p50: 20), so that some ten requests lie beyond it; a p99
/// from 87 requests is the slowest request, not a percentile. An average needs 30.
pub(crate) fn latency_samples_needed(stat: LatencyStat) -> u64 {
    match stat {
        LatencyStat::Average => 30,
        // Rounded first: 10 / (1 - 0.999) is 10000.000000001 in floating point.
        LatencyStat::Percentile(p) => ((10.0 / (1.0 - p / 100.0) * 1e6).round() / 1e6).ceil().max(1.0) as u64,
    }
}

/// Requests before an error rate may pass a `bound`: enough that a canary answering none of them
/// with a 5xx rules out a rate at the bound at `confidence` (n with (1 - bound)^n ≤ 1 - confidence:
/// 459 for 1% at 99%, 299 for 1% at 95%). A bound of 0 needs one request.
pub(crate) fn rate_samples_needed(bound: f64, confidence: f64) -> u64 {
    if bound <= 0.0 {
        return 1;
    }
    if bound >= 1.0 {
        return 1;
    }
    (((1.0 - confidence).ln() / (1.0 - bound).ln() * 1e6).round() / 1e6).ceil().max(1.0) as u64
}

/// The z value a one-sided test at `confidence` exceeds (2.326 at 99%, 1.645 at 95%): the standard
/// normal's quantile, by Acklam's rational approximation (relative error below 1.2e-9).
pub(crate) fn z(confidence: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let p = confidence.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The lowest rate consistent with `errors` of `requests` at `confidence` (Wilson's score bound,
/// one-sided): a canary whose bound is above the limit has a rate above it beyond chance.
pub(crate) fn rate_lower_bound(errors: f64, requests: f64, confidence: f64) -> f64 {
    if requests <= 0.0 {
        return 0.0;
    }
    let (n, p, z) = (requests, (errors / requests).clamp(0.0, 1.0), z(confidence));
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - spread) / (1.0 + z2 / n)).max(0.0)
}

/// The lowest difference between the canary's and the stable version's rates consistent with the
/// counts at `confidence` (Agresti and Caffo's interval: one error and one success added to each
/// side, which keeps it honest when either side has no error at all).
pub(crate) fn difference_lower_bound(canary: (f64, f64), stable: (f64, f64), confidence: f64) -> f64 {
    let adjusted = |(errors, requests): (f64, f64)| {
        let n = requests.max(0.0) + 2.0;
        ((errors.clamp(0.0, requests.max(0.0)) + 1.0) / n, n)
    };
    let ((pc, nc), (ps, ns)) = (adjusted(canary), adjusted(stable));
    let se = (pc * (1.0 - pc) / nc + ps * (1.0 - ps) / ns).sqrt();
    (pc - ps) - z(confidence) * se
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, within: f64) -> bool {
        (a - b).abs() <= within
    }

    #[test]
    fn a_percentile_needs_ten_requests_beyond_it() {
        let p = LatencyStat::Percentile;
        assert_eq!(latency_samples_needed(p(99.0)), 1000);
        assert_eq!(latency_samples_needed(p(95.0)), 200);
        assert_eq!(latency_samples_needed(p(90.0)), 100);
        assert_eq!(latency_samples_needed(p(50.0)), 20);
        assert_eq!(latency_samples_needed(p(99.9)), 10_000);
        assert_eq!(latency_samples_needed(LatencyStat::Average), 30);
    }

    #[test]
    fn a_rate_needs_enough_requests_to_be_told_from_zero() {
        assert_eq!(rate_samples_needed(0.01, 0.99), 459, "ln(0.01) / ln(0.99) = 458.2");
        assert_eq!(rate_samples_needed(0.01, 0.95), 299, "the rule of three: about 3 / 1%");
        assert_eq!(rate_samples_needed(0.05, 0.99), 90);
        assert_eq!(rate_samples_needed(0.0, 0.99), 1, "a 0% bound: any 5xx fails, none passes");
        // Zero errors in the needed count do rule the bound out; one request fewer does not.
        let n = rate_samples_needed(0.02, 0.99) as i32;
        assert!(0.98_f64.powi(n) <= 0.01 && 0.98_f64.powi(n - 1) > 0.01);
    }

    #[test]
    fn z_matches_the_normal_tables() {
        assert!(close(z(0.99), 2.326_348, 1e-5));
        assert!(close(z(0.95), 1.644_854, 1e-5));
        assert!(close(z(0.975), 1.959_964, 1e-5));
        assert!(close(z(0.999), 3.090_232, 1e-5));
        assert!(close(z(0.8), 0.841_621, 1e-5));
        assert!(close(z(0.5), 0.0, 1e-9));
    }

    #[test]
    fn wilsons_bound_matches_published_values() {
        // 10 of 100 at 95% two-sided (97.5% one-sided): [0.0552, 0.1744] (Newcombe 1998, method 3).
        assert!(close(rate_lower_bound(10.0, 100.0, 0.975), 0.0552, 1e-4));
        // 0 of n: the bound is 0, whatever n.
        assert_eq!(rate_lower_bound(0.0, 10_000.0, 0.99), 0.0);
        // 81 of 263 at 95% two-sided: [0.2553, 0.3662] (Newcombe 1998, table I).
        assert!(close(rate_lower_bound(81.0, 263.0, 0.975), 0.2553, 1e-4));
    }

    #[test]
    fn a_canary_at_its_bound_or_barely_over_is_not_failed_by_chance() {
        // 3 5xx in 200 (1.5%) against a 1% bound: above it, but not beyond chance at 99%.
        assert!(rate_lower_bound(3.0, 200.0, 0.99) < 0.01);
        // 30 in 1000 (3%): beyond chance.
        assert!(rate_lower_bound(30.0, 1000.0, 0.99) > 0.01);
        // All of 20 requests failing is enough evidence on its own.
        assert!(rate_lower_bound(20.0, 20.0, 0.99) > 0.5);
    }

    #[test]
    fn the_difference_of_two_rates_is_judged_on_both_counts() {
        // Agresti and Caffo's adjusted Wald interval, computed by hand: 9 of 100 against 3 of 100,
        // one-sided 95%: d = 10/102 - 4/102 = 0.05882, se = 0.03516, bound d - 1.6449 × se = 0.00099.
        let bound = difference_lower_bound((9.0, 100.0), (3.0, 100.0), 0.95);
        assert!(close(bound, 0.000_99, 1e-5), "{bound}");
        // The same rate on both sides is never a regression, whatever the counts.
        assert!(difference_lower_bound((40.0, 1000.0), (400.0, 10_000.0), 0.99) < 0.0);
        // No error on either side: no evidence of a difference (the plain Wald bound would be 0).
        assert!(difference_lower_bound((0.0, 87.0), (0.0, 900.0), 0.99) < 0.0);
        // 20% against 4% on a few hundred requests: beyond chance by more than 5 points.
        assert!(difference_lower_bound((60.0, 300.0), (40.0, 1000.0), 0.99) > 0.05);
    }
}
