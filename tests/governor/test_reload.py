"""Live policy reload: content-based, debounced, through rename-saves and symlink swaps, validated first."""

import os
from pathlib import Path
from typing import List

import pytest

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import Policy, parse_policy
from jetvit_daemon.governor.reload import PolicyWatcher, check_permissions

GOOD = "version: 1\nladder:\n  - {name: a, mode: 15W}\n  - {name: b, mode: 25W}\n"
OTHER = GOOD.replace("name: b", "name: c")


class Recorder:
    def __init__(self) -> None:
        self.applied: List[Policy] = []
        self.reports: List[str] = []

    def watcher(self, path: Path, check_perms: bool = True) -> PolicyWatcher:
        return PolicyWatcher(path, lambda p, data: parse_policy(data.decode(), str(p)), self.applied.append,
                             lambda r, m: self.reports.append(r),
                             check_perms=check_perms)


def names(policy: Policy) -> List[str]:
    return [s.name for s in policy.ladder]


def test_a_saved_change_is_applied_once_it_has_held_for_one_poll(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    rec = Recorder()
    w = rec.watcher(path)
    assert w.poll() is None  # unchanged
    path.write_text(OTHER)
    assert w.poll() is None  # seen, not yet trusted: a writer may still be writing
    assert w.poll() is True
    assert names(rec.applied[-1]) == ["a", "c"] and rec.reports == ["ok"]
    assert w.poll() is None  # applied once


def test_an_invalid_save_keeps_the_running_policy_and_is_reported_once(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    rec = Recorder()
    w = rec.watcher(path)
    path.write_text("version: 1\nladder: [\n")  # half written, or simply broken
    w.poll()
    assert w.poll() is False
    assert rec.applied == [] and rec.reports == ["error"]
    assert w.poll() is None and w.poll() is None  # the same broken content is not reported again
    path.write_text(OTHER)
    w.poll()
    assert w.poll() is True and names(rec.applied[-1]) == ["a", "c"]


def test_editor_rename_save_and_configmap_symlink_swap_are_followed(tmp_path):
    # Kubernetes ConfigMap volume layout: policy.yaml → ..data/policy.yaml, ..data → ..2026_v1 (swapped).
    v1, v2 = tmp_path / "..v1", tmp_path / "..v2"
    v1.mkdir()
    v2.mkdir()
    (v1 / "policy.yaml").write_text(GOOD)
    (v2 / "policy.yaml").write_text(OTHER)
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/policy.yaml", tmp_path / "policy.yaml")
    rec = Recorder()
    w = rec.watcher(tmp_path / "policy.yaml")
    os.symlink("..v2", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the atomic swap kubelet does
    w.poll()
    assert w.poll() is True and names(rec.applied[-1]) == ["a", "c"]
    # An editor that writes a temporary file and renames it over the original.
    plain = tmp_path / "plain.yaml"
    plain.write_text(GOOD)
    w2 = rec.watcher(plain)
    tmp = tmp_path / ".plain.yaml.swp"
    tmp.write_text(OTHER.replace("name: c", "name: d"))
    os.replace(tmp, plain)
    w2.poll()
    assert w2.poll() is True and names(rec.applied[-1]) == ["a", "d"]


def test_sighup_reloads_at_once_and_a_vanished_file_is_an_error(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    rec = Recorder()
    w = rec.watcher(path)
    path.write_text(OTHER)
    assert w.reload_now() is True and names(rec.applied[-1]) == ["a", "c"]
    path.unlink()
    assert w.reload_now() is False and rec.reports[-1] == "error"


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_policy_others_can_write_is_refused(tmp_path, mode):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    path.chmod(mode)
    with pytest.raises(PolicyError, match=r"refused: the policy controls the hardware, and it is writable by"):
        check_permissions(path)
    rec = Recorder()
    w = rec.watcher(path)
    path.write_text(OTHER)
    assert w.reload_now() is False and rec.applied == []
    assert rec.watcher(path, check_perms=False).reload_now() is True  # policy_permissions: ignore


def test_owner_and_mode_the_daemon_can_trust_pass(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    path.chmod(0o644)
    check_permissions(path)
