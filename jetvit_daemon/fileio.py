"""Reading from a descriptor the daemon opened itself, never more than it can afford.

>>> data = read_fd(fd, max_bytes=256 * 1024 + 1)   # at most that many bytes, or all of it with None  # doctest: +SKIP

The one home of the chunked read behind `yamlfile.read_bounded` (every YAML file) and `trustfs.read_trusted`
(the policy, read from the descriptor that was checked): a 10 GB file, `/dev/zero` or a growing file planted
as the path costs at most `max_bytes` (+ one 64 KiB chunk of buffering).
"""

import os
from typing import List, Optional

CHUNK_BYTES = 1 << 16


def read_fd(fd: int, max_bytes: Optional[int] = None) -> bytes:
    """Read `fd` to its end, or until `max_bytes` were read (None: no cap). OSError as os.read raises it."""
    chunks: List[bytes] = []
    size = 0
    while max_bytes is None or size < max_bytes:
        chunk = os.read(fd, CHUNK_BYTES if max_bytes is None else min(CHUNK_BYTES, max_bytes - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
