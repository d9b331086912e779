"""Timing profiles of the local stack (test infrastructure): how long AWS takes to do things.

`fast` (tests, demo) divides AWS's own durations by 60, so a 30 s health check interval is 0.5 s and a
60 s metric period is 1 s; `aws` keeps AWS's published figures, multiplied by STACK_TIME_SCALE (0.1
makes a 60 s metric period 6 s). Durations a user configures (health check interval, deregistration
delay, alarm period) go through `scaled()`; the ones AWS imposes are fields of the profile.
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # Real seconds per AWS second.
    factor: float
    # What AWS imposes, in AWS seconds: a Fargate task's provisioning (ENI, capacity) and the time
    # from PENDING to RUNNING (image pull, start), beyond what the real container takes.
    provisioning: float
    pending: float
    # The load balancer's metrics are published once a period (AWS: 60 s for ALB metrics).
    metric_period: float = 60.0
    # How often the scheduler looks at the world, in real seconds.
    tick: float = 0.1

    def scaled(self, aws_seconds: float) -> float:
        """Real seconds for a duration AWS counts in `aws_seconds`."""
        return float(aws_seconds) * self.factor

    def describe(self) -> str:
        return (
            f"profile {self.name}: x{self.factor:g} of AWS time, task provisioning {self.scaled(self.provisioning):g} s, "
            f"pending {self.scaled(self.pending):g} s, metric period {self.scaled(self.metric_period):g} s"
        )


def current(env=os.environ) -> Profile:
    """The profile named by STACK_PROFILE (default `fast`), scaled by STACK_TIME_SCALE for `aws`."""
    name = env.get("STACK_PROFILE", "fast") or "fast"
    if name == "fast":
        return Profile("fast", factor=1 / 60, provisioning=6.0, pending=6.0, tick=0.05)
    if name == "aws":
        try:
            scale = float(env.get("STACK_TIME_SCALE", "1") or "1")
        except ValueError:
            raise SystemExit(f"STACK_TIME_SCALE={env['STACK_TIME_SCALE']!r} is not a number (e.g. 0.1)")
        if not 0 < scale <= 10:
            raise SystemExit("STACK_TIME_SCALE must be above 0 and at most 10 (e.g. 0.1)")
        # Fargate: about 15-20 s to provision and 20-40 s to pull and start a small image.
        return Profile("aws", factor=scale, provisioning=15.0, pending=25.0, tick=min(0.2, 0.5 * scale))
    raise SystemExit(f"STACK_PROFILE={name!r}: use fast or aws")
