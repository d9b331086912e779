"""The ServiceDeployments API of the local stack (test infrastructure), which moto 5.2 lacks:
ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment and
ContinueServiceDeployment over the records of ecs/native.py, with the API reference's field names,
states and error codes. moto serialises the answers by the botocore model.
"""

from moto.core.responses import ActionResult
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import ECSException, InvalidParameterException

from localaws.ecs import native


class ServiceDeploymentNotFound(ECSException):
    code = "ServiceDeploymentNotFoundException"

    def __init__(self, message="The service deployment does not exist."):
        super().__init__(message)


class Conflict(ECSException):
    code = "ConflictException"

    def __init__(self, message):
        super().__init__(message)


def _find(backend, arn):
    rec = native.records(backend).get(arn or "")
    if rec is None:
        raise ServiceDeploymentNotFound(f"The service deployment {arn} does not exist.")
    return rec


def install():
    cls = ecs_responses.EC2ContainerServiceResponse

    def list_service_deployments(self):
        service = (self._get_param("service") or "").split("/")[-1]
        cluster = (self._get_param("cluster") or "default").split("/")[-1]
        statuses = self._get_param("status") or []
        found = [
            rec
            for rec in native.records(self.ecs_backend).values()
            if rec["_service"].name == service and rec["_service"].cluster_name == cluster and (not statuses or rec["status"] in statuses)
        ]
        found.sort(key=lambda r: r["createdAt"], reverse=True)
        limit = int(self._get_param("maxResults") or 20)
        return ActionResult({"serviceDeployments": [native.brief(r) for r in found[:limit]]})

    def describe_service_deployments(self):
        arns = self._get_param("serviceDeploymentArns") or []
        if not arns:
            raise InvalidParameterException("serviceDeploymentArns cannot be empty.")
        found, failures = [], []
        for arn in arns:
            rec = native.records(self.ecs_backend).get(arn)
            if rec is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(native.view(rec))
        return ActionResult({"serviceDeployments": found, "failures": failures})

    def stop_service_deployment(self):
        rec = _find(self.ecs_backend, self._get_param("serviceDeploymentArn"))
        stop_type = self._get_param("stopType") or "ROLLBACK"
        if stop_type != "ROLLBACK":
            raise InvalidParameterException(f"stopType {stop_type}: the local stack supports ROLLBACK only.")
        try:
            native.rollback(rec, "StopServiceDeployment with stopType ROLLBACK")
        except native.Conflict as e:
            raise Conflict(str(e)) from None
        return ActionResult({"serviceDeploymentArn": rec["serviceDeploymentArn"]})

    def continue_service_deployment(self):
        rec = _find(self.ecs_backend, self._get_param("serviceDeploymentArn"))
        hook_id = self._get_param("hookId")
        action = self._get_param("action") or "CONTINUE"
        if action not in ("CONTINUE", "ROLLBACK"):
            raise InvalidParameterException(f"action {action} is not valid: use CONTINUE or ROLLBACK.")
        try:
            native.continue_hook(rec, hook_id, action)
        except KeyError:
            raise InvalidParameterException(f"The lifecycle hook {hook_id} is not part of this service deployment.") from None
        except native.Conflict as e:
            raise Conflict(str(e)) from None
        return ActionResult({"serviceDeploymentArn": rec["serviceDeploymentArn"]})

    cls.list_service_deployments = list_service_deployments
    cls.describe_service_deployments = describe_service_deployments
    cls.stop_service_deployment = stop_service_deployment
    cls.continue_service_deployment = continue_service_deployment
