"""The ALB's data plane (test infrastructure): one HAProxy on 127.0.0.1 with a frontend per listener
and a backend per target group, kept equal to what moto's ELBv2 model says.

- Forward weights (ModifyListener/ModifyRule) go to a map file through HAProxy's runtime API: a request
  draws a number and picks the target group whose cumulative weight it falls under; nothing reloads.
- Targets take server slots at runtime: a new target starts DOWN and must pass `HealthyThresholdCount`
  checks (ALB's `initial`), a deregistered one drains (no new requests) until its delay has passed.
- Listeners, rules and target groups change the configuration: HAProxy reloads (master-worker) and
  keeps each server's state through its server-state file.
- Every request is logged as one line (`REQ <backend> <server> <status> <Tr ms> <Ta ms>`), from which
  the metrics are made (elb/metrics.py).
"""

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

SLOTS = 32
RANDOM_RANGE = 1_000_000


def _id(kind: str, arn: str) -> str:
    return f"{kind}_{hashlib.sha1(arn.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class HealthCheck:
    path: str
    interval_ms: int
    timeout_ms: int
    rise: int
    fall: int
    codes: str  # ALB matcher: "200", "200,202", "200-299"
    enabled: bool = True


@dataclass(frozen=True)
class Action:
    """A listener's default action or a rule's: forward (with weights) or a fixed response."""

    id: str
    conditions: tuple = ()  # ((field, (values…)), …); empty for a default action
    target_groups: tuple = ()  # target group ARNs, in order
    fixed_status: int | None = None


@dataclass
class Desired:
    listeners: dict = field(default_factory=dict)  # arn -> (port, [Action…] in priority order, default last)
    weights: dict = field(default_factory=dict)  # action id -> [weight…] aligned with its target_groups
    target_groups: dict = field(default_factory=dict)  # arn -> HealthCheck
    targets: dict = field(default_factory=dict)  # tg arn -> {"127.0.0.1:port": "active" | "draining"}


def _matcher(codes: str) -> str:
    parts = []
    for part in codes.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            parts.extend(str(c) for c in range(lo, hi + 1))
        elif part:
            parts.append(part)
    return "|".join(parts) or "200"


def _glob(pattern: str) -> str:
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"


def _condition(conditions) -> str | None:
    """An HAProxy ACL expression for ALB rule conditions; None when one is not supported."""
    terms = []
    for field_name, values in conditions:
        if field_name == "path-pattern":
            terms.append("{ path -m reg " + " ".join(_glob(v) for v in values) + " }")
        elif field_name == "host-header":
            terms.append("{ hdr(host),field(1,:) -m reg -i " + " ".join(_glob(v) for v in values) + " }")
        else:
            return None
    return " ".join(terms)


def render(desired: Desired, state_dir: str) -> str:
    """The whole HAProxy configuration for `desired` (weights and targets are applied at runtime)."""
    out = [
        "global",
        f"  stats socket {state_dir}/haproxy.sock mode 600 level admin expose-fd listeners",
        f"  server-state-file {state_dir}/haproxy.state",
        "  log stdout format raw local0",
        "defaults",
        "  mode http",
        "  log global",
        '  log-format "REQ %b %s %ST %Tr %Ta"',
        "  load-server-state-from-file global",
        "  timeout connect 2s",
        "  timeout client 60s",
        "  timeout server 60s",
        "  timeout check 2s",
        "  retries 0",
    ]
    for arn, (port, actions) in sorted(desired.listeners.items()):
        fe = _id("l", arn)
        out += [f"frontend {fe}", f"  bind 127.0.0.1:{port}", "  http-request set-var(txn.r) rand(" + str(RANDOM_RANGE) + ")"]
        for action in actions:
            cond = _condition(action.conditions) if action.conditions else ""
            if cond is None:
                continue
            out.append(f"  http-request set-var(txn.act) str({action.id}) if !{{ var(txn.act) -m found }} {cond}".rstrip())
            for i, _ in enumerate(action.target_groups):
                out.append(f"  http-request set-var(txn.{action.id}_{i}) str({action.id}/{i}),map_str_int({state_dir}/weights.map,0)")
        for action in actions:
            if action.fixed_status is not None:
                out.append(f"  http-request return status {action.fixed_status} if {{ var(txn.act) -m str {action.id} }}")
        for action in actions:
            for i, tg in enumerate(action.target_groups):
                out.append(
                    f"  use_backend {_id('tg', tg)} if {{ var(txn.act) -m str {action.id} }} {{ var(txn.r),sub(txn.{action.id}_{i}) lt 0 }}"
                )
        # ALB answers 503 when a forward action has no target group to send to.
        out.append("  default_backend no_target")
    out += ["backend no_target", "  http-request return status 503"]
    for arn, hc in sorted(desired.target_groups.items()):
        out += [f"backend {_id('tg', arn)}", "  balance roundrobin"]
        if hc.enabled:
            out += [f"  option httpchk GET {hc.path}", f"  http-check expect rstatus ^({_matcher(hc.codes)})$"]
            check = f" check inter {hc.interval_ms} fastinter {hc.interval_ms} downinter {hc.interval_ms} rise {hc.rise} fall {hc.fall}"
        else:
            check = ""
        out.append(f"  server-template s 1-{SLOTS} 127.0.0.1:1 disabled{check}")
    return "\n".join(out) + "\n"


def thresholds(weights: list) -> list:
    """Cumulative thresholds out of RANDOM_RANGE for forward weights; all zero when they add up to 0."""
    total = sum(max(0, int(w)) for w in weights)
    if total == 0:
        return [0] * len(weights)
    acc, out = 0, []
    for w in weights:
        acc += max(0, int(w))
        out.append(RANDOM_RANGE * acc // total)
    return out


class LoadBalancer:
    """One HAProxy process kept equal to a `Desired` state; `health()` is what its checks see."""

    def __init__(self, state_dir: str, on_log_line):
        self.dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        self.on_log_line = on_log_line
        self.proc = None
        self.lock = threading.Lock()
        self._forget()

    def _forget(self):
        """No HAProxy state known: nothing configured, no slot taken, no health seen."""
        self.structure = None
        self.weights = {}
        # tg arn -> {target key: slot number}; (tg arn, slot) -> "active" | "draining"
        self.slots = {}
        self.slot_state = {}
        self.health_cache = {}
        self.chk_base = {}

    # -- HAProxy process and runtime API ---------------------------------------------------------

    def _cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(f"{self.dir}/haproxy.sock")
            s.sendall((command + "\n").encode())
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def _wait_ready(self, pid_before=None, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = self._cli("show info")
                pid = re.search(r"^Pid: (\d+)", info, re.M)
                if pid and (pid_before is None or pid.group(1) != pid_before):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"HAProxy did not answer on {self.dir}/haproxy.sock (log: {self.dir}/haproxy.log)")

    def _worker_pid(self):
        try:
            m = re.search(r"^Pid: (\d+)", self._cli("show info"), re.M)
            return m.group(1) if m else None
        except OSError:
            return None

    def _start(self):
        self.proc = subprocess.Popen(
            ["haproxy", "-W", "-db", "-f", f"{self.dir}/haproxy.cfg"],
            stdout=subprocess.PIPE,
            stderr=open(f"{self.dir}/haproxy.log", "ab"),
            text=True,
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True, name="haproxy-log").start()
        self._wait_ready()

    def _read_log(self, proc):
        for line in proc.stdout:
            if line.startswith("REQ "):
                try:
                    self.on_log_line(line.split())
                except Exception as e:  # noqa: BLE001 - a bad line must not stop the reader
                    print(f"stack: load balancer log: {e}", flush=True)

    def _configure(self, desired: Desired):
        with open(f"{self.dir}/weights.map", "w") as f:
            for action_id, ws in desired.weights.items():
                for i, t in enumerate(thresholds(ws)):
                    f.write(f"{action_id}/{i} {t}\n")
        cfg = render(desired, self.dir)
        path = f"{self.dir}/haproxy.cfg"
        with open(path + ".new", "w") as f:
            f.write(cfg)
        check = subprocess.run(["haproxy", "-c", "-q", "-f", path + ".new"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy refused the configuration: {check.stderr.strip()}")
        os.replace(path + ".new", path)
        if self.proc is None or self.proc.poll() is not None:
            open(f"{self.dir}/haproxy.state", "w").close()
            self._start()
            return
        # Keep every server's address and health across the reload.
        with open(f"{self.dir}/haproxy.state", "w") as f:
            f.write(self._cli("show servers state"))
        before = self._worker_pid()
        self.proc.send_signal(signal.SIGUSR2)
        self._wait_ready(pid_before=before)

    def stop(self):
        # Taken before it is stopped: a reset's clean-up and the clock's reconciliation may both stop
        # HAProxy at once, and the second must find nothing to stop, not a process gone under it.
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._forget()

    # -- reconciliation --------------------------------------------------------------------------

    def apply(self, desired: Desired):
        """Makes HAProxy match `desired`: configuration, weights, then target slots."""
        with self.lock:
            structure = (
                tuple(sorted((a, p, tuple(acts)) for a, (p, acts) in desired.listeners.items())),
                tuple(sorted(desired.target_groups.items())),
            )
            if not desired.listeners and not desired.target_groups:
                if self.proc is not None:
                    self.stop()
                return
            if structure != self.structure:
                self._configure(desired)
                self.structure = structure
                self.weights = dict(desired.weights)
                for arn in list(self.slots):
                    if arn not in desired.target_groups:
                        del self.slots[arn]
            for action_id, ws in desired.weights.items():
                if self.weights.get(action_id) != ws:
                    for i, t in enumerate(thresholds(ws)):
                        self._cli(f"set map {self.dir}/weights.map {action_id}/{i} {t}")
                    self.weights[action_id] = list(ws)
            for arn in desired.target_groups:
                self._apply_targets(arn, desired.targets.get(arn, {}))

    def _apply_targets(self, tg_arn: str, targets: dict):
        be = _id("tg", tg_arn)
        slots = self.slots.setdefault(tg_arn, {})
        for key in [k for k in slots if k not in targets]:
            slot = slots.pop(key)
            self.chk_base.pop((tg_arn, key), None)
            self._cli(f"set server {be}/s{slot} state maint")
            self.slot_state.pop((tg_arn, slot), None)
        used = set(slots.values())
        for key, state in targets.items():
            slot = slots.get(key)
            if slot is None:
                free = [n for n in range(1, SLOTS + 1) if n not in used]
                if not free:
                    print(f"stack: target group {tg_arn} has more than {SLOTS} targets; {key} gets no traffic", flush=True)
                    continue
                slot = free[0]
                used.add(slot)
                slots[key] = slot
                host, port = key.rsplit(":", 1)
                # Like ALB's `initial`: no traffic until the healthy threshold of checks has passed.
                self._cli(
                    f"set server {be}/s{slot} addr {host} port {port}; set server {be}/s{slot} state ready; "
                    f"set server {be}/s{slot} health down"
                )
                self.slot_state[(tg_arn, slot)] = "active"
            if state == "draining" and self.slot_state.get((tg_arn, slot)) != "draining":
                self._cli(f"set server {be}/s{slot} state drain")
                self.slot_state[(tg_arn, slot)] = "draining"

    def refresh_health(self):
        """Reads every server's state from HAProxy into the cache `health()` answers from."""
        with self.lock:
            if self.proc is None:
                self.health_cache = {}
                return
            try:
                stat = self._cli("show stat")
            except OSError:
                return
            rows = {}
            header = None
            for line in stat.splitlines():
                if line.startswith("# "):
                    header = line[2:].split(",")
                    continue
                if not line or header is None:
                    continue
                row = dict(zip(header, line.split(",")))
                rows[(row["pxname"], row["svname"])] = row
            cache = {}
            for arn, slots in self.slots.items():
                be = _id("tg", arn)
                for key, slot in slots.items():
                    row = rows.get((be, f"s{slot}"))
                    if row is None:
                        continue
                    # A slot's failed-check counter outlives its targets: count from the target's first sight.
                    base = self.chk_base.setdefault((arn, key), int(row.get("chkfail") or 0))
                    cache[(arn, key)] = {**row, "chkfail": str(int(row.get("chkfail") or 0) - base)}
            self.health_cache = cache

    def health(self, tg_arn: str, key: str):
        """HAProxy's `show stat` row for a target (status, check_status, check_code, chkfail, …), or None."""
        return self.health_cache.get((tg_arn, key))

    def config_text(self) -> str:
        try:
            with open(f"{self.dir}/haproxy.cfg") as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def backend_for(tg_arn: str) -> str:
        return _id("tg", tg_arn)
