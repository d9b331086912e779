"""Fixtures for the stack's own tests: they run against the stack that `scripts/stack up` started
(AWS_ENDPOINT_URL), reset before each test, with the demo app's image (DEMO_IMAGE) in the registry."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

# scripts/: the stack's entry point (`stack`) and the tools (`tools/seed.py`).
SCRIPTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these through scripts/test, or eval \"$(scripts/stack up)\" and scripts/demo-image first")
    return value


class Stack:
    def __init__(self):
        self.endpoint = _env("AWS_ENDPOINT_URL")
        self.image = _env("DEMO_IMAGE")
        kw = {"endpoint_url": self.endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.ecs = boto3.client("ecs", **kw)
        self.elb = boto3.client("elbv2", **kw)
        self.cw = boto3.client("cloudwatch", **kw)
        self.logs = boto3.client("logs", **kw)

    def post(self, path, body=None):
        req = urllib.request.Request(self.endpoint + path, data=json.dumps(body or {}).encode(), method="POST")
        return json.loads(urllib.request.urlopen(req).read() or b"{}")

    def get(self, path):
        return json.loads(urllib.request.urlopen(self.endpoint + path).read())

    def snapshot(self):
        """moto's whole state, less the answer objects it counts as models (one per DescribeTargetHealth)."""
        data = json.loads(urllib.request.urlopen(self.endpoint + "/moto-api/data.json").read())
        data.get("elbv2", {}).pop("FakeHealthStatus", None)
        return data

    def seed(self, *args):
        env = {**os.environ, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        out = subprocess.run([sys.executable, f"{SCRIPTS}/tools/seed.py", *args], capture_output=True, text=True, env=env, timeout=180)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def listener_url(self, arn):
        return self.get("/_stack/listeners")[arn]

    def register(self, family="web", env=None, image=None, port=8080):
        env = {"APP_ENV": "test", **(env or {})}
        return self.ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "web",
                    "image": image or self.image,
                    "memory": 256,
                    "portMappings": [{"containerPort": port}],
                    "environment": [{"name": k, "value": v} for k, v in env.items()],
                    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": f"/ecs/{family}", "awslogs-stream-prefix": "ecs"}},
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]

    def service(self, cluster, name):
        return self.ecs.describe_services(cluster=cluster, services=[name])["services"][0]

    def wait_service(self, cluster, name, state="COMPLETED", timeout=60):
        def settled():
            s = self.service(cluster, name)
            dep = s["deployments"][0]
            if dep["rolloutState"] == state and (state != "COMPLETED" or len(s["deployments"]) == 1):
                return s
            return None

        return wait_for(settled, timeout, f"{name} to reach {state}")

    def tasks(self, cluster, service=None, status="RUNNING"):
        kw = {"cluster": cluster, "desiredStatus": status}
        if service:
            kw["serviceName"] = service
        arns = self.ecs.list_tasks(**kw)["taskArns"]
        return self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def wait_for(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def get(url, timeout=5):
    """(status, body) of a GET; the status is 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


def traffic(url, count, workers=4):
    """`count` GETs to `url` (loopback only), a few at a time; returns [(status, body)]."""
    assert url.startswith("http://127.0.0.1:"), url
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: get(url), range(count)))


def ours():
    out = subprocess.run(["docker", "ps", "-q", "--filter", "label=ecs-deploy-action.stack=1"], capture_output=True, text=True)
    return out.stdout.split()


def container_images():
    ids = ours()
    if not ids:
        return {}
    out = subprocess.run(
        ["docker", "inspect", "--format", '{{index .Config.Labels "ecs-deploy-action.task"}} {{.Config.Image}}', *ids],
        capture_output=True,
        text=True,
    )
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.strip())


@pytest.fixture()
def stack():
    s = Stack()
    s.post("/moto-api/reset")
    return s
