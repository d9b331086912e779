"""The local AWS for the demo and the tests: moto as the control plane (`launcher`), and a data plane
of real parts beside it, one sub-package per emulated service (`ecs`: tasks as real containers on a
scheduler; `elb`: listeners as HAProxy, target health, ALB metrics; `cloudwatch`: logs, percentiles,
rounding as AWS does; `iam`: the resources each call is authorized against), with the fault
injection (`faults`) and the clock (`stack_profile`). Run the launcher with `python -m
localaws.launcher` from `scripts/` (`scripts/stack` does)."""
