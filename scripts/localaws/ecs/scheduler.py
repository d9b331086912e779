"""ECS's service scheduler for the local stack (test infrastructure), run on a clock: rolling
deployments that honour minimumHealthyPercent/maximumPercent, the deployment circuit breaker and
rolloutState, tasks registered in and drained from their target groups, and events worded as ECS
words them (newest first). Driven by `tick()`; nothing here runs on a read.
"""

import math
import random
import time
import uuid

from localaws.ecs import native
from localaws.ecs.tasks import STOPPED_KEPT, Task, now_utc
from localaws.elb import targets as alb_targets

MAX_EVENTS = 100


def new_deployment(service, task_definition, desired, reason):
    dep_id = f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"
    return {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now_utc(),
        "updatedAt": now_utc(),
        "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        "_why": reason,
    }


def public(dep):
    return {k: v for k, v in dep.items() if not k.startswith("_")}


def state(service):
    if not hasattr(service, "_rollout"):
        service._rollout = {"deployments": [], "last_completed": None}
    return service._rollout


def event(service, message):
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": now_utc(), "message": f"(service {service.name}) {message}"})
    del service.events[MAX_EVENTS:]


def start_deployment(service, task_definition, desired, reason):
    st = state(service)
    for dep in st["deployments"]:
        dep["status"] = "ACTIVE"
        dep["updatedAt"] = now_utc()
    dep = new_deployment(service, task_definition, desired, reason)
    st["deployments"].insert(0, dep)
    publish(service, [])
    return dep


def resize(service, desired):
    deps = state(service)["deployments"]
    if deps:
        deps[0]["desiredCount"] = desired
        deps[0]["updatedAt"] = now_utc()
        if deps[0]["rolloutState"] == "COMPLETED":
            deps[0]["_resizing"] = True


def publish(service, tasks):
    """Mirrors the model into the fields moto serialises."""
    deps = state(service)["deployments"]
    for dep in deps:
        mine = [t for t in tasks if t.deployment == dep["id"]]
        dep["runningCount"] = sum(1 for t in mine if t.last_status == "RUNNING")
        dep["pendingCount"] = sum(1 for t in mine if t.last_status in ("PROVISIONING", "PENDING"))
    service.deployments = [public(d) for d in deps]
    service.running_count = sum(d["runningCount"] for d in deps)
    service.pending_count = sum(d["pendingCount"] for d in deps)
    if deps:
        service.task_definition = deps[0]["taskDefinition"]


def breaker_threshold(desired):
    """ECS's circuit breaker threshold: half the desired count, at least 3, at most 200."""
    return min(max(3, math.ceil(desired / 2)), 200)


def _target_groups(task):
    """Where a service task registers: each load balancer entry's target group, or for ECS's own
    strategies the blue or green group its deployment was given."""
    for lb in task.service.load_balancers or []:
        tg = alb_targets.find_target_group(native.registered_group(task, lb) or "")
        if tg is not None:
            yield tg, lb.get("containerName"), lb.get("containerPort")


class Scheduler:
    def __init__(self, runner, profile):
        self.runner = runner
        self.profile = profile

    # -- tasks -------------------------------------------------------------------------------

    def healthy(self, task, now) -> bool:
        """RUNNING for a moment (a container that dies at start never counts) and passing every
        health check of its target groups."""
        if task.last_status != "RUNNING" or now - task.phase_since < self.profile.scaled(30):
            return False
        return task.healthy_in(self.health)

    def health(self, tg_arn, target):
        tg = alb_targets.find_target_group(tg_arn)
        if tg is None:
            return "unused"
        return alb_targets.health_of(tg, target).status

    def tick_task(self, backend, task: Task, now):
        """Moves one task along its lifecycle by time and by what its containers did."""
        p = self.profile
        if task.last_status == "PROVISIONING" and now - task.phase_since >= p.scaled(p.provisioning):
            task.last_status = "PENDING"
            task.phase_since = now
            self.runner.start(task)
        elif task.last_status == "PENDING" and task.start_job is not None and task.start_job.done():
            if now - task.phase_since < p.scaled(p.pending):
                return
            result = task.start_job.result()
            if result[0] == "error":
                task.counts_as_failure = task.desired_status == "RUNNING"
                for c in task.containers:
                    c["reason"] = result[1]
                task.mark_stopped("TaskFailedToStart", result[1])
                self._stopped(backend, task)
                return
            _, task.cids, task.host_ports = result
            if task.desired_status == "STOPPED":
                self.runner.stop(task)
                task.last_status = "STOPPING"
                return
            task.mark_running()
            self._register(task)
        elif task.last_status == "RUNNING":
            with task.lock:
                died = dict(task.died)
            essential = {c["name"] for c in task.td.container_definitions if c.get("essential", True)}
            dead = {n: v for n, v in died.items() if n in essential}
            if dead and task.desired_status == "RUNNING":
                for c in task.containers:
                    if c["name"] in died:
                        code, oom = died[c["name"]]
                        c["exitCode"] = code
                        if oom:
                            c["reason"] = "OutOfMemoryError: Container killed due to memory usage"
                task.request_stop("EssentialContainerExited", "Essential container in task exited", failure=True)
                task.mark_stopped("EssentialContainerExited", "Essential container in task exited", {n: v[0] for n, v in died.items()})
                self._deregister(task, drain=False)
                self.runner.remove(task)
                self._stopped(backend, task)
            elif task.desired_status == "STOPPED":
                task.last_status = "DEACTIVATING"
                task.phase_since = now
                self._deregister(task, drain=True)
        elif task.last_status == "DEACTIVATING":
            draining = any(
                alb_targets.is_draining(tg, t) for tg_arn, t in task.targets if (tg := alb_targets.find_target_group(tg_arn))
            )
            if not draining:
                task.last_status = "STOPPING"
                task.phase_since = now
                self.runner.stop(task)
        elif task.last_status == "STOPPING" and task.stop_job is not None and task.stop_job.done():
            task.mark_stopped(task.stop_code or "ServiceSchedulerInitiated", task.stopped_reason or "Task stopped", task.stop_job.result())
            self._stopped(backend, task)

    def _register(self, task):
        if task.service is None:
            return
        for tg, container, port in _target_groups(task):
            hport = task.host_ports.get((container, port))
            if hport is None:
                continue
            target = {"Id": "127.0.0.1", "Port": hport}
            tg.register([target])
            task.targets.append((tg.arn, target))
            event(task.service, f"registered 1 targets in (target-group {tg.arn})")

    def _deregister(self, task, drain):
        for tg_arn, target in task.targets:
            tg = alb_targets.find_target_group(tg_arn)
            if tg is None or alb_targets.key(target) not in tg.targets:
                continue
            tg.deregister([target])
            if not drain:
                tg._draining.pop(alb_targets.key(target), None)
            if task.service is not None:
                if drain:
                    event(task.service, "has begun draining connections on 1 tasks.")
                event(task.service, f"deregistered 1 targets in (target-group {tg_arn})")

    def _stopped(self, backend, task):
        if task.service is None:
            return
        dep = next((d for d in state(task.service)["deployments"] if d["id"] == task.deployment), None)
        if dep is not None and task.counts_as_failure and dep["rolloutState"] == "IN_PROGRESS":
            dep["failedTasks"] += 1
            dep["updatedAt"] = now_utc()
            reason = task.stopped_reason or "stopped"
            event(task.service, f"(task {task.id}) failed to start: {reason}." if task.stop_code == "TaskFailedToStart" else f"(task {task.id}) stopped: {reason}.")
            self._breaker(task.service, dep)

    def _breaker(self, service, dep):
        threshold = breaker_threshold(dep["desiredCount"])
        if dep["failedTasks"] < threshold:
            return
        cfg = (getattr(service, "deployment_configuration", None) or {}).get("deploymentCircuitBreaker") or {}
        rec = native.current(service)
        if rec is not None:
            dep["rolloutState"] = "FAILED"
            if rec["status"] == "IN_PROGRESS" and rec["lifecycleStage"] != "CLEAN_UP":
                native.rollback(rec, "ECS deployment circuit breaker: tasks failed to start.")
            return
        if not cfg.get("enable"):
            if not dep.get("_unable"):
                dep["_unable"] = True
                event(service, "is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.")
            return
        dep["rolloutState"] = "FAILED"
        dep["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        event(service, f"(deployment {dep['id']}) deployment failed: tasks failed to start.")
        last = state(service)["last_completed"]
        if cfg.get("rollback") and last is not None and last != dep["taskDefinition"]:
            rollback = start_deployment(service, last, dep["desiredCount"], "rollback")
            previous = next((d for d in state(service)["deployments"][1:] if d["taskDefinition"] == last), None)
            prev_id = previous["id"] if previous else "unknown"
            rollback["rolloutStateReason"] = f"ECS deployment circuit breaker: rolling back to deployment {prev_id}."
            event(service, f"(deployment {rollback['id']}) rolling back to deployment {prev_id}.")

    # -- services ----------------------------------------------------------------------------

    def tick_service(self, backend, service, tasks, now):
        st = state(service)
        deps = st["deployments"]
        if not deps:
            return
        primary = deps[0]
        mine = [t for t in tasks if t.service is service]
        live = [t for t in mine if t.last_status != "STOPPED"]
        active = [t for t in live if t.desired_status == "RUNNING"]
        primary_active = [t for t in active if t.deployment == primary["id"]]
        old_active = [t for t in active if t.deployment != primary["id"]]
        cfg = getattr(service, "deployment_configuration", None) or {}
        desired = int(primary["desiredCount"])
        max_total = math.floor(desired * int(cfg.get("maximumPercent", 200)) / 100) if old_active else desired
        # ECS's own strategies start all of green next to blue, and blue stays until CLEAN_UP.
        hold = native.holds_old(service)
        if hold:
            max_total = desired + len(old_active)
        min_healthy = math.ceil(desired * int(cfg.get("minimumHealthyPercent", 100)) / 100)

        # Tasks failing the load balancer's health checks are replaced, as ECS does.
        for t in active:
            for tg_arn, target in t.targets:
                if t.last_status == "RUNNING" and self.health(tg_arn, target) == "unhealthy":
                    if t.request_stop("ServiceSchedulerInitiated", f"Task failed ELB health checks in (target-group {tg_arn})", failure=True):
                        event(service, f"(task {t.id}) failed ELB health checks in (target-group {tg_arn})")
        active = [t for t in active if t.desired_status == "RUNNING"]
        primary_active = [t for t in active if t.deployment == primary["id"]]
        old_active = [t for t in active if t.deployment != primary["id"]]

        stopped, started = [], []
        # Scale in: the newest extras go first, those not running before those that are.
        extra = len(primary_active) - desired
        for t in sorted(primary_active, key=lambda t: (t.last_status == "RUNNING", -t.created))[: max(extra, 0)]:
            t.request_stop("ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {primary['id']})")
            stopped.append(t)
        # Start what the primary deployment lacks, within maximumPercent.
        if primary["rolloutState"] != "FAILED":
            counted = sum(1 for t in live if t.desired_status == "RUNNING" or t.last_status == "RUNNING")
            room = min(desired - len(primary_active), max_total - counted)
            td = backend.describe_task_definition(primary["taskDefinition"])
            for _ in range(max(room, 0)):
                t = Task(backend, backend._get_cluster(service.cluster_name), td, f"service:{service.name}", "ecs-svc", service=service, deployment=primary["id"], launch_type=service.launch_type or "FARGATE")
                backend._stack_tasks[t.arn] = t
                tasks.append(t)
                started.append(t)
        # Stop old tasks while enough healthy ones remain (unhealthy ones first, always).
        healthy = sum(1 for t in active if self.healthy(t, now))
        for t in [] if hold else sorted(old_active, key=lambda t: self.healthy(t, now)):
            if self.healthy(t, now):
                if healthy - 1 < min_healthy:
                    break
                healthy -= 1
            t.request_stop("ServiceSchedulerInitiated", f"Task stopped by the service scheduler for deployment {primary['id']}")
            stopped.append(t)
        if started:
            event(service, f"has started {len(started)} tasks: {' '.join(f'(task {t.id})' for t in started)}.")
        if stopped:
            event(service, f"has stopped {len(stopped)} running tasks: {' '.join(f'(task {t.id})' for t in stopped)}.")
        if started or stopped:
            primary["updatedAt"] = now_utc()

        # Old deployments whose tasks are all gone leave the list.
        deps[1:] = [d for d in deps[1:] if any(t.deployment == d["id"] and t.last_status != "STOPPED" for t in mine)]
        publish(service, mine)
        primary_healthy = [t for t in mine if t.deployment == primary["id"] and t.desired_status == "RUNNING" and self.healthy(t, now)]
        others_live = any(t.deployment != primary["id"] and t.last_status != "STOPPED" for t in mine)
        primary_live = [t for t in mine if t.deployment == primary["id"] and t.last_status != "STOPPED"]
        steady = len(primary_healthy) == desired and len(primary_live) == desired and not others_live and len(deps) == 1
        if steady and primary["rolloutState"] == "IN_PROGRESS":
            primary["rolloutState"] = "COMPLETED"
            primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
            primary["updatedAt"] = now_utc()
            st["last_completed"] = primary["taskDefinition"]
            event(service, f"(deployment {primary['id']}) deployment completed.")
            event(service, "has reached a steady state.")
            publish(service, mine)
        elif steady and primary.pop("_resizing", False):
            event(service, "has reached a steady state.")

    def tick(self, backend, now=None):
        now = time.monotonic() if now is None else now
        tasks = list(backend._stack_tasks.values())
        for t in tasks:
            self.tick_task(backend, t, now)
        for service in list(backend.services.values()):
            if (service.deployment_controller or {}).get("type", "ECS") == "ECS" and service.status == "ACTIVE":
                self.tick_service(backend, service, tasks, now)
                native.tick(self, service, now)
        # Keep the most recent stopped tasks, as ECS shows them for a while.
        stopped = [t for t in backend._stack_tasks.values() if t.last_status == "STOPPED"]
        for t in sorted(stopped, key=lambda t: t.created)[: max(0, len(stopped) - STOPPED_KEPT)]:
            backend._stack_tasks.pop(t.arn, None)

