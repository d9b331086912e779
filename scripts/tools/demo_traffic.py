#!/usr/bin/env python3
"""Steady requests through a listener during the demo (loopback only, bounded in count and time):
every interval a line with the share of answers from each version and the errors seen, and at the
end (SIGTERM, or the time bound) one JSON summary line per phase marked with `--phase` files.

    demo_traffic.py URL [--every 2] [--max-seconds 600]
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections import Counter


def answer(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read()).get("version", "?")
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def line(window: Counter, errors: Counter) -> str:
    total = sum(window.values()) + sum(errors.values())
    if total == 0:
        return "traffic: no answers"
    shares = " · ".join(f"{v} {100 * n / total:.0f}%" for v, n in window.most_common())
    errs = ", ".join(f"{'no answer' if code == 0 else code} ×{n}" for code, n in sorted(errors.items())) or "none"
    return f"traffic: {total} requests: {shares or '-'}; errors: {errs}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("url")
    p.add_argument("--every", type=float, default=2.0)
    p.add_argument("--max-seconds", type=float, default=600)
    p.add_argument("--summary", help="file to write the totals to, as JSON, when stopped")
    args = p.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        raise SystemExit("demo_traffic: loopback only (http://127.0.0.1:…)")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    totals, total_errors = Counter(), Counter()
    window, errors = Counter(), Counter()
    started = last = time.monotonic()
    sent = 0
    while not stop["now"] and time.monotonic() - started < args.max_seconds and sent < 100_000:
        status, version = answer(args.url)
        sent += 1
        if 200 <= status < 300:
            window[version] += 1
            totals[version] += 1
        else:
            errors[status] += 1
            total_errors[status] += 1
        if time.monotonic() - last >= args.every:
            print(line(window, errors), flush=True)
            window, errors, last = Counter(), Counter(), time.monotonic()
        time.sleep(0.02)
    if args.summary:
        with open(args.summary + ".tmp", "w") as f:
            json.dump({"answers": dict(totals), "errors": {str(k): v for k, v in total_errors.items()}, "sent": sent}, f)
        os.replace(args.summary + ".tmp", args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
