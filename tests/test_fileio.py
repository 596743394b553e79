"""fileio.read_fd: the one chunked, capped read behind yamlfile.read_bounded and trustfs.read_trusted."""

import os
from pathlib import Path

from jetvit_daemon.fileio import CHUNK_BYTES, read_fd


def _read(path: Path, max_bytes=None) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_fd(fd, max_bytes)
    finally:
        os.close(fd)


def test_read_fd_reads_a_file_of_several_chunks_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 3 + 7)
    (tmp_path / "f").write_bytes(data)
    assert _read(tmp_path / "f") == data


def test_read_fd_stops_at_the_cap_even_on_an_endless_device() -> None:
    assert _read(Path("/dev/zero"), 3 * CHUNK_BYTES + 5) == b"\0" * (3 * CHUNK_BYTES + 5)


def test_read_fd_with_a_cap_above_the_size_returns_the_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"version: 1\n")
    assert _read(tmp_path / "f", 1 << 20) == b"version: 1\n"
    assert _read(tmp_path / "f", 4) == b"vers"
