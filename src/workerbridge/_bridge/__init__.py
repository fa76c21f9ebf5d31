"""Layer: the facade. ``WorkerBridge`` and its four bridges (crypto, file, compression,
network): they check arguments in the caller, split work into channel calls and put the
results together. The work itself runs in ``workerbridge._channels``."""

from ._compression import CompressionBridge
from ._crypto import CryptoBridge
from ._facade import WorkerBridge
from ._file import FileBridge
from ._network import NetworkBridge

__all__ = ["CompressionBridge", "CryptoBridge", "FileBridge", "NetworkBridge", "WorkerBridge"]
