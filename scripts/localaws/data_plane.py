"""The local stack's data plane (test infrastructure): one clock that moves ECS tasks, keeps HAProxy
equal to the ELBv2 model, publishes the load balancer's metrics, evaluates alarms and ships container
logs. Everything that touches moto's state runs under the emulator's lock; Docker and HAProxy are
driven outside it, so a slow container start never holds up an API call.
"""

import os
import socket
import threading
import time
import traceback
from datetime import datetime, timezone

from localaws.cloudwatch import logs as cw_logs
from localaws.cloudwatch import percentiles as cw_percentiles
from localaws.cloudwatch import rounding as cw_rounding
from localaws.containers import Docker
from localaws.ecs import api as ecs_api
from localaws.ecs import native as ecs_native
from localaws.ecs.scheduler import Scheduler
from localaws.ecs.tasks import Runner
from localaws.elb import metrics as alb_metrics
from localaws.elb import targets as alb_targets
from localaws.elb.load_balancer import LoadBalancer


class Ports:
    """A port on 127.0.0.1 for each listener, kept for the listener's life."""

    def __init__(self, base: int):
        self.base = base
        self.by_arn = {}

    def __call__(self, arn: str) -> int:
        if arn not in self.by_arn:
            used = set(self.by_arn.values())
            port = self.base
            while port in used or not _free(port):
                port += 1
            self.by_arn[arn] = port
        return self.by_arn[arn]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class DataPlane:
    def __init__(self, lock, profile, state_dir, env=os.environ):
        self.lock = lock
        self.profile = profile
        self.docker = Docker(
            f"{state_dir}/docker-config",
            env.get("REGISTRY"),
            env.get("STACK_REGISTRY_USER"),
            env.get("STACK_REGISTRY_PASSWORD"),
            instance=str(state_dir),
        )
        self.requests = alb_metrics.Requests()
        self.backend_to_tg = {}
        self.lb = LoadBalancer(f"{state_dir}/lb", self._log_line)
        self.ports = Ports(int(env.get("STACK_LB_PORT_BASE", "18000")))
        self.runner = Runner(self.docker, profile, cw_logs.sink)
        self.scheduler = Scheduler(self.runner, profile)
        alb_targets.install(self.lb, profile)
        ecs_api.install()
        ecs_native.install(profile)
        cw_percentiles.install()
        cw_rounding.install(profile.scaled(profile.metric_period))
        self.next_flush = self._period_end(time.time())
        self.stopping = threading.Event()

    def _period_end(self, t: float) -> float:
        period = self.profile.scaled(self.profile.metric_period)
        return (t // period + 1) * period

    def _log_line(self, parts):
        # REQ <backend> <server> <status> <Tr> <Ta>
        _, backend, server, status, tr, _ta = parts[:6]
        arn = self.backend_to_tg.get(backend)
        if arn is not None:
            self.requests.record(arn, server, int(status), int(tr))


    def listeners(self) -> dict:
        with self.lock:
            return {arn: f"http://127.0.0.1:{port}" for arn, port in self.ports.by_arn.items()}

    def step(self):
        with self.lock:
            ecs_api.tick(self.scheduler)
            alb_targets.expire_draining()
            desired = alb_targets.desired(self.ports)
            cw_logs.flush()
        self.backend_to_tg = {LoadBalancer.backend_for(arn): arn for arn in desired.target_groups}
        self.lb.apply(desired)
        self.lb.refresh_health()
        with self.lock:
            alb_targets.observe_health()
        now = time.time()
        if now >= self.next_flush:
            period = self.profile.scaled(self.profile.metric_period)
            start = datetime.fromtimestamp(self.next_flush - period, timezone.utc)
            self.next_flush = self._period_end(now)
            by_tg, times = self.requests.take()
            with self.lock:
                groups = {tg.arn: tg for b in alb_targets._backends() for tg in b.target_groups.values()}
                alb_metrics.publish(by_tg, times, start, groups)
                alb_metrics.evaluate(self.profile)

    def run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the clock must keep going; the log says what broke
                traceback.print_exc()
            self.stopping.wait(max(0.0, self.profile.tick - (time.monotonic() - started)))

    def start(self):
        threading.Thread(target=self.run, daemon=True, name="data-plane").start()

    def forget(self):
        """With moto's reset, under the same hold of the lock: the clock never sees half of it."""
        ecs_api.reset()
        cw_logs.reset()
        self.ports.by_arn.clear()
        self.requests.take()
        self.runner.generation += 1

    def clean_up(self):
        """After a reset: no container or listener of before remains."""
        self.lb.stop()
        return self.docker.remove_all()

    def shutdown(self):
        self.stopping.set()
        self.runner.generation += 1
        self.lb.stop()
        self.docker.remove_all()
