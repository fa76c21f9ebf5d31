"""Layer: channels. The handlers that run inside workers, one module per channel
(``crypto``, ``file``, ``compression``, ``network``), registered with ``@operation`` and
imported by a worker the first time it is asked for one of their operations. The thread and
inline backends run the very same functions: the fallback has no second copy of the logic.

Channels import only the worker runtime (``current_task``, ``operation``) and the error
tree, never the pool: a worker process does not load the pool's layers.
"""
