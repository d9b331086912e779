"""Container output to CloudWatch Logs, as the `awslogs` driver sends it (test infrastructure): the
group from `awslogs-group`, the stream `<awslogs-stream-prefix>/<container>/<task id>`. Lines are
queued by the threads that follow containers and written into moto by the scheduler's tick.
"""

import queue
import time

from moto.logs import models as logs_models

_lines = queue.SimpleQueue()
# Bumped by a reset: output that a container of before the reset still prints is dropped, so no log
# group of an earlier test reappears after it.
_generation = 0


def generation() -> int:
    """The stack's generation now: a task started now logs under it."""
    return _generation


def sink(task, definition, line):
    if getattr(task, "generation", _generation) != _generation:
        return
    config = definition.get("logConfiguration") or {}
    if config.get("logDriver") != "awslogs":
        return
    options = config.get("options") or {}
    group = options.get("awslogs-group")
    if not group:
        return
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{definition['name']}/{task.id}" if prefix else f"{definition['name']}/{task.id}"
    account, region = task.arn.split(":")[4], options.get("awslogs-region") or task.arn.split(":")[3]
    _lines.put((account, region, group, stream, int(time.time() * 1000), line))


def flush():
    """Writes the queued lines; call with the emulator's lock held."""
    batches = {}
    while True:
        try:
            account, region, group, stream, ts, line = _lines.get_nowait()
        except queue.Empty:
            break
        batches.setdefault((account, region, group, stream), []).append({"timestamp": ts, "message": line})
    for (account, region, group, stream), events in batches.items():
        backend = logs_models.logs_backends[account][region]
        # ECS needs the group to exist unless awslogs-create-group is set; the stack creates it
        # either way so that a test's task definition does not have to.
        if group not in backend.groups:
            backend.create_log_group(group, {})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream, events)


def reset():
    global _generation
    _generation += 1
    while True:
        try:
            _lines.get_nowait()
        except queue.Empty:
            return
