"""Layer 1: bytes between processes: pipes and named shared-memory segments."""

from ._buffers import (
    DEFAULT_SHM_THRESHOLD,
    AttachmentCache,
    BlockCache,
    copied_on_load,
    dumps_out_of_band,
    has_large_buffer,
    has_memoryview,
)
from ._pipe import PIPE_SIZE, enlarge_pipe, take_fd, write_all
from ._shared_buffer import (
    MovedBuffers,
    SharedBuffer,
    TaskSide,
    adopted,
    release_unreturned,
    restore_moved,
    transfer,
)
from ._shm import PREFIX, Segment, remove_orphans, segments_of

__all__ = [
    "DEFAULT_SHM_THRESHOLD",
    "PIPE_SIZE",
    "PREFIX",
    "AttachmentCache",
    "BlockCache",
    "MovedBuffers",
    "Segment",
    "SharedBuffer",
    "TaskSide",
    "adopted",
    "copied_on_load",
    "dumps_out_of_band",
    "enlarge_pipe",
    "has_large_buffer",
    "has_memoryview",
    "release_unreturned",
    "remove_orphans",
    "restore_moved",
    "segments_of",
    "take_fd",
    "transfer",
    "write_all",
]
