"""ECS tasks as real containers, moved through PROVISIONING → PENDING → RUNNING → STOPPED by the clock
(test infrastructure). A task's containers are started and stopped in worker threads; the scheduler
tick only looks at their results, so reads never change anything and nothing waits on Docker while
holding the emulator's lock.
"""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from localaws.cloudwatch import logs as cw_logs
from localaws.containers import StartError, spec_from_definition


STOPPED_KEPT = 200


def now_utc():
    return datetime.now(timezone.utc)


class TaskView(dict):
    """A task as DescribeTasks serialises it (moto reads dict keys by the API's camelCase names)."""

    @property
    def task_arn(self):
        return self["taskArn"]


class Task:
    def __init__(self, backend, cluster, task_definition, group, started_by="", overrides=None, service=None, deployment=None, launch_type="FARGATE", tags=None):
        self.id = uuid.uuid4().hex
        self.arn = f"arn:aws:ecs:{cluster.region_name}:{backend.account_id}:task/{cluster.name}/{self.id}"
        self.cluster = cluster.name
        self.cluster_arn = cluster.arn
        self.td = task_definition
        self.group = group
        self.started_by = started_by or ""
        self.overrides = overrides or {}
        self.service = service  # the Service object, or None for RunTask
        self.deployment = deployment  # the deployment id that started it
        self.launch_type = launch_type
        self.tags = tags or []
        self.last_status = "PROVISIONING"
        self.desired_status = "RUNNING"
        self.created = time.monotonic()
        self.created_at = now_utc()
        self.phase_since = self.created
        self.started_at = self.stopping_at = self.stopped_at = self.pull_started_at = None
        self.stop_code = None
        self.stopped_reason = None
        self.counts_as_failure = False
        self.containers = [
            {
                "containerArn": f"arn:aws:ecs:{cluster.region_name}:{backend.account_id}:container/{cluster.name}/{self.id}/{uuid.uuid4()}",
                "taskArn": self.arn,
                "name": c["name"],
                "image": c.get("image"),
                "lastStatus": "PENDING",
                "essential": c.get("essential", True),
                "networkBindings": [],
            }
            for c in task_definition.container_definitions
        ]
        self.cids = {}  # container name -> docker id
        self.host_ports = {}  # (container name, container port) -> host port
        self.targets = []  # [(target group arn, {"Id", "Port"})]
        self.start_job = None
        self.stop_job = None
        self.died = {}  # container name -> (exit code, oom killed)
        self.lock = threading.Lock()

    # -- what the API shows ------------------------------------------------------------------

    def view(self) -> TaskView:
        v = {
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.td.arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "group": self.group,
            "launchType": self.launch_type,
            "createdAt": self.created_at,
            "containers": [dict(c) for c in self.containers],
            "overrides": {"containerOverrides": self.overrides.get("containerOverrides", []), "inferenceAcceleratorOverrides": []},
            "tags": self.tags,
            "version": 1,
            "cpu": self.td.cpu,
            "memory": self.td.memory,
        }
        if self.started_by:
            v["startedBy"] = self.started_by
        for key, value in (
            ("pullStartedAt", self.pull_started_at),
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
            ("stopCode", self.stop_code),
            ("stoppedReason", self.stopped_reason),
        ):
            if value is not None:
                v[key] = value
        return TaskView(v)

    # -- transitions, called from the scheduler tick under the emulator's lock -----------------

    def container_specs(self):
        overrides = {o.get("name"): o for o in self.overrides.get("containerOverrides", [])}
        return [spec_from_definition(c, overrides.get(c["name"])) for c in self.td.container_definitions]

    def mark_running(self):
        self.last_status = "RUNNING"
        self.started_at = now_utc()
        self.phase_since = time.monotonic()
        for c in self.containers:
            c["lastStatus"] = "RUNNING"
            c["networkBindings"] = [
                {"bindIP": "127.0.0.1", "containerPort": cport, "hostPort": hport, "protocol": "tcp"}
                for (name, cport), hport in self.host_ports.items()
                if name == c["name"]
            ]

    def mark_stopped(self, code, reason, exit_codes=None):
        self.last_status = "STOPPED"
        self.desired_status = "STOPPED"
        self.stop_code = self.stop_code or code
        self.stopped_reason = self.stopped_reason or reason
        self.stopped_at = now_utc()
        self.stopping_at = self.stopping_at or self.stopped_at
        for c in self.containers:
            c["lastStatus"] = "STOPPED"
            if exit_codes and c["name"] in exit_codes and exit_codes[c["name"]] is not None:
                c["exitCode"] = exit_codes[c["name"]]

    def request_stop(self, code, reason, failure=False):
        if self.desired_status == "STOPPED":
            return False
        self.desired_status = "STOPPED"
        self.stop_code = code
        self.stopped_reason = reason
        self.stopping_at = now_utc()
        self.counts_as_failure = failure
        return True

    def healthy_in(self, health_of) -> bool:
        """RUNNING, and every target it registered passes the load balancer's checks."""
        return self.last_status == "RUNNING" and all(health_of(tg, t) == "healthy" for tg, t in self.targets)


class Runner:
    """Starts and stops tasks' containers in worker threads; the tick collects the results."""

    def __init__(self, docker, profile, log_sink):
        self.docker = docker
        self.profile = profile
        self.log_sink = log_sink  # (task, container definition, line) -> None
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="task")
        # Bumped by a reset: a container started for an earlier generation is removed at once.
        self.generation = 0

    def start(self, task: Task):
        specs = task.container_specs()
        labels = {"ecs-deploy-action.task": task.arn}
        generation = self.generation

        def job():
            cids, ports = {}, {}
            try:
                for spec in specs:
                    cid, published = self.docker.start(spec, labels)
                    cids[spec.name] = cid
                    for cport, hport in published.items():
                        ports[(spec.name, cport)] = hport
            except StartError as e:
                for cid in cids.values():
                    self.docker.remove(cid)
                return ("error", str(e))
            if generation != self.generation:
                for cid in cids.values():
                    self.docker.remove(cid)
                return ("error", "CannotStartContainerError: the stack was reset")
            for definition in task.td.container_definitions:
                cid = cids.get(definition["name"])
                if cid:
                    threading.Thread(target=self._follow, args=(task, definition, cid), daemon=True).start()
            return ("ok", cids, ports)

        task.pull_started_at = now_utc()
        task.generation = cw_logs.generation()
        task.start_job = self.pool.submit(job)

    def _follow(self, task, definition, cid):
        for line in self.docker.logs(cid):
            self.log_sink(task, definition, line)
        state = self.docker.state(cid)
        if state is not None and not state["running"]:
            with task.lock:
                task.died[definition["name"]] = (state["exit_code"], state["oom_killed"])

    def stop(self, task: Task):
        timeout = max(2, int(self.profile.scaled(30)))
        cids = dict(task.cids)

        def job():
            codes = {}
            for name, cid in cids.items():
                self.docker.stop(cid, timeout)
                state = self.docker.state(cid)
                codes[name] = state["exit_code"] if state else None
                self.docker.remove(cid)
            return codes

        task.stop_job = self.pool.submit(job)

    def remove(self, task: Task):
        cids = list(task.cids.values())
        self.pool.submit(lambda: [self.docker.remove(c) for c in cids])
