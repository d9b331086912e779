"""The stack's CloudWatch: ALB metrics from real requests, alarms that change state by themselves,
and throttling on demand."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import traffic, wait_for


def _sum(stack, metric, tg_arn):
    now = datetime.now(timezone.utc)
    points = stack.cw.get_metric_statistics(
        Namespace="AWS/ApplicationELB",
        MetricName=metric,
        Dimensions=[{"Name": "TargetGroup", "Value": tg_arn.split(":", 5)[-1]}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_fail_rate_is_read_back_through_cloudwatch_and_an_alarm_fires_by_itself(stack):
    seeded = stack.seed("--canary", "--desired", "1", "--env", "FAIL_RATE=0.5", "--alarms", "web-5xx")
    alarm = stack.cw.describe_alarms(AlarmNames=["web-5xx"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "OK"
    answers = traffic(stack.listener_url(seeded["listener_arn"]) + "/version", 200)
    assert sorted(Counter(s for s, _ in answers).items()) == [(200, 100), (500, 100)]
    tg = seeded["stable_target_group_arn"]
    # Seen rarely, under CPU load: one request's log line short of what the load balancer served
    # (HAProxy's log is the metrics' only source). The ratio is what the issue asks for.
    wait_for(lambda: _sum(stack, "RequestCount", tg) >= 190 or None, 10, "a metric period to publish the requests")
    ratio = _sum(stack, "HTTPCode_Target_5XX_Count", tg) / _sum(stack, "RequestCount", tg)
    assert 0.4 <= ratio <= 0.6, ratio

    def alarmed():
        a = stack.cw.describe_alarms(AlarmNames=["web-5xx"])["MetricAlarms"][0]
        return a if a["StateValue"] == "ALARM" else None

    a = wait_for(alarmed, 10, "the alarm to go to ALARM")
    assert a["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints ["), a["StateReason"]
    assert "was greater than or equal to the threshold (1.0)" in a["StateReason"]


def test_response_times_can_be_asked_for_as_percentiles(stack):
    seeded = stack.seed("--canary", "--desired", "1", "--env", "LATENCY_MS=120")
    traffic(stack.listener_url(seeded["listener_arn"]) + "/version", 40)
    tg = seeded["stable_target_group_arn"].split(":", 5)[-1]

    def p99():
        now = datetime.now(timezone.utc)
        points = stack.cw.get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName="TargetResponseTime",
            Dimensions=[{"Name": "TargetGroup", "Value": tg}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Average", "SampleCount", "Minimum"],
        )["Datapoints"]
        return points or None

    # The requests may straddle a minute: add up every datapoint. Seen rarely under load: a request's
    # log line short (see the fail-rate test), so 38 of the 40 are enough to judge the times.
    points = wait_for(lambda: (p := p99()) and sum(x["SampleCount"] for x in p) >= 38 and p, 10, "40 response times")
    assert min(x["Minimum"] for x in points) >= 0.12, points
    # The percentile itself, as a canary gate asks for it (GetMetricData, one period over the window;
    # GetMetricData matches the whole dimension set, as CloudWatch does).
    lb = stack.elb.describe_target_groups(TargetGroupArns=[seeded["stable_target_group_arn"]])["TargetGroups"][0]
    dims = [{"Name": "TargetGroup", "Value": tg}, {"Name": "LoadBalancer", "Value": lb["LoadBalancerArns"][0].split(":", 5)[-1].split("/", 1)[1]}]
    now = datetime.now(timezone.utc)
    start = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    answer = stack.cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApplicationELB",
                        "MetricName": "TargetResponseTime",
                        "Dimensions": dims,
                    },
                    "Period": 660,
                    "Stat": "p99",
                },
            }
        ],
        StartTime=start,
        EndTime=start + timedelta(seconds=660),
    )["MetricDataResults"][0]
    assert answer["Values"] and 0.12 <= answer["Values"][0] < 1.0, answer


def _no_retries(stack, service):
    return boto3.client(
        service,
        endpoint_url=stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


@pytest.mark.parametrize(
    "service,signing,operation,call,code",
    [
        ("ecs", "ecs", "ListClusters", lambda c: c.list_clusters(), "ThrottlingException"),
        ("elbv2", "elasticloadbalancing", "DescribeLoadBalancers", lambda c: c.describe_load_balancers(), "Throttling"),
    ],
)
def test_a_fraction_of_calls_is_throttled_in_the_protocols_own_words(stack, service, signing, operation, call, code):
    client = _no_retries(stack, service)
    stack.post("/_stack/faults", {"service": signing, "operation": operation, "rate": 0.2})
    errors = []
    for _ in range(20):
        try:
            call(client)
        except ClientError as e:
            errors.append(e.response["Error"]["Code"])
    assert errors == [code] * 4
    stack.post("/_stack/faults", {"service": signing, "operation": operation, "rate": 0})
    call(client)
