"""``WorkerBridge``: the seed's facade. ``.crypto``, ``.file``, ``.compression`` and
``.network`` run their operations on one pool.

``WorkerBridge.crypto.encrypt(...)`` (on the class) uses the lazily created default bridge,
the seed's singleton: its pool starts on first use with the settings of
``WorkerBridge.configure(...)`` and is terminated at interpreter exit. ``WorkerBridge(pool=p)``
is an explicit bridge over a pool you own; ``WorkerBridge(size=4)`` one that owns its pool
(closed by ``close()`` or leaving a ``with`` block).
"""

from __future__ import annotations

import atexit
import threading
from types import TracebackType
from typing import Any, Generic, TypeVar, final, overload

from .._exceptions import ValidationError
from .._pool import WorkerPool
from ._compression import CompressionBridge
from ._crypto import CryptoBridge
from ._file import FileBridge
from ._network import NetworkBridge

__all__ = ["WorkerBridge"]

B = TypeVar("B")


class _Part(Generic[B]):
    """``bridge.crypto`` on an instance; ``WorkerBridge.crypto`` on the class is the
    default bridge's."""

    def __init__(self, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, obj: None, owner: type[WorkerBridge]) -> B: ...
    @overload
    def __get__(self, obj: WorkerBridge, owner: type[WorkerBridge]) -> B: ...
    def __get__(self, obj: WorkerBridge | None, owner: type[WorkerBridge]) -> B:
        bridge = obj if obj is not None else owner.default()
        part: B = getattr(bridge, self._attribute)
        return part


@final
class WorkerBridge:
    """The four bridges over one pool.

    Args:
        pool: run on this pool (you close it); otherwise the bridge makes one from
            ``pool_options`` (``size``, ``backend``, any ``WorkerPool`` option) and closes it
            in ``close()``.

    Every operation returns a ``TaskHandle`` at once (``await`` it or call ``.result()``),
    takes ``on_progress``, ``signal`` and ``timeout``, and checks its arguments before
    anything is dispatched (``ValidationError`` naming the argument).
    """

    crypto: _Part[CryptoBridge] = _Part("_crypto")
    file: _Part[FileBridge] = _Part("_file")
    compression: _Part[CompressionBridge] = _Part("_compression")
    network: _Part[NetworkBridge] = _Part("_network")

    _default: WorkerBridge | None = None
    _default_options: dict[str, Any] = {}  # noqa: RUF012 - class-level settings, by design
    _default_lock = threading.Lock()

    def __init__(self, pool: WorkerPool | None = None, **pool_options: Any) -> None:
        if pool is not None and pool_options:
            raise ValidationError("pass either pool= or pool options, not both")
        if pool is not None and not isinstance(pool, WorkerPool):
            raise ValidationError(f"pool must be a WorkerPool, got {pool!r}")
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else WorkerPool(**pool_options)
        self._crypto = CryptoBridge(self._pool)
        self._file = FileBridge(self._pool)
        self._compression = CompressionBridge(self._pool)
        self._network = NetworkBridge(self._pool)

    @property
    def pool(self) -> WorkerPool:
        """The pool the operations run on."""
        return self._pool

    def close(self, timeout: float | None = None) -> None:
        """Close the pool if this bridge made it (see ``WorkerPool.close``)."""
        if self._owns_pool:
            self._pool.close(timeout)

    def __enter__(self) -> WorkerBridge:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._owns_pool:
            return
        if exc_type is not None and not issubclass(exc_type, Exception):
            self._pool.terminate()
        else:
            self._pool.close()

    def __repr__(self) -> str:
        return f"<WorkerBridge pool={self._pool!r}>"

    # ------------------------------------------------------------ the default bridge
    @classmethod
    def configure(cls, **pool_options: Any) -> None:
        """Set the options of the default bridge's pool (``size``, ``backend``, any
        ``WorkerPool`` option) before its first use.

        Raises:
            RuntimeError: the default bridge is already running (call ``shutdown()``
                first to start it again with other settings).
        """
        with cls._default_lock:
            if cls._default is not None:
                raise RuntimeError(
                    "WorkerBridge.configure() must be called before the default bridge is "
                    "first used (or after WorkerBridge.shutdown())"
                )
            cls._default_options = dict(pool_options)

    @classmethod
    def default(cls) -> WorkerBridge:
        """The default bridge, created on first use."""
        bridge = cls._default
        if bridge is not None:
            return bridge
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(**cls._default_options)
            return cls._default

    @classmethod
    def shutdown(cls, timeout: float | None = None) -> None:
        """Close the default bridge's pool, if it was started; the next use starts a new
        one. Idempotent."""
        with cls._default_lock:
            bridge, cls._default = cls._default, None
        if bridge is not None:
            bridge.close(timeout)


@atexit.register
def _shutdown_default() -> None:
    # The pool's own exit handler would terminate it too; doing it here keeps the order
    # explicit and resets the singleton.
    bridge, WorkerBridge._default = WorkerBridge._default, None
    if bridge is not None:
        bridge._pool.terminate()
