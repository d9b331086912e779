"""The stack's own count of AWS calls per operation (test infrastructure): what a test asserts a run
asked of AWS, counted where the requests arrive rather than as the client reports them.

GET /_stack/calls answers {"ecs:DescribeServices": 12, …} since the last reset (POST /_stack/calls,
or moto's own reset). Throttled calls count too: they reached the stack.
"""

import threading
from collections import Counter

from localaws import faults

_lock = threading.Lock()
_counts = Counter()


def count(environ):
    """Counts one signed request by its service's signing name and its operation."""
    service, operation = faults.identify(environ)
    if service and operation:
        with _lock:
            _counts[f"{service.lower()}:{operation}"] += 1


def counts() -> dict:
    with _lock:
        return dict(sorted(_counts.items()))


def clear():
    with _lock:
        _counts.clear()
