"""Throttling on demand (test infrastructure): a fraction of the calls to an AWS service, or to one
operation of it, answered with that protocol's own throttling error, as AWS answers past a rate limit.

Set with POST /_stack/faults {"service": "ecs", "operation": "DescribeServices", "rate": 0.2};
`operation` may be left out for every operation; rate 0 removes the fault. The fraction is exact over
consecutive calls (an accumulator, not a coin), so tests can count on it. GET /_stack/faults answers
{"throttled": N}, the calls throttled since the last reset. With "count": N instead of
a rate, exactly the next N calls are throttled, then the fault ends by itself. With "random": true the
fraction is a coin per call (seeded by "seed" for repeatable runs): bursts of consecutive throttles
happen, as they do on AWS, so a client's retries are tested rather than always succeeding at once.
With "after": "UpdateService", the fault is armed and starts only once a call to that operation of the
same service went through: a read outage right after a deploy began, say. With "error": "unavailable"
the calls are answered 503 ServiceUnavailable instead (an outage, not a request to slow down).
"""

import io
import json
import random
import re
import threading
from urllib.parse import parse_qs

_lock = threading.Lock()
_rules = {}  # (service, operation or "*") -> [rate, calls, calls left or None, coin or None]
_throttled = 0  # calls answered with a throttling error since the last clear()
_armed = {}  # (service, trigger operation) -> [fault arguments to set once a trigger call went through]
_kinds = {}  # (service, operation or "*") -> "throttle" or "unavailable"


def set_fault(
    service: str,
    operation: str | None,
    rate: float,
    count: int | None = None,
    seed: int | None = None,
    after: str | None = None,
    kind: str = "throttle",
):
    """`seed` set: each call is throttled with probability `rate` (random.Random(seed)). `after` set:
    the fault starts after the next call to that operation of `service` went through. `kind`:
    "throttle" or "unavailable" (503)."""
    if after:
        with _lock:
            _armed.setdefault((service.lower(), after), []).append((operation, rate, count, seed, None, kind))
        return
    with _lock:
        k = (service.lower(), operation or "*")
        _kinds[k] = kind
        if count is not None and count > 0:
            _rules[k] = [1.0, 0, count, None]
        elif rate <= 0:
            _rules.pop(k, None)
        else:
            _rules[k] = [min(rate, 1.0), 0, None, random.Random(seed) if seed is not None else None]


def clear():
    global _throttled
    with _lock:
        _rules.clear()
        _armed.clear()
        _kinds.clear()
        _throttled = 0


def throttled_count() -> int:
    with _lock:
        return _throttled


def identify(environ) -> tuple[str | None, str | None]:
    """(service, operation) of a signed AWS request; the body is read and put back."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
    service = m.group(1) if m else None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode(errors="replace")).get("Action", [None])[0]
    return service, action


def _due(service, operation) -> bool:
    due = _rule_due(service, operation)
    if not due:
        with _lock:
            armed = _armed.pop((service, operation), [])
        for args in armed:
            set_fault(service, *args)
    return due


def _rule_due(service, operation) -> bool:
    with _lock:
        for k in ((service, operation), (service, "*")):
            rule = _rules.get(k)
            if rule is not None:
                rate, calls, left, coin = rule
                rule[1] = calls + 1
                if coin is not None:
                    return coin.random() < rate
                if left is not None:
                    if left <= 1:
                        del _rules[k]
                    else:
                        rule[2] = left - 1
                    return True
                return int((calls + 1) * rate) > int(calls * rate)
    return False


def throttled(environ):
    """The throttling answer (status, headers, body) for this request, or None to let it through."""
    if not _rules and not _armed:
        return None
    service, operation = identify(environ)
    if not service or not _due(service.lower(), operation or "*"):
        return None
    global _throttled
    with _lock:
        _throttled += 1
        kind = _kinds.get((service.lower(), operation or "*")) or _kinds.get((service.lower(), "*"), "throttle")
    if kind == "unavailable":
        if environ.get("HTTP_X_AMZ_TARGET"):
            body = json.dumps({"__type": "ServiceUnavailableException", "message": "Service unavailable"}).encode()
            return "503 Service Unavailable", [("Content-Type", "application/x-amz-json-1.1")], body
        body = (
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>Service unavailable</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        ).encode()
        return "503 Service Unavailable", [("Content-Type", "text/xml")], body
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1")], body
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()
    return "400 Bad Request", [("Content-Type", "text/xml")], body
