"""The stack's load balancer: HAProxy splitting by the listener's weights, health checks, draining,
and only loopback anywhere."""

import json
import time
from collections import Counter

from conftest import get, ours, traffic, wait_for


def _canary_on(stack, seeded, env, count=2):
    revision = stack.register(env=env)
    stack.ecs.update_service(cluster="demo", service="web-canary", taskDefinition=revision, desiredCount=count)
    stack.wait_service("demo", "web-canary")
    return revision


def _weights(stack, seeded, stable, canary):
    stack.elb.modify_listener(
        ListenerArn=seeded["listener_arn"],
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": seeded["stable_target_group_arn"], "Weight": stable},
                        {"TargetGroupArn": seeded["canary_target_group_arn"], "Weight": canary},
                    ]
                },
            }
        ],
    )


def test_requests_split_by_the_forward_weights(stack):
    seeded = stack.seed("--canary", "--desired", "2")
    _canary_on(stack, seeded, {"APP_VERSION": "v2"})
    url = stack.listener_url(seeded["listener_arn"]) + "/version"
    assert {json.loads(b)["version"] for _, b in traffic(url, 50)} == {"0.1.0"}, "100/0 sends nothing to the canary"
    _weights(stack, seeded, 90, 10)
    time.sleep(1)  # the fast profile applies weights within 1 s
    answers = traffic(url, 2000)
    assert all(status == 200 for status, _ in answers), Counter(s for s, _ in answers)
    share = Counter(json.loads(b)["version"] for _, b in answers)["v2"] / 20
    assert 7 <= share <= 13, f"canary share {share}% at weight 10"


def test_unhealthy_targets_fail_after_the_threshold_and_ecs_replaces_them(stack):
    seeded = stack.seed("--canary", "--desired", "1", "--circuit-breaker", "off")
    revision = stack.register(env={"HEALTHY": "false"})
    stack.ecs.update_service(cluster="demo", service="web-canary", taskDefinition=revision, desiredCount=1)

    def unhealthy():
        ds = stack.elb.describe_target_health(TargetGroupArn=seeded["canary_target_group_arn"])["TargetHealthDescriptions"]
        return [d for d in ds if d["TargetHealth"]["State"] == "unhealthy"]

    d = wait_for(unhealthy, 30, "the canary's target to turn unhealthy")[0]
    assert d["Target"]["Id"] == "127.0.0.1"
    assert d["TargetHealth"]["Reason"] == "Target.ResponseCodeMismatch"
    assert "[503]" in d["TargetHealth"]["Description"]

    def replaced():
        return [t for t in stack.tasks("demo", "web-canary", "STOPPED") if "failed ELB health checks" in t.get("stoppedReason", "")]

    wait_for(replaced, 30, "ECS to stop the task that fails its health checks")


def test_deregistered_targets_drain_for_the_delay(stack):
    seeded = stack.seed("--canary", "--desired", "2", "--deregistration-delay", "120")  # 2 s in the fast profile
    stack.ecs.update_service(cluster="demo", service="web", desiredCount=1)

    def draining():
        ds = stack.elb.describe_target_health(TargetGroupArn=seeded["stable_target_group_arn"])["TargetHealthDescriptions"]
        return [d for d in ds if d["TargetHealth"]["State"] == "draining"]

    wait_for(draining, 10, "a target to drain")
    started = time.monotonic()
    assert stack.service("demo", "web")["runningCount"] == 1
    wait_for(lambda: not draining(), 15, "the drain to end")
    assert time.monotonic() - started >= 1.5, "a target drains for the group's deregistration delay"
    # Then ECS stops the task: its container is gone.
    wait_for(lambda: len(ours()) == 1, 20, "the drained task's container to stop")


def test_only_loopback_carries_traffic(stack):
    seeded = stack.seed("--canary", "--desired", "2")
    for arn in (seeded["stable_target_group_arn"], seeded["canary_target_group_arn"]):
        for d in stack.elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
            assert d["Target"]["Id"] == "127.0.0.1"
    config = stack.get("/_stack/load-balancer")["config"]
    for line in config.splitlines():
        words = line.split()
        if words and words[0] in ("bind", "server", "server-template"):
            address = words[1] if words[0] != "server-template" else words[3]
            assert address.startswith("127.0.0.1:"), line
    for url in stack.get("/_stack/listeners").values():
        assert url.startswith("http://127.0.0.1:"), url
    import subprocess

    ports = subprocess.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Ports}}", *ours()], capture_output=True, text=True)
    for line in ports.stdout.splitlines():
        for bindings in json.loads(line).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings or []), line


def test_a_forward_to_an_empty_target_group_is_the_load_balancers_503(stack):
    seeded = stack.seed("--canary", "--desired", "1")
    _weights(stack, seeded, 0, 1)
    url = stack.listener_url(seeded["listener_arn"]) + "/version"
    status = wait_for(lambda: (get(url)[0] == 503) or None, 5, "the listener to forward to the empty canary group")
    assert status


def test_a_target_group_belongs_to_the_load_balancers_that_forward_to_it(stack):
    """LoadBalancerArns as ALB reports it: set when a modified listener starts forwarding to a target
    group (moto sets it only on create), cleared when nothing forwards to it, so it can be deleted."""
    seeded = stack.seed("--alb", "--desired", "1")
    vpc = stack.elb.describe_target_groups(TargetGroupArns=[seeded["target_group_arn"]])["TargetGroups"][0]["VpcId"]
    new = stack.elb.create_target_group(Name="web-new", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    lbs = lambda: stack.elb.describe_target_groups(TargetGroupArns=[new])["TargetGroups"][0]["LoadBalancerArns"]  # noqa: E731
    assert lbs() == []
    both = [{"TargetGroupArn": seeded["target_group_arn"], "Weight": 100}, {"TargetGroupArn": new, "Weight": 0}]
    stack.elb.modify_listener(ListenerArn=seeded["listener_arn"], DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": both}}])
    assert lbs() == [seeded["load_balancer_arn"]]
    stack.elb.modify_listener(ListenerArn=seeded["listener_arn"], DefaultActions=[{"Type": "forward", "TargetGroupArn": seeded["target_group_arn"]}])
    assert lbs() == []
    stack.elb.delete_target_group(TargetGroupArn=new)
