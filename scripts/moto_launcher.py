#!/usr/bin/env python3
"""Runs moto in server mode for the local stack (test infrastructure only, never shipped).

It is plain moto for now. Where moto lacks behaviour the product depends on (ECS rollouts), this
launcher is where it gets added, faithful to what AWS documents: see shared/DESIGN.md, "Local stack".
"""

import argparse
import logging
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5100)
    args = parser.parse_args()
    # One line a request is noise in the stack's log; warnings and errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
