#!/usr/bin/env python3
"""Runs moto in server mode for the local stack (test infrastructure only, never shipped), with the
data plane moto lacks (localaws/data_plane.py: ECS tasks as real containers, HAProxy listeners, ALB
metrics, alarms, logs, on a clock) and the controls under /_stack/. See shared/DESIGN.md, "The local
stack".

Every API call and every step of the clock hold one lock: moto is not thread-safe, and a read must
see the world between two steps, never in the middle of one.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

from localaws import calls, faults, stack_profile
from localaws.data_plane import DataPlane
from localaws.iam import resources as iam_resources

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}


def _json(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(f"{status} {REASONS[status]}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def control(plane, profile, environ):
    """GET/POST /_stack/…; returns (status, body) or None for any other path."""
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
    if not path.startswith("/_stack/"):
        return None
    if method == "GET" and path == "/_stack/listeners":
        return 200, plane.listeners()
    if method == "GET" and path == "/_stack/load-balancer":
        return 200, {"config": plane.lb.config_text()}
    if method == "GET" and path == "/_stack/profile":
        return 200, {
            "profile": profile.name,
            "factor": profile.factor,
            "metric_period_seconds": profile.scaled(profile.metric_period),
            "task_provisioning_seconds": profile.scaled(profile.provisioning),
            "task_pending_seconds": profile.scaled(profile.pending),
        }
    if method == "GET" and path == "/_stack/calls":
        return 200, calls.counts()
    if method == "POST" and path == "/_stack/calls":
        calls.clear()
        return 200, {}
    if method == "GET" and path == "/_stack/faults":
        return 200, {"throttled": faults.throttled_count()}
    if method == "POST" and path == "/_stack/faults":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            rate = float(body.get("rate", 0))
            count = int(body["count"]) if body.get("count") is not None else None
            seed = None
            if body.get("random"):
                seed = int(body.get("seed", 0))
        except (ValueError, KeyError, TypeError):
            return 400, {"error": 'expected {"service": "ecs", "operation": "DescribeServices", "rate": 0.2}'}
        if not body.get("service"):
            return 400, {"error": "name the service (the signing name: ecs, elasticloadbalancing, monitoring, …)"}
        after = body.get("after")
        kind = body.get("error", "throttle")
        if kind not in ("throttle", "unavailable"):
            return 400, {"error": 'error: "throttle" (the default) or "unavailable"'}
        faults.set_fault(body["service"], body.get("operation"), rate, count, seed, after, kind)
        answer = {"service": body["service"], "operation": body.get("operation"), "rate": rate, "count": count}
        answer |= {"after": after} if after else {}
        return 200, answer | ({"random": True, "seed": seed} if seed is not None else {})
    return 404, {"error": f"unknown control {method} {path}"}


def app(plane, profile, lock):
    moto_app = DomainDispatcherApplication(create_backend_app)

    def wsgi(environ, start_response):
        answer = control(plane, profile, environ)
        if answer is not None:
            return _json(start_response, *answer)
        calls.count(environ)
        throttle = faults.throttled(environ)
        if throttle is not None:
            status, headers, body = throttle
            start_response(status, headers + [("Content-Length", str(len(body)))])
            return [body]
        reset = environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST"
        with lock:
            iam_resources.keep_raw_body(environ)
            result = list(moto_app(environ, start_response))
            if reset:
                plane.forget()
        if reset:
            faults.clear()
            calls.clear()
            plane.clean_up()
        return result

    return wsgi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5100)
    parser.add_argument("--state-dir", default=os.environ.get("STACK_STATE_DIR", "/tmp/ecs-deploy-action-stack"))
    args = parser.parse_args()
    # One line a request is noise in the stack's log; warnings and errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Enforcement itself stays off until POST /moto-api/reset-auth (STACK_IAM_ENFORCE=1, the IAM tests).
    iam_resources.install()
    profile = stack_profile.current()
    print(f"stack: {profile.describe()}", flush=True)
    lock = threading.RLock()
    plane = DataPlane(lock, profile, args.state_dir)

    def stop(signum, _frame):
        plane.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    plane.start()
    run_simple(args.host, args.port, app(plane, profile, lock), threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
