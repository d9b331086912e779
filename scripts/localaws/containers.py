"""Real containers for ECS tasks (test infrastructure): pulled from the local registry, started with
the task definition's image, environment, command and entry point, ports published on 127.0.0.1 only.

Talks to the Docker engine through the `docker` CLI with its own config directory, which holds the
registry login (what ECR's token decodes to), so pulls take the same authenticated path as the action.
Every container carries the label `ecs-deploy-action.stack=1` (what `scripts/stack down` clears) and
its stack's own `ecs-deploy-action.stack-instance` (the state directory), so that a reset removes
exactly this stack's containers and never those of a second stack on the same engine (the bench's).
"""

import json
import subprocess
import threading
from dataclasses import dataclass, field

LABEL = "ecs-deploy-action.stack"
INSTANCE = "ecs-deploy-action.stack-instance"
PULL_TIMEOUT = 120


class StartError(Exception):
    """A container that could not start, with ECS's wording (`CannotPullContainerError: …`)."""


@dataclass
class ContainerSpec:
    name: str
    image: str
    environment: dict = field(default_factory=dict)
    command: list | None = None
    entry_point: list | None = None
    ports: list = field(default_factory=list)
    memory_mib: int | None = None
    labels: dict = field(default_factory=dict)


def spec_from_definition(definition: dict, overrides: dict | None = None) -> ContainerSpec:
    """A container definition of a task definition (camelCase, as ECS stores it) and its overrides."""
    overrides = overrides or {}
    env = {e["name"]: e.get("value", "") for e in definition.get("environment") or []}
    env.update({e["name"]: e.get("value", "") for e in overrides.get("environment") or []})
    return ContainerSpec(
        name=definition["name"],
        image=definition.get("image", ""),
        environment=env,
        command=overrides.get("command") or definition.get("command"),
        entry_point=definition.get("entryPoint"),
        ports=[int(p["containerPort"]) for p in definition.get("portMappings") or [] if p.get("containerPort")],
        memory_mib=definition.get("memory"),
    )


class Docker:
    def __init__(
        self,
        config_dir: str,
        registry: str | None = None,
        user: str | None = None,
        password: str | None = None,
        instance: str = "default",
    ):
        self.config_dir = config_dir
        self.instance = instance
        self._login_lock = threading.Lock()
        self._login = (registry, user, password) if registry and user and password else None
        self._logged_in = False

    def _run(self, *args, timeout=60, check=True, input=None):
        out = subprocess.run(
            ["docker", "--config", self.config_dir, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and out.returncode != 0:
            raise RuntimeError(out.stderr.strip() or out.stdout.strip() or f"docker {args[0]} failed")
        return out

    def _ensure_login(self):
        with self._login_lock:
            if self._logged_in or self._login is None:
                return
            registry, user, password = self._login
            self._run("login", "-u", user, "--password-stdin", registry, input=password, timeout=30)
            self._logged_in = True

    def pull(self, image: str) -> None:
        """Pulls `image`; raises StartError with ECS's CannotPullContainerError wording."""
        try:
            self._ensure_login()
            self._run("pull", "-q", image, timeout=PULL_TIMEOUT)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            detail = str(e).splitlines()[-1] if str(e) else "timed out"
            raise StartError(
                f"CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: {detail}"
            ) from None

    def start(self, spec: ContainerSpec, task_labels: dict) -> tuple[str, dict]:
        """Pulls and starts one container; returns its id and {container port: host port on 127.0.0.1}."""
        self.pull(spec.image)
        args = ["run", "-d", "--label", f"{LABEL}=1", "--label", f"{INSTANCE}={self.instance}"]
        for k, v in {**spec.labels, **task_labels}.items():
            args += ["--label", f"{k}={v}"]
        for port in spec.ports:
            # Published on loopback only: nothing of the stack is reachable from elsewhere.
            args += ["-p", f"127.0.0.1::{port}"]
        for k, v in spec.environment.items():
            args += ["-e", f"{k}={v}"]
        if spec.memory_mib:
            args += ["--memory", f"{int(spec.memory_mib)}m"]
        if spec.entry_point:
            args += ["--entrypoint", spec.entry_point[0]]
        args.append(spec.image)
        if spec.entry_point:
            args += list(spec.entry_point[1:])
        if spec.command:
            args += list(spec.command)
        try:
            cid = self._run(*args, timeout=60).stdout.strip()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            raise StartError(f"CannotStartContainerError: {str(e).splitlines()[-1] if str(e) else 'timed out'}") from None
        ports = {}
        for port in spec.ports:
            out = self._run("port", cid, f"{port}/tcp", check=False)
            for line in out.stdout.splitlines():
                host, _, hport = line.strip().rpartition(":")
                if host == "127.0.0.1" and hport.isdigit():
                    ports[port] = int(hport)
        return cid, ports

    def state(self, cid: str) -> dict | None:
        """{'running', 'exit_code', 'oom_killed'} of a container, or None if it is gone."""
        out = self._run("inspect", "--format", "{{json .State}}", cid, check=False)
        if out.returncode != 0:
            return None
        s = json.loads(out.stdout)
        return {"running": s.get("Running", False), "exit_code": s.get("ExitCode"), "oom_killed": s.get("OOMKilled", False)}

    def stop(self, cid: str, timeout: int = 30) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds, as ECS's stopTimeout."""
        self._run("stop", "-t", str(int(timeout)), cid, check=False, timeout=timeout + 30)

    def remove(self, cid: str) -> None:
        self._run("rm", "-f", cid, check=False)

    def logs(self, cid: str):
        """Follows a container's output; yields (stream, line) until it exits."""
        proc = subprocess.Popen(
            ["docker", "--config", self.config_dir, "logs", "-f", cid],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        try:
            for line in proc.stdout:
                yield line.rstrip("\n")
        finally:
            proc.kill()
            proc.wait()

    def ours(self) -> list[str]:
        out = self._run("ps", "-aq", "--filter", f"label={LABEL}=1", "--filter", f"label={INSTANCE}={self.instance}", check=False)
        return out.stdout.split()

    def remove_all(self) -> int:
        ids = self.ours()
        if ids:
            self._run("rm", "-f", *ids, check=False, timeout=120)
        return len(ids)
