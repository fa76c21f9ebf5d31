"""The public surface: ``workerbridge.__all__``, final classes and the error tree."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import inspect
import pickle
import re
from typing import Any

import pytest

import workerbridge
from workerbridge import _exceptions

PUBLIC = sorted(workerbridge.__all__)


def public_objects() -> list[tuple[str, Any]]:
    return [(name, getattr(workerbridge, name)) for name in workerbridge.__all__]


def public_classes() -> list[type]:
    return [obj for _, obj in public_objects() if isinstance(obj, type)]


def is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def must_be_final(cls: type) -> bool:
    """STYLE.md 2: public classes are @final except exceptions, Protocols, ABCs and
    statistics snapshots (``*Stats``, ``Percentiles``)."""
    return not (
        issubclass(cls, BaseException)
        or is_protocol(cls)
        or inspect.isabstract(cls)
        or cls.__name__.endswith(("Stats", "Statistics"))
        or cls.__name__ == "Percentiles"
    )


# ----------------------------------------------------------------------------- __all__


def test_all_is_sorted_and_unique() -> None:
    assert workerbridge.__all__ == sorted(workerbridge.__all__)
    assert len(set(workerbridge.__all__)) == len(workerbridge.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_name_in_all_exists(name: str) -> None:
    assert hasattr(workerbridge, name)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_say_workerbridge(name: str) -> None:
    obj = getattr(workerbridge, name)
    assert obj.__module__ == "workerbridge"


def test_public_names_defined_in_the_package_are_in_all() -> None:
    """No public-looking name is re-exported by accident (or forgotten in __all__)."""
    exported = {
        name
        for name, obj in vars(workerbridge).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", "").startswith("workerbridge")
    }
    assert exported <= set(workerbridge.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from workerbridge import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == PUBLIC


@pytest.mark.parametrize("cls", public_classes(), ids=lambda c: c.__name__)
def test_public_classes_pickle_by_their_public_name(cls: type) -> None:
    # The __module__ fix-up must point at a name that really resolves.
    assert pickle.loads(pickle.dumps(cls)) is cls
    assert cls.__qualname__ == cls.__name__


# ------------------------------------------------------------------------ @final


# TaskHandle and MapIterator are only created by the pool (STYLE.md 2: handles use
# NoPublicConstructor) and nothing subclasses them, yet they are not @final.
NOT_YET_FINAL: set[str] = set()


def _final_params() -> list[Any]:
    params = []
    for cls in public_classes():
        if not must_be_final(cls):
            continue
        marks = []
        if cls.__name__ in NOT_YET_FINAL:
            marks.append(
                pytest.mark.xfail(reason=f"{cls.__name__} is not decorated @final", strict=True)
            )
        params.append(pytest.param(cls, id=cls.__name__, marks=marks))
    return params


@pytest.mark.parametrize("cls", _final_params())
def test_public_classes_are_final(cls: type) -> None:
    assert getattr(cls, "__final__", False)


def test_the_final_check_covers_the_expected_classes() -> None:
    # Guards the filter above: a new public class is checked unless it is exempt by rule.
    checked = {cls.__name__ for cls in public_classes() if must_be_final(cls)}
    assert {"WorkerPool", "TaskContext", "ProgressInfo", "TaskHandle", "MapIterator"} <= checked
    exempt = {cls.__name__ for cls in public_classes() if not must_be_final(cls)}
    assert {"PoolStats", "WorkerStats", "Percentiles", "WorkerBridgeError"} <= exempt


# ------------------------------------------------------------------- the error tree


def tree_from_docstring() -> dict[str, list[str]]:
    """Parse the tree drawn in ``_exceptions.__doc__``: name -> parents named there."""
    doc = _exceptions.__doc__
    assert doc is not None
    drawing = doc.split("```")[1]
    parents: dict[str, list[str]] = {}
    stack: list[str] = []
    line_re = re.compile(r"^(?P<indent>[│ ]*)(?:[├└]── )?(?P<name>[A-Z]\w*Error)\b(?P<rest>.*)$")
    for line in drawing.splitlines():
        match = line_re.match(line)
        if match is None:
            continue  # a blank line or the continuation of a description
        depth = match.start("name") // 4  # each level of the drawing is 4 columns wide
        name = match["name"]
        del stack[depth:]
        if depth == 0:
            # A root may name its bases: "ValidationError (WorkerBridgeError and ValueError)".
            bases = re.match(r"\s*\(([^)]*)\)", match["rest"])
            named = re.findall(r"[A-Z]\w*", bases[1]) if bases else []
            parents[name] = [n for n in named if n.endswith("Error")]
        else:
            parents[name] = [stack[depth - 1]]
        stack.append(name)
    return parents


TREE = tree_from_docstring()


def test_docstring_tree_was_parsed() -> None:
    assert TREE["WorkerBridgeError"] == []
    assert TREE["TaskError"] == ["WorkerBridgeError"]
    assert TREE["RemoteTaskError"] == ["TaskError"]
    assert TREE["PoolClosedError"] == ["PoolError"]
    assert TREE["ValidationError"] == ["WorkerBridgeError", "ValueError"]


@pytest.mark.parametrize(
    ("name", "parents"), [pytest.param(n, p, id=n) for n, p in sorted(TREE.items())]
)
def test_exception_tree_matches_the_docstring(name: str, parents: list[str]) -> None:
    cls = getattr(workerbridge, name)
    assert issubclass(cls, Exception)
    for parent_name in parents:
        parent = getattr(workerbridge, parent_name, None) or getattr(builtins, parent_name)
        assert parent in cls.__bases__, f"{name} should derive directly from {parent_name}"
    # No base from the package that the drawing does not show.
    package_bases = [b.__name__ for b in cls.__bases__ if b.__module__ == "workerbridge"]
    assert set(package_bases) <= set(parents)


def test_every_exported_exception_is_in_the_tree() -> None:
    exported = {cls.__name__ for cls in public_classes() if issubclass(cls, BaseException)} - {
        "RemoteTraceback"
    }  # a __cause__ carrier, drawn in the text, not the tree
    assert exported == set(TREE)


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("TaskTimeoutError", TimeoutError),
        ("ValidationError", ValueError),
        ("TaskCancelledError", concurrent.futures.CancelledError),
        ("WorkerBridgeError", Exception),
        ("RemoteTraceback", Exception),
    ],
)
def test_builtin_bases(name: str, builtin: type[BaseException]) -> None:
    assert issubclass(getattr(workerbridge, name), builtin)


def test_the_callers_own_cancellation_is_never_a_workerbridge_error() -> None:
    assert not issubclass(workerbridge.TaskCancelledError, asyncio.CancelledError)
    assert not issubclass(asyncio.CancelledError, workerbridge.WorkerBridgeError)


def test_remote_traceback_is_not_a_workerbridge_error() -> None:
    assert not issubclass(workerbridge.RemoteTraceback, workerbridge.WorkerBridgeError)


@pytest.mark.parametrize("name", sorted(TREE))
def test_exception_names_end_in_error(name: str) -> None:
    assert name.endswith("Error")


# --------------------------------------------------------------------- pickling


def examples() -> list[Any]:
    wb = workerbridge
    return [
        pytest.param(wb.WorkerBridgeError("base"), id="WorkerBridgeError"),
        pytest.param(wb.TaskError("t", task_id=3), id="TaskError"),
        pytest.param(wb.TaskError("no id"), id="TaskError-no-id"),
        pytest.param(
            wb.RemoteTaskError(
                "builtins.KeyError: 'k'",
                task_id=4,
                remote_type="builtins.KeyError",
                remote_message="'k'",
            ),
            id="RemoteTaskError",
        ),
        pytest.param(
            wb.TaskTimeoutError("late", task_id=5, timeout=1.5, forced=True),
            id="TaskTimeoutError",
        ),
        pytest.param(wb.TaskCancelledError("stop", task_id=6), id="TaskCancelledError"),
        pytest.param(
            wb.WorkerCrashedError(
                "died",
                task_id=7,
                pid=1234,
                exitcode=-9,
                signal_name="SIGKILL",
                reason="unresponsive",
                attempts=3,
            ),
            id="WorkerCrashedError",
        ),
        pytest.param(wb.DeadlineExceededError("queued", task_id=8), id="DeadlineExceededError"),
        pytest.param(wb.PoolError("pool"), id="PoolError"),
        pytest.param(wb.PoolClosedError("closed"), id="PoolClosedError"),
        pytest.param(wb.PoolBrokenError("broken"), id="PoolBrokenError"),
        pytest.param(wb.QueueFullError("full"), id="QueueFullError"),
        pytest.param(wb.ProtocolError("bad frame"), id="ProtocolError"),
        pytest.param(wb.SerializationError("pickle"), id="SerializationError"),
        pytest.param(wb.SharedMemoryError("/dev/shm is full"), id="SharedMemoryError"),
        pytest.param(wb.ValidationError("bad value"), id="ValidationError"),
        pytest.param(wb.OperationError("failed", task_id=3), id="OperationError"),
        pytest.param(wb.IntegrityError("chunk 2 failed", task_id=3), id="IntegrityError"),
        pytest.param(wb.TruncationError("no final chunk"), id="TruncationError"),
        pytest.param(wb.NonceReuseError("nonce used before"), id="NonceReuseError"),
        pytest.param(wb.FormatError("not gzip"), id="FormatError"),
        pytest.param(wb.OutputLimitError("above max_output"), id="OutputLimitError"),
        pytest.param(wb.ChecksumMismatchError("sha256 differs"), id="ChecksumMismatchError"),
        pytest.param(wb.NetworkError("connection refused"), id="NetworkError"),
        pytest.param(wb.HTTPStatusError("HTTP 404 Not Found", task_id=1), id="HTTPStatusError"),
        pytest.param(wb.RemoteTraceback("Traceback ...\nValueError"), id="RemoteTraceback"),
    ]


def test_every_exported_exception_has_a_pickle_example() -> None:
    covered = {p.values[0].__class__.__name__ for p in examples()}
    exported = {cls.__name__ for cls in public_classes() if issubclass(cls, BaseException)}
    assert covered == exported


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("exc", examples())
def test_exceptions_survive_pickling(exc: BaseException, protocol: int) -> None:
    copy = pickle.loads(pickle.dumps(exc, protocol=protocol))
    assert type(copy) is type(exc)
    assert copy.args == exc.args
    assert str(copy) == str(exc)
    assert vars(copy) == vars(exc)


def test_pickled_keyword_fields_are_all_there() -> None:
    exc = workerbridge.WorkerCrashedError(
        "died", task_id=7, pid=1, exitcode=-11, signal_name="SIGSEGV", reason="died"
    )
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.task_id, copy.pid, copy.exitcode, copy.signal_name, copy.reason) == (
        7,
        1,
        -11,
        "SIGSEGV",
        "died",
    )
    assert copy.attempts == 1
    timeout = pickle.loads(pickle.dumps(workerbridge.TaskTimeoutError("x", timeout=2.0)))
    assert (timeout.task_id, timeout.timeout, timeout.forced) == (None, 2.0, False)
    remote = pickle.loads(
        pickle.dumps(workerbridge.RemoteTaskError("m", remote_type="builtins.KeyError"))
    )
    assert remote.is_instance_of(LookupError)
    assert not remote.is_instance_of(ValueError)
