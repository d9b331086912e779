"""Where the local stack's ECS model meets moto's API (test infrastructure): CreateService and
UpdateService start deployments, RunTask starts real tasks, StopTask stops them, ListTasks and
DescribeTasks answer from the model, and DescribeServices only reads.
"""

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException

from localaws.ecs import deployments_api, native
from localaws.ecs import scheduler as ecs_scheduler
from localaws.ecs.tasks import Task

# Backends that have ECS state of ours, for the scheduler to walk (moto creates backends lazily).
ACTIVE = []


def _track(backend):
    if not hasattr(backend, "_stack_tasks"):
        backend._stack_tasks = {}
    if backend not in ACTIVE:
        ACTIVE.append(backend)


def _ecs_managed(service):
    return (service.deployment_controller or {}).get("type", "ECS") == "ECS"


def _store_network_mode_as_registered():
    """moto 5.2 treats any compatibility but EC2 as Fargate: `requiresCompatibilities: ["EXTERNAL"]`
    with `networkMode: "bridge"` comes back as `awsvpc`. ECS stores the network mode it was given
    (bridge when none is given and Fargate is not required), and lists EXTERNAL among the
    compatibilities of a definition that requires it."""
    td_cls = ecs_models.TaskDefinition
    orig_init = td_cls.__init__

    def init(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        requires = kwargs.get("requires_compatibilities") or []
        given = kwargs.get("network_mode")
        if "FARGATE" not in requires:
            self.network_mode = given or "bridge"
            self.compatibilities = ["EC2", "EXTERNAL"] if "EXTERNAL" in requires else ["EC2"]

    td_cls.__init__ = init


def install():
    _store_network_mode_as_registered()
    backend_cls = ecs_models.EC2ContainerServiceBackend
    orig_create, orig_update = backend_cls.create_service, backend_cls.update_service

    def create_service(self, *args, **kwargs):
        service = orig_create(self, *args, **kwargs)
        _track(self)
        if _ecs_managed(service):
            ecs_scheduler.state(service)["deployments"] = []
            ecs_scheduler.start_deployment(service, service.task_definition, service.desired_count, "create")
        return service

    def update_service(self, props):
        cluster = props.get("cluster", "default")
        name = props.get("service", "").split("/")[-1]
        service = self._get_service(cluster, name)
        before_td = service.task_definition
        new_td = props.get("task_definition")
        force = props.get("force_new_deployment", False)
        if _ecs_managed(service):
            # Refused before anything changes, as ECS validates a request as a whole.
            config = props.get("deployment_configuration") or service.deployment_configuration
            why = native.validate(config, props.get("load_balancers") or service.load_balancers)
            if why:
                raise InvalidParameterException(why)
            if native.current(service) is not None and (new_td or force):
                raise InvalidParameterException(
                    "The local stack does not start a deployment while a service deployment of ECS's own strategy is in progress (ECS would reconcile them)."
                )
        result = orig_update(self, dict(props))
        _track(self)
        if not _ecs_managed(service):
            return result
        if new_td:
            # moto keeps what was given (family, family:rev or ARN); ECS reports the ARN.
            result.task_definition = self.describe_task_definition(new_td).arn
        if (new_td and result.task_definition != before_td) or force:
            blue = (ecs_scheduler.state(service)["deployments"] or [None])[0]
            green = ecs_scheduler.start_deployment(service, result.task_definition, result.desired_count, "update")
            if native.is_native(service) and blue is not None:
                native.start(self, service, green, blue)
        else:
            service.task_definition = result.task_definition if new_td else before_td
            ecs_scheduler.resize(service, result.desired_count)
        ecs_scheduler.publish(service, [t for t in self._stack_tasks.values() if t.service is service])
        return result

    def run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type, networking_configuration=None, group=None, platform_version=None):
        _track(self)
        cluster = self._get_cluster(cluster_str)
        td = self.describe_task_definition(task_definition_str)
        if td.network_mode == "awsvpc" and not networking_configuration:
            raise InvalidParameterException("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        tasks = []
        for _ in range(count or 1):
            t = Task(self, cluster, td, group or f"family:{td.family}", started_by, overrides, launch_type=launch_type or "FARGATE", tags=tags)
            self._stack_tasks[t.arn] = t
            tasks.append(t.view())
        return tasks

    def _find(self, cluster_str, ref):
        cluster = self._get_cluster(cluster_str)
        for t in getattr(self, "_stack_tasks", {}).values():
            if t.cluster == cluster.name and (ref == t.arn or ref == t.id or ref.endswith("/" + t.id)):
                return t
        return None

    def describe_tasks(self, cluster_str, tasks):
        if not tasks:
            raise InvalidParameterException("Tasks cannot be empty.")
        return [t.view() for ref in tasks if (t := _find(self, cluster_str, ref)) is not None]

    def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None, service_name=None, desiredStatus=None):
        cluster = self._get_cluster(cluster_str or "default")
        # ECS lists tasks that should be running unless asked for STOPPED ones.
        wanted = desiredStatus or "RUNNING"
        out = []
        for t in getattr(self, "_stack_tasks", {}).values():
            if t.cluster != cluster.name or t.desired_status != wanted:
                continue
            if family and t.td.family != family:
                continue
            if started_by and t.started_by != started_by:
                continue
            if service_name and t.group != f"service:{service_name.split('/')[-1]}":
                continue
            out.append(t.view())
        return out

    def stop_task(self, cluster_str, task_str, reason):
        t = _find(self, cluster_str, task_str)
        if t is None:
            raise InvalidParameterException("The referenced task was not found.")
        t.request_stop("UserInitiated", reason or "Task stopped by user")
        return t.view()

    backend_cls.create_service = create_service
    backend_cls.update_service = update_service
    backend_cls.run_task = run_task
    backend_cls.describe_tasks = describe_tasks
    backend_cls.list_tasks = list_tasks
    backend_cls.stop_task = stop_task

    # moto drops deploymentConfiguration on CreateService; ECS keeps and honours it.
    resp_cls = ecs_responses.EC2ContainerServiceResponse
    orig_create_resp = resp_cls.create_service

    def create_service_response(self):
        why = native.validate(self._get_param("deploymentConfiguration"), self._get_param("loadBalancers"))
        if why:
            raise InvalidParameterException(why)
        result = orig_create_resp(self)
        config = self._get_param("deploymentConfiguration")
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        service.deployment_configuration = config or {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        }
        return result

    resp_cls.create_service = create_service_response
    deployments_api.install()


def tick(scheduler):
    for backend in list(ACTIVE):
        scheduler.tick(backend)


def reset():
    ACTIVE.clear()
