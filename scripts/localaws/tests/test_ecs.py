"""The stack's ECS: rollouts on a clock, tasks as real containers, ECS's own failure handling."""

import time

from conftest import container_images, ours, wait_for


def test_reads_change_nothing_when_nothing_is_in_flight(stack):
    seeded = stack.seed("--canary", "--desired", "2")
    time.sleep(0.5)
    before = stack.snapshot()
    for _ in range(5):
        stack.ecs.describe_services(cluster="demo", services=["web", "web-canary"])
        stack.elb.describe_target_health(TargetGroupArn=seeded["stable_target_group_arn"])
        stack.tasks("demo", "web")
    assert stack.snapshot() == before


def test_a_rollout_completes_with_nobody_polling(stack):
    stack.seed("--desired", "2")
    revision = stack.register(env={"APP_VERSION": "v2"})
    stack.ecs.update_service(cluster="demo", service="web", taskDefinition=revision)
    time.sleep(8)  # nobody reads: the clock alone moves the rollout
    service = stack.service("demo", "web")
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"], service["deployments"]
    assert service["events"][0]["message"] == "(service web) has reached a steady state."
    assert service["runningCount"] == 2


def test_running_containers_are_exactly_the_running_tasks(stack):
    stack.seed("--desired", "2")
    revision = stack.register(env={"APP_VERSION": "v2"})
    stack.ecs.update_service(cluster="demo", service="web", taskDefinition=revision)
    stack.wait_service("demo", "web")
    tasks = stack.tasks("demo", "web")
    assert len(tasks) == 2 and {t["taskDefinitionArn"] for t in tasks} == {revision}
    images = container_images()
    # The old revision's containers are gone; what runs is the new revision's image.
    assert set(images) == {t["taskArn"] for t in tasks}
    assert set(images.values()) == {stack.image}
    stack.post("/moto-api/reset")
    assert wait_for(lambda: not ours() or None, 20, "reset to remove every container") is None or not ours()


def test_rolling_update_honours_maximum_and_minimum_healthy_percent(stack):
    stack.seed("--desired", "4")
    stack.ecs.update_service(
        cluster="demo", service="web", deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 50}
    )
    revision = stack.register(env={"APP_VERSION": "v2"})
    stack.ecs.update_service(cluster="demo", service="web", taskDefinition=revision)
    most, fewest_running = 0, 4
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        service = stack.service("demo", "web")
        live = sum(d["runningCount"] + d["pendingCount"] for d in service["deployments"])
        most = max(most, live)
        fewest_running = min(fewest_running, service["runningCount"])
        if [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the rollout did not complete within 60 s")
    assert most <= 4, "maximumPercent 100 allows no fifth task"
    assert fewest_running >= 2, "minimumHealthyPercent 50 keeps two of four running"


def test_a_crashing_container_stops_its_task_with_its_exit_code_and_logs(stack):
    stack.seed("--desired", "1", "--circuit-breaker", "off")
    revision = stack.register(env={"CRASH_ON_START": "3"})
    stack.ecs.update_service(cluster="demo", service="web", taskDefinition=revision)

    def stopped():
        return [t for t in stack.tasks("demo", "web", "STOPPED") if t["taskDefinitionArn"] == revision]

    task = wait_for(stopped, 30, "the crashing task to stop")[0]
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["containers"][0]["exitCode"] == 3
    task_id = task["taskArn"].rsplit("/", 1)[-1]

    def logged():
        streams = stack.logs.describe_log_streams(logGroupName="/ecs/web")["logStreams"]
        name = next((s["logStreamName"] for s in streams if s["logStreamName"].endswith(task_id)), None)
        if name is None:
            return None
        return [e["message"] for e in stack.logs.get_log_events(logGroupName="/ecs/web", logStreamName=name)["events"]]

    lines = wait_for(logged, 10, "the task's output in CloudWatch Logs")
    assert any("connecting to the database" in line for line in lines), lines


def test_an_unpullable_image_trips_the_circuit_breaker_and_ecs_rolls_back(stack):
    seeded = stack.seed("--desired", "1")
    revision = stack.register(image=stack.image.rsplit("/", 1)[0] + "/no-such-repository:1")
    stack.ecs.update_service(cluster="demo", service="web", taskDefinition=revision)

    def rolled_back():
        s = stack.service("demo", "web")
        states = [(d["taskDefinition"], d["rolloutState"]) for d in s["deployments"]]
        return s if states == [(seeded["task_definition_arn"], "COMPLETED")] else None

    service = wait_for(rolled_back, 60, "ECS's rollback to the previous revision")
    messages = [e["message"] for e in service["events"]]
    assert any("deployment failed: tasks failed to start" in m for m in messages), messages
    assert any("rolling back to deployment" in m for m in messages), messages
    failed = [t for t in stack.tasks("demo", "web", "STOPPED") if t["taskDefinitionArn"] == revision]
    assert len(failed) >= 3
    assert failed[0]["stopCode"] == "TaskFailedToStart"
    assert failed[0]["stoppedReason"].startswith("CannotPullContainerError"), failed[0]["stoppedReason"]


def test_run_task_runs_the_revision_once_with_the_command_override(stack):
    stack.seed("--desired", "1")
    revision = stack.register()
    task = stack.ecs.run_task(
        cluster="demo",
        taskDefinition=revision,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
        overrides={"containerOverrides": [{"name": "web", "environment": [{"name": "CRASH_ON_START", "value": "7"}]}]},
    )["tasks"][0]
    assert task["lastStatus"] == "PROVISIONING"

    def done():
        t = stack.ecs.describe_tasks(cluster="demo", tasks=[task["taskArn"]])["tasks"][0]
        return t if t["lastStatus"] == "STOPPED" else None

    stopped = wait_for(done, 30, "the one-off task to stop")
    assert stopped["containers"][0]["exitCode"] == 7


def test_a_definition_for_external_instances_keeps_the_network_mode_it_was_registered_with(stack):
    """moto 5.2 would answer `awsvpc` here (it takes any compatibility but EC2 for Fargate)."""
    container = {"name": "web", "image": "127.0.0.1:5000/demo-app:x", "memory": 128, "essential": True}
    registered = stack.ecs.register_task_definition(
        family="on-prem", requiresCompatibilities=["EXTERNAL"], networkMode="bridge", containerDefinitions=[container]
    )["taskDefinition"]
    described = stack.ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
    for td in (registered, described):
        assert td["networkMode"] == "bridge"
        assert td["requiresCompatibilities"] == ["EXTERNAL"]
        assert "EXTERNAL" in td["compatibilities"] and "FARGATE" not in td["compatibilities"]
    fargate = stack.ecs.register_task_definition(
        family="cloud", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[container],
    )["taskDefinition"]
    assert fargate["networkMode"] == "awsvpc"
