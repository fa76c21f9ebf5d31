"""Layer 2: what runs inside a worker (process or thread): the loop, the task runner, the
task's context, the control block and the channel registry."""

from ._context import TaskContext, current_task
from ._control import MAX_IN_FLIGHT, ControlBlock
from ._registry import lookup, operation, register_channel
from ._runtime import TaskRunner, error_info, resolve_function

__all__ = [
    "MAX_IN_FLIGHT",
    "ControlBlock",
    "TaskContext",
    "TaskRunner",
    "current_task",
    "error_info",
    "lookup",
    "operation",
    "register_channel",
    "resolve_function",
]
