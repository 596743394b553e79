"""A missing optional dependency is one clear line naming the extra to install, never a traceback."""

import re
import sys
from pathlib import Path

import pytest

from jetvit_daemon import cli
from jetvit_daemon.extras import INSTALL_HINTS, MissingDependency, require

PYPROJECT = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()


def test_bench_without_onnxruntime_names_the_cpu_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` sees when it is absent
    code = cli.main(["bench", "--seconds", "0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "onnxruntime" in err and "pip install 'jetvit-daemon[cpu]'" in err


def test_require_returns_the_module_when_present():
    assert require("json", "a test").dumps({}) == "{}"


def test_require_names_the_purpose_and_the_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependency, match=r"the plot needs matplotlib.*jetvit-daemon\[plot\]"):
        require("matplotlib", "the plot")


@pytest.mark.parametrize("module", sorted(INSTALL_HINTS))
def test_every_hinted_extra_exists_in_pyproject(module):
    for extra in re.findall(r"jetvit-daemon\[(\w+)\]", INSTALL_HINTS[module]):
        assert re.search(rf"^{extra} = \[", PYPROJECT, re.M), f"pyproject.toml has no [{extra}] extra"
