"""ECS's own deployment strategies in the local stack (test infrastructure): BLUE_GREEN, LINEAR and
CANARY as ECS runs them, on the clock. Green tasks start in the alternate target group, the test
listener rule is pointed at green, production weights move on the production listener rule (which
HAProxy serves), bake times pass, alarms roll back, PAUSE hooks wait with an expiry. Each deployment
is a record that ListServiceDeployments and DescribeServiceDeployments read and that
StopServiceDeployment and ContinueServiceDeployment act on (ecs/deployments_api.py).

Where the API reference is silent the stack chooses, and CONTRIBUTING.md's "Known differences" lists it:
a PAUSE hook without a timeout waits 60 minutes then rolls back; a hook answered ROLLBACK ends FAILED;
lifecycleStage reads PRE_PRODUCTION_TRAFFIC_SHIFT while that stage's hooks run; a rollback puts both
rules back on blue at once and ends ROLLBACK_SUCCESSFUL once green's tasks are gone; a rollback is
refused (ConflictException) once CLEAN_UP has begun; only PAUSE hooks run (AWS_LAMBDA is refused);
StopServiceDeployment supports ROLLBACK only; rolling deployments get no service deployment record.
"""

import copy
import math
import random
import string
import time
from datetime import timedelta

from moto.cloudwatch import models as cw_models
from moto.elbv2 import models as elbv2_models

from localaws.ecs.tasks import now_utc

STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")
IN_PROGRESS = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED")
HOOK_STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
)
DEFAULT_HOOK_MINUTES = 60
# ECS watches the deployment's alarms from the first traffic shift on.
WATCHED = ("TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME")


class Conflict(Exception):
    """An action the deployment's state does not allow (the API answers ConflictException)."""


def strategy(service) -> str:
    return (getattr(service, "deployment_configuration", None) or {}).get("strategy") or "ROLLING"


def is_native(service) -> bool:
    return strategy(service) in STRATEGIES


def advanced(service):
    """The load balancer entry that carries advancedConfiguration, or None."""
    for lb in service.load_balancers or []:
        if lb.get("advancedConfiguration"):
            return lb
    return None


def validate(config, load_balancers):
    """Why ECS would refuse this configuration for a native strategy, or None."""
    kind = (config or {}).get("strategy") or "ROLLING"
    if kind not in STRATEGIES:
        return None
    lb = next((lb for lb in load_balancers or [] if lb.get("advancedConfiguration")), None)
    if lb is None:
        return f"The {kind} deployment strategy requires a load balancer with advancedConfiguration (alternateTargetGroupArn, productionListenerRule, roleArn)."
    adv = lb["advancedConfiguration"]
    for key in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
        if not adv.get(key):
            return f"advancedConfiguration.{key} is required for the {kind} deployment strategy."
    if kind == "BLUE_GREEN" and config.get("bakeTimeInMinutes") is None:
        return "bakeTimeInMinutes is required for the BLUE_GREEN deployment strategy."
    for hook in config.get("lifecycleHooks") or []:
        if hook.get("targetType", "AWS_LAMBDA") != "PAUSE":
            return "The local stack runs PAUSE lifecycle hooks only (AWS_LAMBDA hooks are not emulated)."
        for stage in hook.get("lifecycleStages") or []:
            if stage not in HOOK_STAGES:
                return f"Lifecycle hooks cannot be used at stage {stage}."
    return None


def records(backend) -> dict:
    if not hasattr(backend, "_service_deployments"):
        backend._service_deployments = {}
    return backend._service_deployments


def current(service):
    rec = getattr(service, "_native", None)
    return rec if rec is not None and rec["status"] in IN_PROGRESS else None


def holds_old(service) -> bool:
    """While a native deployment rolls forward, blue's tasks stay until CLEAN_UP (no rolling stop)."""
    rec = current(service)
    return rec is not None and rec["status"] == "IN_PROGRESS" and rec["lifecycleStage"] != "CLEAN_UP"


def registered_group(task, lb) -> str:
    """The target group a service task registers in for the load balancer entry `lb`."""
    if not lb.get("advancedConfiguration"):
        return lb.get("targetGroupArn")
    from localaws.ecs import scheduler  # the scheduler imports this module

    dep = next((d for d in scheduler.state(task.service)["deployments"] if d["id"] == task.deployment), None)
    return (dep or {}).get("_tg") or lb.get("targetGroupArn")


def _id(n=21):
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


def _steps(config) -> list:
    """Green's production weight after each shift."""
    kind = config["strategy"]
    if kind == "LINEAR":
        step = float((config.get("linearConfiguration") or {}).get("stepPercent", 10.0))
        n = math.ceil(100.0 / step - 1e-9)
        return [min(100.0, round(step * (i + 1), 1)) for i in range(n)]
    if kind == "CANARY":
        return [float((config.get("canaryConfiguration") or {}).get("canaryPercent", 5.0)), 100.0]
    return [100.0]


def _step_bake_minutes(config) -> float:
    kind = config["strategy"]
    if kind == "LINEAR":
        return float((config.get("linearConfiguration") or {}).get("stepBakeTimeInMinutes", 6))
    if kind == "CANARY":
        return float((config.get("canaryConfiguration") or {}).get("canaryBakeTimeInMinutes", 10))
    return 0.0


_profile = None


def install(profile):
    global _profile
    _profile = profile


def start(backend, service, green, blue):
    """A new native deployment of `service` from deployment `blue` to `green` (scheduler dicts)."""
    lb = advanced(service)
    adv = lb["advancedConfiguration"]
    pair = {lb["targetGroupArn"], adv["alternateTargetGroupArn"]}
    blue_tg = blue.get("_tg") or lb["targetGroupArn"]
    green_tg = next(iter(pair - {blue_tg}), adv["alternateTargetGroupArn"])
    blue["_tg"], green["_tg"] = blue_tg, green_tg
    config = copy.deepcopy(service.deployment_configuration)
    cluster = service.cluster_name
    arn = f"arn:aws:ecs:{service.region_name}:{backend.account_id}:service-deployment/{cluster}/{service.name}/{_id()}"
    prefix = f"arn:aws:ecs:{service.region_name}:{backend.account_id}:service-revision/{cluster}/{service.name}/"
    blue.setdefault("_revision", prefix + _id(19))
    green["_revision"] = prefix + _id(19)
    rec = {
        "serviceDeploymentArn": arn,
        "serviceArn": service.arn,
        "clusterArn": f"arn:aws:ecs:{service.region_name}:{backend.account_id}:cluster/{cluster}",
        "createdAt": now_utc(),
        "startedAt": now_utc(),
        "updatedAt": now_utc(),
        "status": "IN_PROGRESS",
        "lifecycleStage": None,
        "lifecycleHookDetails": [],
        "deploymentConfiguration": config,
        "_service": service,
        "_backend": backend,
        "_blue": blue,
        "_green": green,
        "_prod_rule": adv["productionListenerRule"],
        "_test_rule": adv.get("testListenerRule"),
        "_steps": _steps(config),
        "_step": 0,
        "_weight": 0.0,
        "_test_on_green": False,
        "_plan": _stages(len(_steps(config))),
        "_at": -1,
        "_since": time.monotonic(),
    }
    alarms = config.get("alarms") or {}
    if alarms.get("enable") and alarms.get("alarmNames"):
        rec["alarms"] = {"status": "MONITORING", "alarmNames": list(alarms["alarmNames"]), "triggeredAlarmNames": []}
    else:
        rec["alarms"] = {"status": "DISABLED"}
    records(backend)[arn] = rec
    service._native = rec
    _advance(rec, time.monotonic())
    return rec


def _stages(steps: int) -> list:
    plan = ["PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT"]
    for _ in range(steps):
        plan += ["PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"]
    return plan + ["POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]


def _minutes(rec, minutes) -> float:
    return _profile.scaled(60.0 * float(minutes))


def _advance(rec, now):
    """Enters the next stage: its traffic change first, then its PAUSE hooks."""
    rec["_at"] += 1
    stage = rec["_plan"][rec["_at"]]
    if stage == "PRODUCTION_TRAFFIC_SHIFT":
        rec["_weight"] = rec["_steps"][rec["_step"]]
        rec["_step"] += 1
        _production(rec, rec["_weight"])
    elif stage == "TEST_TRAFFIC_SHIFT" and rec["_test_rule"]:
        _forward(rec["_test_rule"], {rec["_blue"]["_tg"]: 0, rec["_green"]["_tg"]: 100})
        rec["_test_on_green"] = True
    elif stage == "CLEAN_UP":
        for t in _tasks(rec, rec["_blue"]):
            t.request_stop("ServiceSchedulerInitiated", f"Task stopped by the service scheduler for deployment {rec['_green']['id']}")
    rec["lifecycleStage"] = stage
    rec["updatedAt"] = now_utc()
    rec["_since"] = now
    for hook in rec["deploymentConfiguration"].get("lifecycleHooks") or []:
        if stage in (hook.get("lifecycleStages") or []):
            timeout = hook.get("timeoutConfiguration") or {}
            minutes = int(timeout.get("timeoutInMinutes") or DEFAULT_HOOK_MINUTES)
            rec["lifecycleHookDetails"].append(
                {
                    "hookId": "ecs-pause-" + _id(43),
                    "targetType": "PAUSE",
                    "status": "AWAITING_ACTION",
                    "expiresAt": now_utc() + timedelta(seconds=_minutes(rec, minutes)),
                    "timeoutAction": timeout.get("action") or "ROLLBACK",
                    "_deadline": now + _minutes(rec, minutes),
                    "_stage": stage,
                }
            )


def _tasks(rec, dep):
    service = rec["_service"]
    return [t for t in rec["_backend"]._stack_tasks.values() if t.service is service and t.deployment == dep["id"] and t.last_status != "STOPPED"]


def _waiting(rec):
    return [h for h in rec["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION"]


def tick(scheduler, service, now):
    rec = current(service)
    if rec is None:
        return
    if rec["status"] == "ROLLBACK_IN_PROGRESS":
        if not _tasks(rec, rec["_green"]):
            _finish(rec, "ROLLBACK_SUCCESSFUL", f"Service deployment rolled back: {rec['rollback']['reason']}")
        return
    if rec["status"] != "IN_PROGRESS":
        return
    if rec["lifecycleStage"] in WATCHED and _alarmed(rec):
        return
    waiting = _waiting(rec)
    for hook in waiting:
        if now >= hook["_deadline"]:
            hook["status"] = "TIMED_OUT"
            if hook["timeoutAction"] == "ROLLBACK":
                rollback(rec, f"lifecycle hook {hook['hookId']} timed out at {hook['_stage']} (timeout action ROLLBACK)")
                return
    if _waiting(rec):
        return
    if waiting:
        rec["_since"] = now  # a stage's wait counts from when its hooks let it go
    stage = rec["lifecycleStage"]
    config = rec["deploymentConfiguration"]
    if stage == "SCALE_UP":
        desired = int(rec["_green"]["desiredCount"])
        healthy = [t for t in _tasks(rec, rec["_green"]) if t.desired_status == "RUNNING" and scheduler.healthy(t, now)]
        if len(healthy) < desired:
            return
    elif stage == "PRODUCTION_TRAFFIC_SHIFT" and rec["_step"] < len(rec["_steps"]):
        if now - rec["_since"] < _minutes(rec, _step_bake_minutes(config)):
            return
    elif stage == "BAKE_TIME":
        if now - rec["_since"] < _minutes(rec, config.get("bakeTimeInMinutes") or 0):
            return
    elif stage == "CLEAN_UP":
        if _tasks(rec, rec["_blue"]):
            return
        _finish(rec, "SUCCESSFUL", "Service deployment completed successfully.")
        return
    _advance(rec, now)


def _alarmed(rec) -> bool:
    alarms = rec["alarms"]
    if alarms.get("status") != "MONITORING":
        return False
    fired = [n for n in alarms["alarmNames"] if _alarm_state(n) == "ALARM"]
    if not fired:
        return False
    alarms["triggeredAlarmNames"] = fired
    alarms["status"] = "TRIGGERED"
    if (rec["deploymentConfiguration"].get("alarms") or {}).get("rollback"):
        rollback(rec, f"CloudWatch alarm(s) {', '.join(fired)} in ALARM state")
        return True
    return False


def _alarm_state(name):
    for account in cw_models.cloudwatch_backends.values():
        for backend in account.values():
            alarm = backend.alarms.get(name)
            if alarm is not None:
                return alarm.state_value
    return None


def rollback(rec, reason):
    """Traffic back on blue (both rules) at once; green's tasks go; ROLLBACK_SUCCESSFUL once gone."""
    from localaws.ecs import scheduler

    if rec["status"] != "IN_PROGRESS":
        raise Conflict(f"The service deployment is {rec['status']}, not IN_PROGRESS.")
    if rec["lifecycleStage"] == "CLEAN_UP":
        raise Conflict("The service deployment is in CLEAN_UP: blue is being removed and it can no longer be rolled back.")
    service, blue, green = rec["_service"], rec["_blue"], rec["_green"]
    _production(rec, 0.0)
    if rec["_test_rule"]:
        _forward(rec["_test_rule"], {blue["_tg"]: 100, green["_tg"]: 0})
        rec["_test_on_green"] = False
    for hook in _waiting(rec):
        hook["status"] = "FAILED"
    rec["status"] = "ROLLBACK_IN_PROGRESS"
    rec["statusReason"] = reason
    rec["updatedAt"] = now_utc()
    rec["rollback"] = {"reason": reason, "startedAt": now_utc(), "serviceRevisionArn": blue["_revision"]}
    deps = scheduler.state(service)["deployments"]
    deps.sort(key=lambda d: d is not blue)
    blue["status"], green["status"] = "PRIMARY", "ACTIVE"
    green["rolloutState"] = "FAILED"
    green["rolloutStateReason"] = f"ECS deployment {green['id']} rolled back: {reason}"
    for t in _tasks(rec, green):
        t.request_stop("ServiceSchedulerInitiated", f"Task stopped by the service scheduler: deployment {green['id']} rolled back")
    scheduler.event(service, f"(service-deployment {rec['serviceDeploymentArn'].split('/')[-1]}) rolling back: {reason}")


def continue_hook(rec, hook_id, action):
    hook = next((h for h in rec["lifecycleHookDetails"] if h["hookId"] == hook_id), None)
    if hook is None:
        raise KeyError(hook_id)
    if rec["status"] != "IN_PROGRESS" or hook["status"] != "AWAITING_ACTION":
        raise Conflict(f"The lifecycle hook {hook_id} is {hook['status']}, not AWAITING_ACTION, and the deployment is {rec['status']}.")
    if action == "ROLLBACK":
        rollback(rec, f"ContinueServiceDeployment ROLLBACK at lifecycle hook {hook_id} ({hook['_stage']})")
        hook["status"] = "FAILED"
    else:
        hook["status"] = "SUCCEEDED"
        rec["updatedAt"] = now_utc()


def _finish(rec, status, reason):
    rec["status"] = status
    rec["statusReason"] = reason
    rec["finishedAt"] = rec["updatedAt"] = now_utc()
    if rec["alarms"].get("status") == "MONITORING":
        rec["alarms"]["status"] = "MONITORING_COMPLETE"


def _production(rec, green_weight):
    green_weight = max(0, min(100, int(round(green_weight))))
    _forward(rec["_prod_rule"], {rec["_blue"]["_tg"]: 100 - green_weight, rec["_green"]["_tg"]: green_weight})
    rec["_weight"] = float(green_weight)


def _forward(rule_arn, weights):
    """Sets a listener rule's forward weights, as ECS's infrastructure role does with ModifyRule."""
    for account in elbv2_models.elbv2_backends.values():
        for backend in account.values():
            for lb in backend.load_balancers.values():
                for listener in lb.listeners.values():
                    rule = listener._non_default_rules.get(rule_arn)
                    if rule is None:
                        continue
                    rule.actions = [
                        elbv2_models.FakeAction(
                            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()]}}
                        )
                    ]
                    return


def _revision(rec, dep, production, test):
    return {
        "arn": dep["_revision"],
        "requestedTaskCount": int(dep["desiredCount"]),
        "runningTaskCount": int(dep.get("runningCount", 0)),
        "pendingTaskCount": int(dep.get("pendingCount", 0)),
        "requestedProductionTrafficWeight": production,
        "requestedTestTrafficWeight": test,
    }


def view(rec) -> dict:
    """The record as DescribeServiceDeployments answers it."""
    green_w = rec["_weight"]
    test_green = 100.0 if rec["_test_on_green"] else 0.0
    out = {k: v for k, v in rec.items() if not k.startswith("_") and v is not None}
    out["lifecycleHookDetails"] = [{k: v for k, v in h.items() if not k.startswith("_")} for h in rec["lifecycleHookDetails"]]
    out["sourceServiceRevisions"] = [_revision(rec, rec["_blue"], 100.0 - green_w, 100.0 - test_green)]
    out["targetServiceRevision"] = _revision(rec, rec["_green"], green_w, test_green)
    return out


def brief(rec) -> dict:
    keys = ("serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt", "finishedAt", "status", "statusReason")
    out = {k: rec[k] for k in keys if rec.get(k) is not None}
    out["targetServiceRevisionArn"] = rec["_green"]["_revision"]
    return out
