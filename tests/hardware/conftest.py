"""Fixtures for hardware tests: fixture board trees and a runner that plays nvpmodel/systemctl.

Test modules that need the helper classes themselves import `boardtrees` (this directory is put on
sys.path here, since test directories are not packages and pytest runs with --import-mode=importlib).
"""

import sys
from pathlib import Path
from typing import Callable, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import boardtrees


@pytest.fixture
def make_board(tmp_path: Path) -> Callable[[str], Path]:
    """make_board("orin-nano-jp6") -> root of a fresh fixture tree for that board (see boardtrees.BOARDS)."""

    def make(board: str) -> Path:
        return boardtrees.make_tree(tmp_path, board)

    return make


@pytest.fixture(params=boardtrees.BOARDS)
def any_board(request: pytest.FixtureRequest, tmp_path: Path) -> Tuple[str, Path]:
    """(board name, tree root), once per fixture board."""
    return request.param, boardtrees.make_tree(tmp_path, request.param)


@pytest.fixture
def fake_runner_for() -> Callable[[Path, str], boardtrees.FakeBoardRunner]:
    """fake_runner_for(root, board) -> a FakeBoardRunner applying modes to that board's devfreq node."""

    def make(root: Path, board: str) -> boardtrees.FakeBoardRunner:
        return boardtrees.FakeBoardRunner(root, devfreq_dir=boardtrees.SPECS[board].devfreq_dir)

    return make
