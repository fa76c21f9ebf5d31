"""Helpers for testing code that uses workerbridge (and for workerbridge's own tests)."""

from . import _tasks as tasks

__all__ = ["tasks"]
