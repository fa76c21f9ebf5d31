"""Layer 1: bytes between processes (pipes; shared-memory segments come with issue 4)."""

from ._pipe import PIPE_SIZE, enlarge_pipe, take_fd, write_all

__all__ = ["PIPE_SIZE", "enlarge_pipe", "take_fd", "write_all"]
