"""CloudWatch's StartTime rounding (test infrastructure): CloudWatch rounds a query's StartTime down
to the whole minute (for data less than 15 days old), so the period a time falls in comes back
whole. moto keeps only datapoints stamped at or after StartTime, and the stack stamps each datapoint
at its period's start, so a query from a canary's shift lost the very period the shift fell in and
saw its first 5xx one period late. Here StartTime is rounded down to the stack's metric period, its
scaled minute, for GetMetricStatistics and GetMetricData alike.
"""

from datetime import datetime, timezone

from moto.cloudwatch import models as cw_models


def round_down(t: datetime, period: float) -> datetime:
    """`t` down to a multiple of `period` seconds since the epoch, naive (UTC) if `t` was."""
    aware = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    seconds = aware.timestamp()
    rounded = datetime.fromtimestamp(seconds - seconds % period, tz=timezone.utc)
    return rounded if t.tzinfo else rounded.replace(tzinfo=None)


def install(period: float):
    backend = cw_models.CloudWatchBackend
    if getattr(backend, "_stack_start_rounding", False):
        return
    statistics, data = backend.get_metric_statistics, backend.get_metric_data

    def get_metric_statistics(self, namespace, metric_name, start_time, *args, **kwargs):
        return statistics(self, namespace, metric_name, round_down(start_time, period), *args, **kwargs)

    def get_metric_data(self, queries, start_time, *args, **kwargs):
        return data(self, queries, round_down(start_time, period), *args, **kwargs)

    backend.get_metric_statistics = get_metric_statistics
    backend.get_metric_data = get_metric_data
    backend._stack_start_rounding = True
