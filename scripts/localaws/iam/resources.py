"""IAM enforcement closer to AWS's, for the stack's emulator (test infrastructure, never shipped).

moto (with enforcement on: POST /moto-api/reset-auth) authorizes every call against the resource "*",
so a policy scoped to ARNs denies everything, and it names CloudWatch's actions by their signing
name ("monitoring:DescribeAlarms"). Here each call is authorized against the resources AWS's Service
Authorization Reference names for it, and CloudWatch's actions are "cloudwatch:". A call also gets
the other authorizations AWS makes for it, which moto never does: RegisterTaskDefinition passes its
task and execution roles (iam:PassRole on each) and, with tags, tags the new revision
(ecs:TagResource on it); CreateService and CreateTargetGroup with tags tag what they create; an
UpdateService whose load balancer has a blue/green configuration passes its infrastructure role. Conditions stay
moto's (only StringEquals), with the resource's tags as `aws:ResourceTag/<key>` (conditions.py);
not evaluated at all: iam:PassRole on RunTask (the roles are its task definition's, already passed
when it was registered).

STS's web identity and SAML exchanges are not signed on AWS (the token is the credential): moto
asks them for a signature all the same and fails with a 500, so here they skip authorization.

A refusal names the action and the resource, as AWS's does, in the shape of the service's protocol:
JSON for ECS, Logs and ECR, and `<ErrorResponse><Error>` for the query services (ELB, CloudWatch);
moto answers every service in one XML shape (`<ErrorResponse><Errors><Error>`) the SDKs cannot read.
"""

import io
import json
from urllib.parse import urlparse

from . import conditions

# Services whose errors are JSON bodies (awsJson1_1), not XML.
JSON_SERVICES = {"ecs", "logs", "ecr", "events"}

# Calls AWS takes without a signature: their token or assertion is the credential.
UNSIGNED = {("sts", "AssumeRoleWithWebIdentity"), ("sts", "AssumeRoleWithSAML")}

# The signing name in a request's credential scope → the service prefix of its IAM actions.
IAM_PREFIX = {"monitoring": "cloudwatch"}


def _name(value):
    """A name or an ARN's last path part (`arn:…:cluster/demo` → `demo`)."""
    return value.rsplit("/", 1)[-1]


def _ecs(action, p, arn):
    cluster = _name(p.get("cluster") or "default")

    def service(s):
        return s if s.startswith("arn:") else arn(f"service/{cluster}/{s}")

    def task(t):
        return t if t.startswith("arn:") else arn(f"task/{cluster}/{t}")

    if action == "DescribeServices":
        return [service(s) for s in p.get("services", [])]
    if action in ("UpdateService", "DeleteService"):
        return [service(p["service"])]
    if action == "CreateService":
        return [service(p["serviceName"])]
    if action in ("TagResource", "UntagResource", "ListTagsForResource"):
        return [p["resourceArn"]]
    if action == "DescribeTasks":
        return [task(t) for t in p.get("tasks", [])]
    if action == "StopTask":
        return [task(p["task"])]
    if action == "RunTask":
        td = p["taskDefinition"]
        return [td if td.startswith("arn:") else arn(f"task-definition/{td}")]
    # ECS's own strategies: listed per service, read and answered per service deployment.
    if action == "ListServiceDeployments":
        return [service(p["service"])]
    if action == "DescribeServiceDeployments":
        return list(p.get("serviceDeploymentArns", []))
    if action in ("ContinueServiceDeployment", "StopServiceDeployment"):
        return [p["serviceDeploymentArn"]]
    return ["*"]


# The body of the request being served, as sent (the stack serves one request at a time).
_raw_body = b""


def keep_raw_body(environ):
    """Keeps a form-encoded request's body as it was signed. moto's server parses it into fields and
    re-encodes them to check the signature, with spaces as `+`: a request from an SDK that sends `%20`
    (the Rust SDK does, for the query services' text such as an alarm's description) would fail
    SignatureDoesNotMatch on AWS's own encoding."""
    global _raw_body
    _raw_body = b""
    if "x-www-form-urlencoded" not in (environ.get("CONTENT_TYPE") or ""):
        return
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    _raw_body = body


def resources(service, action, params, region, account):
    """The resources AWS authorizes `service`'s `action` against, from the request's parameters
    (JSON bodies as dicts, query strings as {name: value}); ["*"] where it takes no resource."""

    def arn(resource, svc=service):
        return f"arn:aws:{svc}:{region}:{account}:{resource}"

    if service == "ecs":
        found = _ecs(action, params, arn)
    elif service == "elasticloadbalancing":
        found = {
            "ModifyListener": [params.get("ListenerArn")],
            "ModifyRule": [params.get("RuleArn")],
            "CreateRule": [params.get("ListenerArn")],
            "DeleteRule": [params.get("RuleArn")],
            # A target group's ARN ends in an id ELB has not chosen yet: AWS authorizes its name.
            "CreateTargetGroup": [arn(f"targetgroup/{params.get('Name')}/*")],
            "ModifyTargetGroupAttributes": [params.get("TargetGroupArn")],
            "DeleteTargetGroup": [params.get("TargetGroupArn")],
            "AddTags": [v for k, v in sorted(params.items()) if k.startswith("ResourceArns.member.")],
        }.get(action, ["*"])
    elif service in ("monitoring", "cloudwatch") and action in ("DescribeAlarms", "DeleteAlarms"):
        names = [v for k, v in sorted(params.items()) if k.startswith("AlarmNames.member.")]
        found = [f"arn:aws:cloudwatch:{region}:{account}:alarm:{n}" for n in names]
    elif service in ("monitoring", "cloudwatch") and action == "PutMetricAlarm":
        found = [f"arn:aws:cloudwatch:{region}:{account}:alarm:{params.get('AlarmName')}"]
    elif service == "events" and action in ("ListTargetsByRule", "PutTargets"):
        found = [arn(f"rule/{params.get('Rule')}")]
    elif service == "logs" and action == "GetLogEvents":
        found = [arn(f"log-group:{params['logGroupName']}:log-stream:{params['logStreamName']}")]
    elif service == "ecr" and action != "GetAuthorizationToken":
        names = params.get("repositoryNames") or [params.get("repositoryName")]
        found = [arn(f"repository/{n}") for n in names if n]
    else:
        found = ["*"]
    return [r for r in found if r] or ["*"]


def implied(service, action, params, region, account, next_revision):
    """The other (action, resource) authorizations AWS makes for a call. `next_revision(family)` is
    the revision a registration will get."""
    # Tags given on create are authorized as a tagging of the new resource, as AWS does.
    if (service, action) == ("elasticloadbalancing", "CreateTargetGroup") and any(k.startswith("Tags.member.") for k in params):
        return [("elasticloadbalancing:AddTags", f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{params.get('Name')}/*")]
    # A rule created with tags is tagged as it is made: its ARN's last part is not chosen yet.
    if (service, action) == ("elasticloadbalancing", "CreateRule") and any(k.startswith("Tags.member.") for k in params):
        listener = params.get("ListenerArn", "")
        return [("elasticloadbalancing:AddTags", listener.replace(":listener/", ":listener-rule/", 1) + "/*")]
    # A rule's target starts its task with its role: EventBridge is passed that role.
    if (service, action) == ("events", "PutTargets"):
        return [("iam:PassRole", t["RoleArn"]) for t in params.get("Targets") or [] if t.get("RoleArn")]
    # A service's blue/green configuration passes ECS its infrastructure role.
    if (service, action) == ("ecs", "UpdateService"):
        roles = [(lb.get("advancedConfiguration") or {}).get("roleArn") for lb in params.get("loadBalancers") or []]
        return [("iam:PassRole", r) for r in roles if r]
    if (service, action) == ("ecs", "CreateService") and params.get("tags"):
        cluster = _name(params.get("cluster") or "default")
        return [("ecs:TagResource", f"arn:aws:ecs:{region}:{account}:service/{cluster}/{params['serviceName']}")]
    if (service, action) != ("ecs", "RegisterTaskDefinition"):
        return []
    out = [("iam:PassRole", params[k]) for k in ("taskRoleArn", "executionRoleArn") if params.get(k)]
    if params.get("tags"):
        family = params["family"]
        out.append(("ecs:TagResource", f"arn:aws:ecs:{region}:{account}:task-definition/{family}:{next_revision(family)}"))
    return out


def _next_revision(account, region):
    from moto.ecs.models import ecs_backends

    def revision(family):
        return max(ecs_backends[account][region].task_definitions.get(family, {}), default=0) + 1

    return revision


def _authorize_as(response, action, resource):
    """moto's own check of the caller's policies, for `action` on `resource` instead of the request's."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequest

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return  # enforcement is off
    request = IAMRequest(
        account_id=response.current_account,
        method=response.method,
        path=urlparse(response.uri).path,
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=response._get_action(),
    )
    request._action = action
    request.check_action_permitted(resource)


def _query_denied(message):
    """AccessDenied as the query protocol's services answer it (HTTP 403)."""
    from moto.core.exceptions import AccessDeniedError
    from xmltodict import unparse

    refused = AccessDeniedError(user_arn="", action="")
    refused.message = message
    error = {"Type": "Sender", "Code": "AccessDenied", "Message": message}
    refused.description = unparse({"ErrorResponse": {"Error": error, "RequestId": "stack"}}, full_document=True)
    return refused


def _params(response):
    """A moto response object's request parameters: its JSON body, or its query string's first values."""
    body = response.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body and body.lstrip().startswith("{"):
        try:
            return json.loads(body)
        except ValueError:
            return {}
    return {k: v[0] if isinstance(v, list) and v else v for k, v in (response.querystring or {}).items()}


def install():
    """Patches moto's authorization for the services the action calls (idempotent)."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.ecr.responses import ECRResponse
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elbv2.responses import ELBV2Response
    from moto.events.responses import EventsHandler
    from moto.iam import access_control
    from moto.logs.responses import LogsResponse
    from moto.sts.responses import TokenResponse

    conditions.install()
    classes = {
        "ecs": EC2ContainerServiceResponse,
        "elasticloadbalancing": ELBV2Response,
        "cloudwatch": CloudWatchResponse,
        "logs": LogsResponse,
        "ecr": ECRResponse,
        "events": EventsHandler,
    }
    for service, cls in classes.items():
        if getattr(cls, "_stack_iam_resources", False):
            continue
        original = cls._authenticate_and_authorize_normal_action

        def authorize(self, resource="*", _service=service, _original=original):
            action = self._get_action()
            if not self.raw_body and _raw_body:
                self.raw_body = _raw_body
            params, region, account = _params(self), self.region, self.current_account
            checks = [(lambda r: _original(self, r), r, None) for r in resources(_service, action, params, region, account)]
            for other, r in implied(_service, action, params, region, account, _next_revision(account, region)):
                # A tagging implied by a create is made by that create (`ecs:CreateAction`).
                checks.append((lambda r, other=other: _authorize_as(self, other, r), r, action))
            keys = conditions.request_tag_keys(_service, action, params)
            for check, r, create in checks:
                try:
                    conditions.authorizing(r, region, account, keys, create)
                    check(r)
                except AccessDeniedError as denied:
                    message = f"{denied.message} on resource: {r}"
                    if _service in JSON_SERVICES:
                        raise JsonRESTError("AccessDeniedException", message) from None
                    raise _query_denied(message) from None

        cls._authenticate_and_authorize_normal_action = authorize
        cls._stack_iam_resources = True

    if not getattr(TokenResponse, "_stack_iam_unsigned", False):
        signed = TokenResponse._authenticate_and_authorize_normal_action

        def sts_authorize(self, resource="*", _signed=signed):
            if ("sts", self._get_action()) in UNSIGNED:
                return
            _signed(self, resource)

        TokenResponse._authenticate_and_authorize_normal_action = sts_authorize
        TokenResponse._stack_iam_unsigned = True

    base = access_control.IAMRequestBase
    if not getattr(base, "_stack_iam_prefix", False):
        init = base.__init__

        def renamed(self, *args, **kwargs):
            init(self, *args, **kwargs)
            service, _, action = self._action.partition(":")
            self._action = f"{IAM_PREFIX.get(service, service)}:{action}"

        base.__init__ = renamed
        base._stack_iam_prefix = True
