"""Suite-wide rules. Tests marked `jetson` need a real board (TensorRT, the GPU, the board's own files) and are
skipped where there is none: L4T writes /etc/nv_tegra_release on every Jetson, JetPack 4 through 7."""

from pathlib import Path
from typing import List

import pytest

NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if NV_TEGRA_RELEASE.exists():
        return
    skip = pytest.mark.skip(reason=f"needs a real Jetson board ({NV_TEGRA_RELEASE} not found)")
    for item in items:
        if "jetson" in item.keywords:
            item.add_marker(skip)
