"""A faithful-enough ECS rollout for moto, which never rolls a deployment out on its own.

Test infrastructure only (loaded by scripts/moto_launcher.py, never shipped). It follows what the ECS
documentation describes for the rolling-update deployment type:

- CreateService, and every UpdateService that changes the task definition (or forces a new
  deployment), starts a new PRIMARY deployment (rolloutState IN_PROGRESS); earlier deployments become
  ACTIVE and drain. UpdateService that changes only desiredCount resizes the PRIMARY deployment.
- Tasks start and stop over a few DescribeServices calls (a "tick" per call, so tests never sleep);
  their IPs are registered in (and drained from) the service's target groups.
- When the PRIMARY deployment runs its desired count and the others are drained, it is COMPLETED and
  the service "has reached a steady state". Events are worded as ECS words them, newest first.
- Controls (POST /_stack/...) make the next rollout of a service fail as the deployment circuit
  breaker would (failed tasks, rolloutState FAILED, then ECS's own rollback to the last completed
  task definition), or stall (tasks never start), and mark a target group's targets unhealthy.
"""

import json
import math
import random
import uuid
from datetime import datetime, timezone

from moto.ecs import models as ecs_models
from moto.elbv2 import models as elbv2_models

MAX_EVENTS = 100


def _now():
    return datetime.now(timezone.utc)


def _deployment(service, task_definition, desired, reason):
    dep_id = f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"
    return {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": desired,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": _now(),
        "updatedAt": _now(),
        "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        # Not part of the API: the tasks this model runs for the deployment, and why it started.
        "_tasks": [],
        "_why": reason,
    }


def _public(dep):
    return {k: v for k, v in dep.items() if not k.startswith("_")}


class Rollouts:
    """Per-service rollout state, kept on moto's Service objects so /moto-api/reset clears it."""

    @staticmethod
    def state(service):
        if not hasattr(service, "_rollout"):
            service._rollout = {"deployments": [], "mode": None, "ip": 0}
        return service._rollout

    @staticmethod
    def event(service, message):
        service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _now(), "message": f"(service {service.name}) {message}"})
        del service.events[MAX_EVENTS:]

    @classmethod
    def start(cls, service, task_definition, desired, reason):
        st = cls.state(service)
        for dep in st["deployments"]:
            dep["status"] = "ACTIVE"
            dep["updatedAt"] = _now()
        dep = _deployment(service, task_definition, desired, reason)
        dep["_mode"], st["mode"] = st["mode"], None
        st["deployments"].insert(0, dep)
        cls.publish(service)
        return dep

    @classmethod
    def resize(cls, service, desired):
        st = cls.state(service)
        if st["deployments"]:
            primary = st["deployments"][0]
            primary["desiredCount"] = desired
            primary["updatedAt"] = _now()
            if primary["rolloutState"] == "COMPLETED" and primary["runningCount"] != desired:
                primary["_resizing"] = True
        cls.publish(service)

    @classmethod
    def publish(cls, service):
        """Mirror the model into the fields moto serialises."""
        deps = cls.state(service)["deployments"]
        service.deployments = [_public(d) for d in deps]
        service.running_count = sum(d["runningCount"] for d in deps)
        service.pending_count = sum(d["pendingCount"] for d in deps)
        if deps:
            service.task_definition = deps[0]["taskDefinition"]

    # -- one step of progress, taken whenever the service is described ---------------------------

    @classmethod
    def tick(cls, service):
        st = cls.state(service)
        deps = st["deployments"]
        if not deps:
            return
        primary = deps[0]
        mode = primary.get("_mode")
        if primary["rolloutState"] == "IN_PROGRESS" and mode == "fail":
            cls._fail_step(service, primary)
        elif primary["rolloutState"] == "IN_PROGRESS" and mode == "stall":
            if not primary.get("_stalled"):
                primary["_stalled"] = True
                cls.event(service, "is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.")
        else:
            cls._progress(service, deps)
        cls.publish(service)

    @classmethod
    def _progress(cls, service, deps):
        primary, others = deps[0], deps[1:]
        step = max(1, math.ceil(max(primary["desiredCount"], 1) / 2))
        changed = False
        missing = primary["desiredCount"] - primary["runningCount"]
        if missing > 0:
            started = [cls._task(service) for _ in range(min(step, missing))]
            primary["_tasks"].extend(started)
            cls._register(service, started)
            names = " ".join(f"(task {t['id']})" for t in started)
            cls.event(service, f"has started {len(started)} tasks: {names}.")
            changed = True
        elif missing < 0:
            stopped = primary["_tasks"][missing:]
            del primary["_tasks"][missing:]
            cls._deregister(service, stopped)
            names = " ".join(f"(task {t['id']})" for t in stopped)
            cls.event(service, f"has stopped {len(stopped)} running tasks: {names}.")
            changed = True
        elif others:
            # New tasks are running: drain the old deployments.
            for dep in others:
                stopped = dep["_tasks"][:step]
                del dep["_tasks"][:step]
                if stopped:
                    cls._deregister(service, stopped)
                    names = " ".join(f"(task {t['id']})" for t in stopped)
                    cls.event(service, f"has stopped {len(stopped)} running tasks: {names}.")
                dep["runningCount"] = len(dep["_tasks"])
                dep["pendingCount"] = 0
            deps[1:] = [d for d in others if d["_tasks"]]
            changed = True
        primary["runningCount"] = len(primary["_tasks"])
        primary["pendingCount"] = max(primary["desiredCount"] - primary["runningCount"], 0)
        if changed:
            primary["updatedAt"] = _now()
        steady = primary["runningCount"] == primary["desiredCount"] and len(deps) == 1
        if steady and primary["rolloutState"] == "IN_PROGRESS":
            primary["rolloutState"] = "COMPLETED"
            primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
            cls.event(service, f"(deployment {primary['id']}) deployment completed.")
            cls.event(service, "has reached a steady state.")
        elif steady and primary.pop("_resizing", False):
            cls.event(service, "has reached a steady state.")

    @classmethod
    def _fail_step(cls, service, primary):
        # The circuit breaker's threshold: half the desired count, at least 3, at most 200.
        threshold = min(max(3, math.ceil(primary["desiredCount"] / 2)), 200)
        task = cls._task(service)
        primary["failedTasks"] += 1
        primary["updatedAt"] = _now()
        cls.event(service, f"(task {task['id']}) failed to start: Essential container in task exited.")
        if primary["failedTasks"] < threshold:
            return
        primary["rolloutState"] = "FAILED"
        primary["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        cls.event(service, f"(deployment {primary['id']}) deployment failed: tasks failed to start.")
        # ECS's own rollback: a new deployment of the task definition that ran before.
        previous = next(iter(cls.state(service)["deployments"][1:]), None)
        if previous is not None:
            rollback = cls.start(service, previous["taskDefinition"], primary["desiredCount"], "rollback")
            rollback["rolloutStateReason"] = f"ECS deployment circuit breaker: rolling back to deployment {previous['id']}."
            cls.event(service, f"(deployment {rollback['id']}) rolling back to deployment {previous['id']}.")

    # -- tasks and target groups -----------------------------------------------------------------

    @classmethod
    def _task(cls, service):
        st = cls.state(service)
        st["ip"] += 1
        n = st["ip"]
        return {"id": uuid.uuid4().hex, "ip": f"10.{hash(service.name) % 200 + 20}.{n // 250}.{n % 250 + 2}"}

    @staticmethod
    def _target_groups(service):
        backend = elbv2_models.elbv2_backends[service._account_id][service.region_name]
        for lb in service.load_balancers or []:
            tg = backend.target_groups.get(lb.get("targetGroupArn"))
            if tg is not None:
                yield tg, lb.get("containerPort")

    @classmethod
    def _register(cls, service, tasks):
        for tg, port in cls._target_groups(service):
            tg.register([{"Id": t["ip"], "Port": port or tg.port} for t in tasks])

    @classmethod
    def _deregister(cls, service, tasks):
        for tg, _ in cls._target_groups(service):
            for t in tasks:
                tg.targets.pop(t["ip"], None)


# -- patches into moto's backends ------------------------------------------------------------------


def install():
    backend_cls = ecs_models.EC2ContainerServiceBackend
    orig_create, orig_update, orig_describe = backend_cls.create_service, backend_cls.update_service, backend_cls.describe_services

    def create_service(self, *args, **kwargs):
        service = orig_create(self, *args, **kwargs)
        if service.deployment_controller.get("type", "ECS") == "ECS":
            Rollouts.state(service)["deployments"] = []
            Rollouts.start(service, service.task_definition, service.desired_count, "create")
        return service

    def update_service(self, props):
        cluster = props.get("cluster", "default")
        name = props.get("service", "").split("/")[-1]
        service = self._get_service(cluster, name)
        before_td = service.task_definition
        new_td = props.get("task_definition")
        force = props.get("force_new_deployment", False)
        result = orig_update(self, dict(props))
        if service.deployment_controller.get("type", "ECS") != "ECS":
            return result
        if new_td:
            # moto keeps what was given (family, family:rev or ARN); ECS reports the ARN.
            result.task_definition = self.describe_task_definition(new_td).arn
        desired = result.desired_count
        if (new_td and result.task_definition != before_td) or force:
            Rollouts.start(service, result.task_definition, desired, "update")
        else:
            service.task_definition = before_td if not new_td else result.task_definition
            Rollouts.resize(service, desired)
        Rollouts.publish(service)
        return result

    def describe_services(self, cluster_str, names):
        services, failures = orig_describe(self, cluster_str, names)
        for service in services:
            if service.deployment_controller.get("type", "ECS") == "ECS":
                Rollouts.tick(service)
        return services, failures

    backend_cls.create_service = create_service
    backend_cls.update_service = update_service
    backend_cls.describe_services = describe_services

    tg_cls = elbv2_models.FakeTargetGroup
    orig_health = tg_cls.health_for

    def health_for(self, target, ec2_backend):
        status = orig_health(self, target, ec2_backend)
        if getattr(self, "_stack_unhealthy", False) and status.status == "healthy":
            status.status = "unhealthy"
            status.reason = "Target.ResponseCodeMismatch"
            status.description = "Health checks failed with these codes: [503]"
        return status

    tg_cls.health_for = health_for


def _find_service(cluster, name):
    for account in ecs_models.ecs_backends.values():
        for backend in account.values():
            pair = f"{cluster}:{name}"
            if pair in getattr(backend, "services", {}):
                return backend.services[pair]
    return None


def _find_target_group(arn):
    for account in elbv2_models.elbv2_backends.values():
        for backend in account.values():
            tg = backend.target_groups.get(arn)
            if tg is not None:
                return tg
    return None


def control(environ):
    """Handles POST /_stack/<control>; returns (status, body) or None for any other path."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/_stack/"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except (ValueError, KeyError):
        return 400, {"error": "expected a JSON body"}
    if path == "/_stack/ecs/next-rollout":
        mode = body.get("mode")
        if mode not in ("fail", "stall", None):
            return 400, {"error": "mode is fail, stall or null"}
        service = _find_service(body.get("cluster", "default"), body.get("service", ""))
        if service is None:
            return 404, {"error": "no such service"}
        Rollouts.state(service)["mode"] = mode
        return 200, {"service": service.name, "next_rollout": mode}
    if path == "/_stack/target-group/health":
        tg = _find_target_group(body.get("targetGroupArn", ""))
        if tg is None:
            return 404, {"error": "no such target group"}
        tg._stack_unhealthy = not body.get("healthy", True)
        return 200, {"targetGroupArn": tg.arn, "healthy": not tg._stack_unhealthy}
    return 404, {"error": f"unknown control {path}"}
