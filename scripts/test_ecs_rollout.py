"""Tests of the local stack's ECS rollout model (scripts/ecs_rollout.py) against what the ECS
documentation describes, through boto3 and a launcher served on a free loopback port."""

import json
import threading
import urllib.request

import boto3
import pytest
from werkzeug.serving import make_server

import moto_launcher


@pytest.fixture(scope="module")
def endpoint():
    server = make_server("127.0.0.1", 0, moto_launcher.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture()
def aws(endpoint):
    urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST"))
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    return {"ecs": boto3.client("ecs", **kw), "elb": boto3.client("elbv2", **kw), "ec2": boto3.client("ec2", **kw), "url": endpoint}


def control(aws, path, body):
    req = urllib.request.Request(aws["url"] + path, data=json.dumps(body).encode(), method="POST")
    return json.loads(urllib.request.urlopen(req).read())


def register(ecs, image):
    return ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": image, "memory": 256}])[
        "taskDefinition"
    ]["taskDefinitionArn"]


def describe(ecs):
    return ecs.describe_services(cluster="c", services=["web"])["services"][0]


def until(ecs, done, polls=20):
    for _ in range(polls):
        service = describe(ecs)
        if done(service):
            return service
    raise AssertionError(f"not reached in {polls} polls: {service['deployments']}")


def steady(service):
    deps = service["deployments"]
    return len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED" and service["runningCount"] == service["desiredCount"]


def make_service(aws, desired=2, target_group=None):
    ecs = aws["ecs"]
    ecs.create_cluster(clusterName="c")
    td = register(ecs, "app:1")
    kw = {}
    if target_group:
        kw["loadBalancers"] = [{"targetGroupArn": target_group, "containerName": "web", "containerPort": 8080}]
    ecs.create_service(cluster="c", serviceName="web", taskDefinition=td, desiredCount=desired, **kw)
    until(ecs, steady)
    return td


def target_group(aws):
    vpc = aws["ec2"].describe_vpcs()["Vpcs"][0]["VpcId"]
    tg = aws["elb"].create_target_group(Name="tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")
    return tg["TargetGroups"][0]["TargetGroupArn"]


def health(aws, tg):
    return sorted(t["TargetHealth"]["State"] for t in aws["elb"].describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])


def test_a_new_service_starts_its_tasks_then_is_steady(aws):
    ecs = aws["ecs"]
    ecs.create_cluster(clusterName="c")
    ecs.create_service(cluster="c", serviceName="web", taskDefinition=register(ecs, "app:1"), desiredCount=3)
    first = describe(ecs)
    assert first["deployments"][0]["status"] == "PRIMARY"
    assert first["runningCount"] < 3, "tasks start over several polls, not at once"
    service = until(ecs, steady)
    assert service["runningCount"] == 3
    assert service["events"][0]["message"] == "(service web) has reached a steady state."


def test_a_new_revision_gets_a_primary_deployment_and_the_old_one_drains(aws):
    ecs = aws["ecs"]
    old = make_service(aws)
    new = register(ecs, "app:2")
    updated = ecs.update_service(cluster="c", service="web", taskDefinition=new)["service"]
    assert updated["taskDefinition"] == new
    service = describe(ecs)
    primary, active = service["deployments"]
    assert (primary["status"], primary["taskDefinition"], primary["rolloutState"]) == ("PRIMARY", new, "IN_PROGRESS")
    assert (active["status"], active["taskDefinition"]) == ("ACTIVE", old)
    service = until(ecs, steady)
    dep = service["deployments"][0]
    assert dep["taskDefinition"] == new and dep["runningCount"] == 2
    assert dep["rolloutStateReason"] == f"ECS deployment {dep['id']} completed."
    messages = [e["message"] for e in service["events"]]
    assert messages[0] == "(service web) has reached a steady state."
    assert messages[1] == f"(service web) (deployment {dep['id']}) deployment completed."
    assert any(m.startswith("(service web) has stopped 1 running tasks: (task ") for m in messages)


def test_changing_only_the_desired_count_resizes_without_a_new_deployment(aws):
    ecs = aws["ecs"]
    make_service(aws, desired=0)
    ecs.update_service(cluster="c", service="web", desiredCount=4)
    service = describe(ecs)
    assert len(service["deployments"]) == 1
    assert service["runningCount"] < 4
    service = until(ecs, lambda s: s["runningCount"] == 4)
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    ecs.update_service(cluster="c", service="web", desiredCount=0)
    until(ecs, lambda s: s["runningCount"] == 0)


def test_a_failing_rollout_trips_the_circuit_breaker_and_ecs_rolls_back(aws):
    ecs = aws["ecs"]
    old = make_service(aws)
    assert control(aws, "/_stack/ecs/next-rollout", {"cluster": "c", "service": "web", "mode": "fail"})["next_rollout"] == "fail"
    bad = register(ecs, "app:broken")
    ecs.update_service(cluster="c", service="web", taskDefinition=bad)
    service = until(ecs, lambda s: any(d["rolloutState"] == "FAILED" for d in s["deployments"]))
    failed = next(d for d in service["deployments"] if d["rolloutState"] == "FAILED")
    assert failed["taskDefinition"] == bad and failed["failedTasks"] >= 3
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert service["deployments"][0]["taskDefinition"] == old, "ECS rolls back to the previous revision"
    service = until(ecs, steady)
    assert service["taskDefinition"] == old
    # Only the next rollout fails.
    ecs.update_service(cluster="c", service="web", taskDefinition=register(ecs, "app:3"))
    assert until(ecs, steady)["deployments"][0]["rolloutState"] == "COMPLETED"


def test_a_stalled_rollout_never_completes(aws):
    ecs = aws["ecs"]
    make_service(aws)
    control(aws, "/_stack/ecs/next-rollout", {"cluster": "c", "service": "web", "mode": "stall"})
    ecs.update_service(cluster="c", service="web", taskDefinition=register(ecs, "app:2"))
    for _ in range(10):
        service = describe(ecs)
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert service["deployments"][0]["runningCount"] == 0
    assert any("is unable to consistently start tasks successfully" in e["message"] for e in service["events"])


def test_running_tasks_are_registered_in_the_target_group_and_can_be_marked_unhealthy(aws):
    tg = target_group(aws)
    make_service(aws, desired=2, target_group=tg)
    assert health(aws, tg) == ["healthy", "healthy"]
    aws["ecs"].update_service(cluster="c", service="web", taskDefinition=register(aws["ecs"], "app:2"))
    until(aws["ecs"], steady)
    assert health(aws, tg) == ["healthy", "healthy"], "old tasks are drained from the target group"
    control(aws, "/_stack/target-group/health", {"targetGroupArn": tg, "healthy": False})
    assert health(aws, tg) == ["unhealthy", "unhealthy"]
    control(aws, "/_stack/target-group/health", {"targetGroupArn": tg, "healthy": True})
    assert health(aws, tg) == ["healthy", "healthy"]
