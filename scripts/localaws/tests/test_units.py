"""Pure pieces of the stack: weights to thresholds, the HAProxy configuration, profiles, faults, call counts."""

import pytest

from localaws import calls, faults, stack_profile
from localaws.elb.load_balancer import RANDOM_RANGE, Action, Desired, HealthCheck, render, thresholds


def test_thresholds_are_cumulative_shares_of_the_range():
    assert thresholds([90, 10]) == [900_000, RANDOM_RANGE]
    assert thresholds([0, 100]) == [0, RANDOM_RANGE]
    assert thresholds([1, 1, 2]) == [250_000, 500_000, RANDOM_RANGE]
    assert thresholds([0, 0]) == [0, 0]


def test_configuration_binds_and_checks_on_loopback_with_the_groups_settings():
    d = Desired(
        listeners={"arn:l": (18000, [Action("a1d", (), ("arn:tg1", "arn:tg2"))])},
        weights={"a1d": [100, 0]},
        target_groups={
            "arn:tg1": HealthCheck("/health", 500, 400, 2, 3, "200-202"),
            "arn:tg2": HealthCheck("/", 500, 400, 5, 2, "200"),
        },
    )
    cfg = render(d, "/tmp/x")
    assert "bind 127.0.0.1:18000" in cfg
    assert "option httpchk GET /health" in cfg
    assert "rstatus ^(200|201|202)$" in cfg
    assert "inter 500 fastinter 500 downinter 500 rise 2 fall 3" in cfg
    assert "127.0.0.1:1 disabled" in cfg


def test_profiles_scale_aws_time():
    fast = stack_profile.current({})
    assert fast.scaled(60) == pytest.approx(1.0)
    aws = stack_profile.current({"STACK_PROFILE": "aws", "STACK_TIME_SCALE": "0.1"})
    assert aws.scaled(aws.metric_period) == pytest.approx(6.0)
    with pytest.raises(SystemExit, match="fast or aws"):
        stack_profile.current({"STACK_PROFILE": "slow"})


def test_a_random_fault_throttles_about_its_rate_with_bursts_and_repeats_with_its_seed():
    def run():
        faults.clear()
        faults.set_fault("ecs", None, 0.4, seed=7)
        return [faults._due("ecs", "DescribeServices") for _ in range(2000)]

    calls = run()
    assert 0.37 < sum(calls) / len(calls) < 0.43
    longest, current = 0, 0
    for throttled in calls:
        current = current + 1 if throttled else 0
        longest = max(longest, current)
    assert longest >= 4, "a coin throttles several calls in a row now and then, as AWS does"
    assert run() == calls
    faults.clear()


def test_a_fault_count_throttles_exactly_the_next_calls_then_ends():
    faults.clear()
    faults.set_fault("elasticloadbalancing", "ModifyListener", 0, count=2)
    assert [faults._due("elasticloadbalancing", "ModifyListener") for _ in range(4)] == [True, True, False, False]
    faults.clear()


def test_an_armed_fault_starts_only_after_its_trigger_call_went_through():
    faults.clear()
    faults.set_fault("ecs", "DescribeServices", 0, count=2, after="UpdateService")
    faults.set_fault("ecs", "UpdateService", 1.0, after="UpdateService")
    assert not faults._due("ecs", "DescribeServices"), "not armed before the trigger"
    assert not faults._due("ecs", "UpdateService"), "the trigger call itself goes through"
    describes = [faults._due("ecs", "DescribeServices") for _ in range(3)]
    assert describes == [True, True, False]
    assert faults._due("ecs", "UpdateService"), "every later update is refused"
    faults.clear()
    assert not faults._due("ecs", "UpdateService")


def test_fault_rate_is_exact_over_consecutive_calls():
    faults.clear()
    faults.set_fault("ecs", None, 0.25)
    assert [faults._due("ecs", "DescribeServices") for _ in range(8)] == [False, False, False, True] * 2
    assert not faults._due("elasticloadbalancing", "DescribeRules")
    faults.clear()


def test_percentiles_are_nearest_rank_as_cloudwatch_reads_them():
    from localaws.cloudwatch import percentiles as cw_percentiles

    values = [0.1] * 98 + [0.5, 0.9]
    assert cw_percentiles.percentile(values, 50) == 0.1
    assert cw_percentiles.percentile(values, 99) == 0.5
    assert cw_percentiles.percentile(values, 99.9) == 0.9
    assert cw_percentiles.percentile([], 99) is None


def test_cloudwatch_start_times_round_down_to_the_metric_period_like_cloudwatchs_minute():
    from datetime import datetime, timezone

    from localaws.cloudwatch import rounding as cw_rounding

    assert cw_rounding.round_down(datetime(2026, 11, 29, 12, 32, 34), 60) == datetime(2026, 11, 29, 12, 32, 0)
    assert cw_rounding.round_down(datetime(2026, 11, 29, 12, 32, 34), 6) == datetime(2026, 11, 29, 12, 32, 30)
    aware = datetime(2026, 11, 29, 12, 32, 34, 500000, tzinfo=timezone.utc)
    assert cw_rounding.round_down(aware, 1) == datetime(2026, 11, 29, 12, 32, 34, tzinfo=timezone.utc)


def test_a_stop_that_comes_while_another_stops_the_load_balancer_finds_nothing_to_stop(tmp_path):
    """A reset's clean-up and the clock both stopping HAProxy: the second stop lands between the first
    one's terminate and its wait (made certain here by stopping again from inside terminate), and the
    first must not find its process gone under it (it raised AttributeError, and the reset answered 500)."""
    import subprocess

    from localaws.elb.load_balancer import LoadBalancer

    lb = LoadBalancer(str(tmp_path), lambda line: None)

    class Raced(subprocess.Popen):
        def terminate(self):
            super().terminate()
            lb.stop()

    lb.proc = Raced(["sleep", "30"])
    lb.stop()
    assert lb.proc is None


def test_a_stack_finds_and_removes_only_its_own_containers(monkeypatch):
    """Two stacks on one engine (the tests' and the bench's aws-profile one): a reset of one must not
    remove the other's task containers."""
    from localaws.containers import Docker

    calls = []

    class Out:
        stdout = ""

    def fake_run(self, *args, **kwargs):
        calls.append((self.instance, args))
        return Out()

    monkeypatch.setattr(Docker, "_run", fake_run)
    Docker("/tmp/a-config", instance="/tmp/stack-a").remove_all()
    [(instance, args)] = calls
    assert instance == "/tmp/stack-a"
    assert args == ("ps", "-aq", "--filter", "label=ecs-deploy-action.stack=1", "--filter", "label=ecs-deploy-action.stack-instance=/tmp/stack-a")


def test_calls_are_counted_per_operation_of_each_service_until_cleared():
    import io

    calls.clear()
    signed = "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x"
    json_call = {"HTTP_AUTHORIZATION": signed.format("ecs"), "HTTP_X_AMZ_TARGET": "AmazonEC2ContainerServiceV20141113.DescribeServices"}
    body = b"Action=DescribeRules&Version=2015-12-01"
    query_call = {"HTTP_AUTHORIZATION": signed.format("elasticloadbalancing"), "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    for environ in (json_call, dict(json_call), query_call, {"PATH_INFO": "/moto-api/data.json"}):
        calls.count(environ)
    assert calls.counts() == {"ecs:DescribeServices": 2, "elasticloadbalancing:DescribeRules": 1}
    assert query_call["wsgi.input"].read() == body, "the body is left for moto"
    calls.clear()
    assert calls.counts() == {}



def test_an_unavailable_fault_answers_503_in_the_services_protocol():
    faults.clear()
    faults.set_fault("ecs", "DescribeServices", 0, count=1, after="UpdateService", kind="unavailable")
    signed = "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=x"

    def call(operation):
        return faults.throttled({"HTTP_AUTHORIZATION": signed, "HTTP_X_AMZ_TARGET": f"AmazonEC2ContainerServiceV20141113.{operation}"})

    assert call("DescribeServices") is None, "armed: not before the trigger"
    assert call("UpdateService") is None
    status, _, body = call("DescribeServices")
    assert status.startswith("503") and b"ServiceUnavailableException" in body
    assert call("DescribeServices") is None, "exactly the one call"
    faults.clear()
