"""Layer 1: bytes between processes: pipes and named shared-memory segments."""

from ._pipe import PIPE_SIZE, enlarge_pipe, take_fd, write_all
from ._shm import PREFIX, Segment, remove_orphans, segments_of

__all__ = [
    "PIPE_SIZE",
    "PREFIX",
    "Segment",
    "enlarge_pipe",
    "remove_orphans",
    "segments_of",
    "take_fd",
    "write_all",
]
