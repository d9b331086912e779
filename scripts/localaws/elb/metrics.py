"""ALB metrics from the load balancer's own request log, and CloudWatch metric alarms evaluated
against them (test infrastructure).

Every metric period (profile: 60 AWS seconds) the requests of each target group are published in
CloudWatch's `AWS/ApplicationELB` namespace with its `TargetGroup` and `LoadBalancer` dimensions:
RequestCount, HTTPCode_Target_{2XX,4XX,5XX}_Count, HTTPCode_ELB_5XX_Count, and TargetResponseTime as
value/count sets (so percentiles can be asked for). Then every metric alarm is evaluated as CloudWatch
does (statistic per period, EvaluationPeriods, DatapointsToAlarm, TreatMissingData) and changes state
with CloudWatch's wording.
"""

import json
import threading
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

from moto.cloudwatch import models as cw_models

NAMESPACE = "AWS/ApplicationELB"

OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


def tg_dimension(arn: str) -> str:
    return arn.split(":", 5)[-1]  # targetgroup/<name>/<id>


def lb_dimension(arn: str) -> str:
    return arn.split(":loadbalancer/", 1)[-1]  # app/<name>/<id>


class Requests:
    """What the load balancer served in the current period, per target group."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_tg = defaultdict(Counter)
        self.times = defaultdict(Counter)

    def record(self, tg_arn: str, server: str, status: int, tr_ms: int):
        with self.lock:
            c = self.by_tg[tg_arn]
            c["RequestCount"] += 1
            if server == "<NOSRV>" or tr_ms < 0:
                if status >= 500:
                    c["HTTPCode_ELB_5XX_Count"] += 1
                return
            bucket = f"HTTPCode_Target_{status // 100}XX_Count"
            c[bucket] += 1
            self.times[tg_arn][round(tr_ms / 1000.0, 3)] += 1

    def take(self):
        with self.lock:
            by_tg, times = self.by_tg, self.times
            self.by_tg, self.times = defaultdict(Counter), defaultdict(Counter)
        return by_tg, times


def _backends():
    for account in cw_models.cloudwatch_backends.values():
        for region, backend in account.items():
            yield region, backend


def publish(by_tg, times, period_start: datetime, target_groups):
    # moto compares naive UTC timestamps, as its request parser makes them.
    period_start = period_start.astimezone(timezone.utc).replace(tzinfo=None)
    """Puts one period's datapoints into moto's CloudWatch; `target_groups` maps ARN -> moto's group."""
    for arn, counts in by_tg.items():
        tg = target_groups.get(arn)
        if tg is None:
            continue
        region = arn.split(":")[3]
        dims = [{"Name": "TargetGroup", "Value": tg_dimension(arn)}]
        for lb in getattr(tg, "load_balancer_arns", [])[:1]:
            dims.append({"Name": "LoadBalancer", "Value": lb_dimension(lb)})
        data = [
            {"MetricName": name, "Dimensions": dims, "Timestamp": period_start, "Unit": "Count", "Value": float(value)}
            for name, value in sorted(counts.items())
        ]
        if times.get(arn):
            values = sorted(times[arn].items())
            data.append(
                {
                    "MetricName": "TargetResponseTime",
                    "Dimensions": dims,
                    "Timestamp": period_start,
                    "Unit": "Seconds",
                    "Values": [v for v, _ in values],
                    "Counts": [float(n) for _, n in values],
                }
            )
        cw_models.cloudwatch_backends[arn.split(":")[4]][region].put_metric_data(NAMESPACE, data)


def _statistic(values, stat):
    if not values:
        return None
    return {
        "Sum": sum(values),
        "Average": sum(values) / len(values),
        "Maximum": max(values),
        "Minimum": min(values),
        "SampleCount": float(len(values)),
    }.get(stat)


def _datum_values(d):
    if hasattr(d, "value"):
        return [d.value]
    return [d.sum]


def evaluate(profile, now: datetime | None = None):
    """Evaluates every metric alarm on a metric of the data the stack published."""
    now = now or datetime.now(timezone.utc)
    for _, backend in _backends():
        for alarm in list(backend.alarms.values()):
            if not alarm.metric_name or alarm.metric_data_queries:
                continue
            _evaluate_one(backend, alarm, profile, now)


def _evaluate_one(backend, alarm, profile, now):
    window = timedelta(seconds=profile.scaled(int(alarm.period)))
    periods = int(alarm.evaluation_periods)
    needed = int(alarm.datapoints_to_alarm or periods)
    dims = [{"Name": d.name, "Value": d.value} for d in alarm.dimensions or []]
    stat = alarm.statistic or "Average"
    end = now - (now - datetime(2000, 1, 1, tzinfo=timezone.utc)) % window
    start = end - window * periods
    data = [
        d
        for d in backend.get_all_metrics()
        if d.namespace == alarm.namespace and d.name == alarm.metric_name and start <= _aware(d.timestamp) < end and d.filter(None, None, dims)
    ]
    points = []
    for i in range(periods):
        lo = start + window * i
        vals = [v for d in data if lo <= _aware(d.timestamp) < lo + window for v in _datum_values(d)]
        points.append((lo, _statistic(vals, stat)))
    test, words = OPERATORS.get(alarm.comparison_operator, (None, None))
    if test is None:
        return
    threshold = float(alarm.threshold)
    missing = alarm.treat_missing_data or "missing"
    breaching = 0
    present = [(t, v) for t, v in points if v is not None]
    for _, v in points:
        if v is None:
            breaching += 1 if missing == "breaching" else 0
        elif test(v, threshold):
            breaching += 1
    if not present and missing in ("missing", "ignore"):
        # No datapoint in the range: CloudWatch keeps the state while it waits for data.
        return
    new_state = "ALARM" if breaching >= needed else "OK"
    if new_state == alarm.state_value:
        return
    shown = ", ".join(f"{v} ({t.strftime('%d/%m/%y %H:%M:%S')})" for t, v in reversed(present)) or "no datapoints"
    if new_state == "ALARM":
        reason = (
            f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] was {words} the threshold "
            f"({threshold}) (minimum {needed} datapoint{'s' if needed > 1 else ''} for OK -> ALARM transition)."
        )
    else:
        reason = (
            f"Threshold Crossed: {len(present)} out of the last {periods} datapoints [{shown}] was not {words} the "
            f"threshold ({threshold}) (minimum 1 datapoint for ALARM -> OK transition)."
        )
    reason_data = json.dumps(
        {
            "version": "1.0",
            "queryDate": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "startDate": start.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "statistic": stat,
            "period": int(alarm.period),
            "recentDatapoints": [v for _, v in present],
            "threshold": threshold,
        }
    )
    backend.set_alarm_state(alarm.name, reason, reason_data, new_state)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
