"""CloudWatch percentiles (test infrastructure): moto answers no percentile statistic (`p99`,
`p99.9`) for GetMetricData, where CloudWatch computes it from the values published. The stack
publishes TargetResponseTime as value/count sets, which moto keeps one datum per value, so the
percentile is computed here the way CloudWatch's nearest-rank percentiles read: the smallest value
with at least N% of the samples at or below it.
"""

import math
import re

from moto.cloudwatch import models as cw_models

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
_original = cw_models.Statistics.get_statistics_for_type


def percentile(values, p: float):
    """Nearest-rank percentile of `values`; None when there is none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _with_percentiles(self, stat):
    m = _PERCENTILE.match(stat or "")
    if m:
        return percentile(self.metric_single_values_list, float(m.group(1)))
    return _original(self, stat)


def install():
    cw_models.Statistics.get_statistics_for_type = _with_percentiles
