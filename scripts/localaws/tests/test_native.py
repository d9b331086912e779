"""The stack's ECS native strategies: BLUE_GREEN, LINEAR and CANARY with real traffic shifts, PAUSE
hooks, rollbacks and the ServiceDeployments API, as the API reference shapes them."""

import time

import botocore.exceptions
import pytest

from conftest import get, traffic, wait_for

PAUSE = {"targetType": "PAUSE", "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "ROLLBACK"}}


def version(url):
    status, body = get(url + "/version")
    assert status == 200, (status, body)
    return body


def deploy(stack, stages, timeout_minutes=30, **env):
    """Starts a deployment of APP_VERSION=v2 with PAUSE hooks at `stages`; returns its ARN."""
    service = stack.service("demo", "web")
    config = dict(service["deploymentConfiguration"])
    config["lifecycleHooks"] = [PAUSE | {"lifecycleStages": stages, "timeoutConfiguration": {"timeoutInMinutes": timeout_minutes, "action": "ROLLBACK"}}] if stages else []
    revision = stack.register(env={"APP_VERSION": "v2", **env})
    stack.ecs.update_service(cluster="demo", service="web", taskDefinition=revision, deploymentConfiguration=config)
    found = stack.ecs.list_service_deployments(cluster="demo", service="web")["serviceDeployments"]
    assert found and found[0]["status"] == "IN_PROGRESS", found
    return found[0]["serviceDeploymentArn"]


def describe(stack, arn):
    return stack.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]


def paused(stack, arn, stage, timeout=30):
    def hook():
        d = describe(stack, arn)
        waiting = [h for h in d["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION"]
        return (d, waiting[0]) if waiting and d["lifecycleStage"] == stage else None

    return wait_for(hook, timeout, f"a pause at {stage}")


def ended(stack, arn, timeout=40):
    return wait_for(lambda: (d := describe(stack, arn))["status"] not in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS") and d, timeout, "the deployment to end")


def test_blue_green_pauses_after_the_test_shift_with_green_on_the_test_route_only(stack):
    seeded = stack.seed("--native", "blue-green", "--desired", "2", "--bake", "1")
    prod, test = (stack.listener_url(seeded[k]) for k in ("production_listener_arn", "test_listener_arn"))
    arn = deploy(stack, ["POST_TEST_TRAFFIC_SHIFT"])
    d, hook = paused(stack, arn, "POST_TEST_TRAFFIC_SHIFT")
    assert hook["targetType"] == "PAUSE" and hook["timeoutAction"] == "ROLLBACK" and hook["hookId"].startswith("ecs-pause-")
    assert d["targetServiceRevision"]["requestedTestTrafficWeight"] == 100.0
    assert d["targetServiceRevision"]["requestedProductionTrafficWeight"] == 0.0
    # Paused: the test route reaches green, production stays on blue.
    assert all('"v2"' in version(test) for _ in range(5))
    assert all('"v2"' not in version(prod) for _ in range(5))
    time.sleep(1.5)
    assert describe(stack, arn)["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT", "a pause holds until answered"
    stack.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    d = ended(stack, arn)
    assert d["status"] == "SUCCESSFUL", d
    assert [h["status"] for h in d["lifecycleHookDetails"]] == ["SUCCEEDED"]
    assert all('"v2"' in version(prod) for _ in range(5))
    service = stack.service("demo", "web")
    assert service["taskDefinition"].endswith("web:2") and [x["rolloutState"] for x in service["deployments"]] == ["COMPLETED"]
    green = stack.elb.describe_target_health(TargetGroupArn=seeded["green_target_group_arn"])["TargetHealthDescriptions"]
    assert len([t for t in green if t["TargetHealth"]["State"] == "healthy"]) == 2


def test_linear_shifts_in_steps_and_a_rollback_at_a_pause_puts_production_back_on_blue(stack):
    seeded = stack.seed("--native", "linear", "--desired", "2", "--step-percent", "50", "--step-bake", "1")
    prod = stack.listener_url(seeded["production_listener_arn"])
    arn = deploy(stack, ["PRE_PRODUCTION_TRAFFIC_SHIFT"])
    _, first = paused(stack, arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert describe(stack, arn)["targetServiceRevision"]["requestedProductionTrafficWeight"] == 0.0
    stack.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=first["hookId"])
    d, second = wait_for(lambda: (p := paused(stack, arn, "PRE_PRODUCTION_TRAFFIC_SHIFT")) and p[1]["hookId"] != first["hookId"] and p, 30, "the second step's pause")
    assert d["targetServiceRevision"]["requestedProductionTrafficWeight"] == 50.0
    answers = [body for _, body in traffic(prod + "/version", 60)]
    on_green = sum('"v2"' in b for b in answers)
    assert 10 < on_green < 50, f"{on_green} of 60 requests reached green at 50%"
    stack.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=second["hookId"], action="ROLLBACK")
    # Traffic first: production is back on blue within the load balancer's next update.
    wait_for(lambda: all('"v2"' not in version(prod) for _ in range(10)), 3, "production back on blue")
    d = ended(stack, arn)
    assert d["status"] == "ROLLBACK_SUCCESSFUL", d
    assert "ROLLBACK" in d["rollback"]["reason"] and d["rollback"]["serviceRevisionArn"] == d["sourceServiceRevisions"][0]["arn"]
    assert [h["status"] for h in d["lifecycleHookDetails"]] == ["SUCCEEDED", "FAILED"]
    service = stack.service("demo", "web")
    assert service["taskDefinition"].endswith("web:1"), service["taskDefinition"]


def test_a_pause_nobody_answers_times_out_and_rolls_back(stack):
    stack.seed("--native", "canary", "--desired", "1")
    arn = deploy(stack, ["POST_SCALE_UP"], timeout_minutes=1)  # a minute is a second in the fast profile
    paused(stack, arn, "POST_SCALE_UP")
    d = ended(stack, arn)
    assert d["status"] == "ROLLBACK_SUCCESSFUL", d
    assert d["lifecycleHookDetails"][0]["status"] == "TIMED_OUT"
    assert "timed out" in d["rollback"]["reason"]


def test_an_alarm_rolls_the_deployment_back_with_its_name(stack):
    seeded = stack.seed("--native", "canary", "--desired", "1", "--canary-percent", "50", "--canary-bake", "30", "--alarms", "web-5xx", "--native-alarms")
    arn = deploy(stack, [])
    wait_for(lambda: describe(stack, arn)["targetServiceRevision"]["requestedProductionTrafficWeight"] == 50.0, 30, "the canary shift")
    stack.cw.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="test")
    d = ended(stack, arn)
    assert d["status"] == "ROLLBACK_SUCCESSFUL", d
    assert d["alarms"]["triggeredAlarmNames"] == ["web-5xx"] and "web-5xx" in d["rollback"]["reason"]
    assert all('"v2"' not in version(stack.listener_url(seeded["production_listener_arn"])) for _ in range(5))


def test_stop_with_rollback_and_the_errors_the_reference_names(stack):
    stack.seed("--native", "blue-green", "--desired", "1")
    arn = deploy(stack, ["POST_TEST_TRAFFIC_SHIFT"])
    _, hook = paused(stack, arn, "POST_TEST_TRAFFIC_SHIFT")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId="ecs-pause-nope")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.ecs.stop_service_deployment(serviceDeploymentArn=arn.rsplit("/", 1)[0] + "/nope")
    assert e.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"
    stack.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"])
    assert e.value.response["Error"]["Code"] == "ConflictException"
    assert ended(stack, arn)["status"] == "ROLLBACK_SUCCESSFUL"


def test_a_native_strategy_without_advanced_configuration_is_refused_and_nothing_changes(stack):
    stack.seed("--desired", "1")
    before = stack.service("demo", "web")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.ecs.update_service(
            cluster="demo", service="web", taskDefinition=stack.register(), deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}
        )
    assert e.value.response["Error"]["Code"] == "InvalidParameterException" and "advancedConfiguration" in str(e.value)
    after = stack.service("demo", "web")
    assert after["taskDefinition"] == before["taskDefinition"] and after["deploymentConfiguration"] == before["deploymentConfiguration"]
