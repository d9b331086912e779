"""What moto's ELBv2 lacks (test infrastructure): targets keyed by address *and* port (ECS registers
`127.0.0.1:<port>` for every task), deregistration that drains for the target group's delay, and
DescribeTargetHealth answered from what HAProxy's health checks see, and a target group's
LoadBalancerArns kept equal to the load balancers whose listeners or rules forward to it (moto sets them
when a listener or rule is created, never when one is modified, as ALB does). Also turns moto's
listeners, rules and target groups into the `Desired` state of the load balancer.
"""

import hashlib
import time

from moto.elbv2 import models as elbv2_models

from localaws.elb.load_balancer import Action, Desired, HealthCheck

# Set by install(): the LoadBalancer whose health checks answer, and the profile's clock.
_lb = None
_profile = None


def key(target: dict) -> str:
    return f"{target['Id']}:{target.get('Port')}"


def deregistration_delay(tg) -> float:
    """Real seconds a deregistered target of `tg` drains for."""
    return _profile.scaled(float(tg.attributes.get("deregistration_delay.timeout_seconds", 300)))


def _status(tg, target, state, reason=None, description=None):
    return elbv2_models.FakeHealthStatus(target["Id"], target["Port"], tg.health_check_port, state, reason, description)


def health_of(tg, target: dict):
    """ALB's view of a registered or draining target, from HAProxy's checks."""
    k = key(target)
    if k in getattr(tg, "_draining", {}):
        return _status(tg, target, "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
    if k not in tg.targets:
        return _status(tg, target, "unused", "Target.NotRegistered", "Target is not registered to the target group")
    if not tg.health_check_enabled:
        return _status(tg, target, "unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")
    row = _lb.health(tg.arn, k) if _lb is not None else None
    if row is None:
        return _status(tg, target, "initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    status = row.get("status", "")
    if status.startswith("UP") or status.startswith("DRAIN"):
        return _status(tg, target, "healthy")
    check = row.get("check_status", "")
    # HAProxy counts failed checks only for a server that was up: a new target that never passes is
    # `unhealthy` once it has failed for UnhealthyThresholdCount intervals, as ALB counts.
    since = tg._failing_since.get(k)
    threshold = _profile.scaled(int(tg.health_check_interval_seconds)) * max(int(tg.unhealthy_threshold_count) - 1, 0)
    if check in ("", "INI") or (not tg._was_healthy.get(k) and (since is None or time.monotonic() - since < threshold)):
        return _status(tg, target, "initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
    if check.startswith("L7"):
        code = row.get("check_code") or "?"
        return _status(tg, target, "unhealthy", "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{code}]")
    if check in ("L4TOUT", "L7TOUT"):
        return _status(tg, target, "unhealthy", "Target.Timeout", "Request timed out")
    return _status(tg, target, "unhealthy", "Target.FailedHealthChecks", "Health checks failed")


def observe_health(now=None):
    """Remembers which targets were ever healthy (ALB reports `initial` only before the first pass)
    and since when a target's checks fail."""
    now = time.monotonic() if now is None else now
    for backend in _backends():
        for tg in backend.target_groups.values():
            interval = _profile.scaled(int(tg.health_check_interval_seconds))
            for k in list(tg.targets):
                row = _lb.health(tg.arn, k)
                # Until HAProxy has checked a new target once, its slot may still show the last
                # occupant's result.
                if row is None or now - tg._registered_at.get(k, now) < 1.5 * interval:
                    continue
                if row.get("status", "").startswith("UP"):
                    tg._was_healthy[k] = True
                    tg._failing_since.pop(k, None)
                elif row.get("check_status", "") not in ("", "INI", "L7OK"):
                    tg._failing_since.setdefault(k, now)


def expire_draining(now=None):
    now = time.monotonic() if now is None else now
    for backend in _backends():
        for tg in backend.target_groups.values():
            for k, (target, until) in list(tg._draining.items()):
                if now >= until:
                    del tg._draining[k]
                    tg.deregistered_targets[k] = target


def is_draining(tg, target: dict) -> bool:
    return key(target) in tg._draining


def _backends():
    for account in elbv2_models.elbv2_backends.values():
        for backend in account.values():
            yield backend


def find_target_group(arn: str):
    for backend in _backends():
        tg = backend.target_groups.get(arn)
        if tg is not None:
            return tg
    return None


def _conditions(rule) -> tuple:
    out = []
    for c in rule.conditions or []:
        field = c.get("Field")
        values = c.get("Values") or []
        for cfg in ("PathPatternConfig", "HostHeaderConfig"):
            values = values or (c.get(cfg) or {}).get("Values") or []
        out.append((field, tuple(values)))
    return tuple(out)


def _action(action_id: str, actions, conditions=()):
    for a in actions or []:
        data = getattr(a, "data", a)
        if data.get("Type") == "forward":
            groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
            if not groups and data.get("TargetGroupArn"):
                groups = [{"TargetGroupArn": data["TargetGroupArn"], "Weight": 1}]
            arns = tuple(g["TargetGroupArn"] for g in groups)
            return Action(action_id, conditions, arns), [int(g.get("Weight", 1)) for g in groups]
        if data.get("Type") == "fixed-response":
            status = int((data.get("FixedResponseConfig") or {}).get("StatusCode", 503))
            return Action(action_id, conditions, (), status), []
    return Action(action_id, conditions, (), 503), []


def desired(ports) -> Desired:
    """The load balancer moto describes; `ports` gives each listener its port on 127.0.0.1."""
    d = Desired()
    for backend in _backends():
        for tg in backend.target_groups.values():
            if tg.protocol not in ("HTTP", "HTTPS"):
                continue
            codes = (tg.matcher or {}).get("HttpCode", "200") if hasattr(tg, "matcher") else "200"
            d.target_groups[tg.arn] = HealthCheck(
                path=tg.health_check_path or "/",
                interval_ms=max(20, int(_profile.scaled(int(tg.health_check_interval_seconds)) * 1000)),
                timeout_ms=max(20, int(_profile.scaled(int(tg.health_check_timeout_seconds)) * 1000)),
                rise=int(tg.healthy_threshold_count),
                fall=int(tg.unhealthy_threshold_count),
                codes=str(codes),
                enabled=bool(tg.health_check_enabled),
            )
            targets = {k: "active" for k in tg.targets}
            targets.update({k: "draining" for k in tg._draining})
            d.targets[tg.arn] = targets
        for listener in (l for lb in backend.load_balancers.values() for l in lb.listeners.values()):
            if listener.protocol not in ("HTTP", "HTTPS"):
                continue
            prefix = "a" + hashlib.sha1(listener.arn.encode()).hexdigest()[:8]
            actions = []
            rules = sorted(listener._non_default_rules.values(), key=lambda r: int(r.priority))
            for n, rule in enumerate(rules):
                action, weights = _action(f"{prefix}r{n}", rule.actions, _conditions(rule) or (("path-pattern", ("*",)),))
                actions.append((action, weights))
            actions.append(_action(f"{prefix}d", listener.default_actions))
            for action, weights in actions:
                if action.target_groups:
                    d.weights[action.id] = weights
            d.listeners[listener.arn] = (ports(listener.arn), [a for a, _ in actions])
    return d


def install(lb, profile):
    global _lb, _profile
    _lb, _profile = lb, profile
    tg_cls = elbv2_models.FakeTargetGroup
    orig_init = tg_cls.__init__

    def __init__(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        self._draining = {}
        self._was_healthy = {}
        self._failing_since = {}
        self._registered_at = {}

    def register(self, targets):
        for target in targets:
            t = {"Id": target["Id"], "Port": int(target.get("Port") or self.port)}
            k = key(t)
            self._draining.pop(k, None)
            self.deregistered_targets.pop(k, None)
            self._was_healthy.pop(k, None)
            self._failing_since.pop(k, None)
            self._registered_at[k] = time.monotonic()
            self.targets[k] = t

    def deregister(self, targets):
        for target in targets:
            t = {"Id": target["Id"], "Port": int(target.get("Port") or self.port)}
            k = key(t)
            if self.targets.pop(k, None) is None:
                raise elbv2_models.InvalidTargetError()
            self._draining[k] = (t, time.monotonic() + deregistration_delay(self))

    def health_for(self, target, ec2_backend):
        t = {"Id": target["Id"], "Port": int(target.get("Port") or self.port)}
        return health_of(self, t)

    tg_cls.__init__ = __init__
    tg_cls.register = register
    tg_cls.deregister = deregister
    tg_cls.health_for = health_for

    backend_cls = elbv2_models.ELBv2Backend
    orig_dth = backend_cls.describe_target_health

    def describe_target_health(self, target_group_arn, targets):
        tg = self.target_groups.get(target_group_arn)
        if tg is not None and not targets:
            # Draining targets are still described, as ALB does until the delay has passed.
            targets = list(tg.targets.values()) + [t for t, _ in tg._draining.values()]
            return [health_of(tg, t) for t in targets]
        return orig_dth(self, target_group_arn, targets)

    backend_cls.describe_target_health = describe_target_health

    for name in ("modify_listener", "modify_rule", "delete_rule", "delete_listener"):
        setattr(backend_cls, name, _reassociating(getattr(backend_cls, name)))


def associate(backend):
    """Sets every target group's LoadBalancerArns from the forward actions that name it, as ALB does."""
    using = {}
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            for rule in listener.rules.values():
                for action in rule.actions:
                    for arn in backend._get_target_group_arns_from(action_data=action.data):
                        using.setdefault(arn, [])
                        if balancer.arn not in using[arn]:
                            using[arn].append(balancer.arn)
    for arn, tg in backend.target_groups.items():
        tg.load_balancer_arns = using.get(arn, [])


def _reassociating(method):
    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        associate(self)
        return result

    return wrapper
