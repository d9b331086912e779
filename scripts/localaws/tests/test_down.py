"""`scripts/stack down` leaves nothing running: a second stack (its own moto and state, the same
Docker engine and registry) runs a service, and after `down` none of its containers or its HAProxy
remain."""

import json
import os
import subprocess
import sys
import tempfile

from conftest import SCRIPTS, ours, wait_for


def test_down_stops_every_container_and_the_load_balancer(stack):
    assert not ours(), "the main stack was reset: no task container runs"
    state = tempfile.mkdtemp(prefix="stack-down-")
    port = "5199"
    env = {**os.environ, "STACK_STATE_DIR": state, "STACK_MOTO_PORT": port, "STACK_LB_PORT_BASE": "18900"}
    up = subprocess.run([f"{SCRIPTS}/stack", "up"], capture_output=True, text=True, env=env, timeout=180)
    assert up.returncode == 0, up.stderr
    try:
        seed_env = {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        seeded = subprocess.run([sys.executable, f"{SCRIPTS}/tools/seed.py", "--canary", "--desired", "2"],
                                capture_output=True, text=True, env=seed_env, timeout=180)
        assert seeded.returncode == 0, seeded.stderr
        assert json.loads(seeded.stdout)["listener_arn"]
        assert len(ours()) == 2
        assert subprocess.run(["pgrep", "-f", f"haproxy -W -db -f {state}/lb/haproxy.cfg"]).returncode == 0
    finally:
        down = subprocess.run([f"{SCRIPTS}/stack", "down"], capture_output=True, text=True, env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not ours(), 10, "every task container to be gone")
    assert subprocess.run(["pgrep", "-f", f"haproxy -W -db -f {state}/lb/haproxy.cfg"]).returncode != 0
    # The main stack is untouched: its moto still answers.
    assert stack.get("/_stack/profile")["profile"]
