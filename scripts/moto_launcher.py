#!/usr/bin/env python3
"""Runs moto in server mode for the local stack (test infrastructure only, never shipped), with the
ECS rollout behaviour moto lacks (scripts/ecs_rollout.py) and its control endpoints under /_stack/.
See shared/DESIGN.md, "Local stack".
"""

import argparse
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import run_simple  # noqa: E402

import ecs_rollout  # noqa: E402


def app():
    ecs_rollout.install()
    moto_app = DomainDispatcherApplication(create_backend_app)

    def with_controls(environ, start_response):
        answer = ecs_rollout.control(environ) if environ.get("REQUEST_METHOD") == "POST" else None
        if answer is None:
            return moto_app(environ, start_response)
        status, body = answer
        data = json.dumps(body).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return with_controls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5100)
    args = parser.parse_args()
    # One line a request is noise in the stack's log; warnings and errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, app(), threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
