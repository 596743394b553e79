"""Files other users must not be able to swap: the directory chain and the descriptor actually read."""

import os
import stat
from pathlib import Path

import pytest

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.governor.reload import PolicyWatcher, read_policy
from jetvit_daemon.trustfs import UntrustedPath, check_trusted_dir, read_trusted, resolve_checked

GOOD = "version: 1\nladder:\n  - {name: a, mode: 15W}\n  - {name: b, mode: 25W}\n"
NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root (CI is root)")


def _trusted_base(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    return base


def test_regression_a_trusted_policy_in_a_directory_others_can_write_is_refused(tmp_path):
    """Issue 9, defect 7: a root-owned 0644 policy in a directory another user could write passed the strict
    check (only the file was stat'ed) and was replaced by that user's files."""
    d = _trusted_base(tmp_path) / "conf"
    d.mkdir()
    d.chmod(0o777)
    policy = d / "policy.yaml"
    policy.write_text(GOOD)
    policy.chmod(0o644)
    with pytest.raises(UntrustedPath, match=rf"directory {d} is writable by group and others \(drwxrwxrwx\), who "
                                            r"could replace 'policy.yaml' in it \(fix: chmod go-w"):
        read_trusted(policy)
    with pytest.raises(PolicyError, match=r"refused: the policy controls the hardware, and directory"):
        read_policy(policy, strict=True)
    assert read_policy(policy, strict=False) == GOOD.encode()  # policy_permissions: ignore


def test_a_trusted_file_in_trusted_directories_is_read_from_the_checked_descriptor(tmp_path):
    policy = _trusted_base(tmp_path) / "policy.yaml"
    policy.write_text(GOOD)
    policy.chmod(0o644)
    assert read_trusted(policy) == GOOD.encode()


def test_a_symlink_into_a_directory_others_can_write_is_refused(tmp_path):
    base = _trusted_base(tmp_path)
    open_dir = base / "drop"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    (open_dir / "real.yaml").write_text(GOOD)
    (base / "policy.yaml").symlink_to(open_dir / "real.yaml")
    with pytest.raises(UntrustedPath, match=rf"directory {open_dir} is writable"):
        read_trusted(base / "policy.yaml")


def test_a_configmap_style_symlink_chain_in_trusted_directories_is_followed(tmp_path):
    base = _trusted_base(tmp_path)
    data = base / "..2026_12_01"
    data.mkdir()
    (data / "policy.yaml").write_text(GOOD)
    (base / "..data").symlink_to("..2026_12_01")
    (base / "policy.yaml").symlink_to("..data/policy.yaml")
    real, problems = resolve_checked(base / "policy.yaml")
    assert real == str(data / "policy.yaml") and problems == []
    assert read_trusted(base / "policy.yaml") == GOOD.encode()


def test_the_directories_of_every_link_on_the_way_are_checked(tmp_path):
    base = _trusted_base(tmp_path)
    (base / "real.yaml").write_text(GOOD)
    hop = base / "hop"
    hop.mkdir()
    hop.chmod(0o757)  # writable by others: a link in it could be repointed
    (hop / "link").symlink_to(base / "real.yaml")
    (base / "policy.yaml").symlink_to(hop / "link")
    with pytest.raises(UntrustedPath, match=rf"directory {hop} is writable by others"):
        read_trusted(base / "policy.yaml")


@needs_root
def test_sticky_directory_entries_count_only_when_owned_by_root_or_the_daemon(tmp_path):
    sticky = _trusted_base(tmp_path) / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    ours = sticky / "ours.yaml"
    ours.write_text(GOOD)
    assert read_trusted(ours) == GOOD.encode()  # nobody else may rename or remove it: /tmp semantics
    theirs = sticky / "theirs.yaml"
    theirs.write_text(GOOD)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UntrustedPath, match=rf"{theirs} is owned by uid {NOBODY} in the sticky directory"):
        read_trusted(theirs)


@needs_root
def test_a_directory_owned_by_another_user_is_refused_even_without_write_bits(tmp_path):
    d = _trusted_base(tmp_path) / "alice"
    d.mkdir(mode=0o755)
    (d / "policy.yaml").write_text(GOOD)
    os.chown(d, NOBODY, NOBODY)
    with pytest.raises(UntrustedPath, match=rf"directory {d} is owned by uid {NOBODY}"):
        read_trusted(d / "policy.yaml")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = _trusted_base(tmp_path) / "policy.yaml"
    os.mkfifo(fifo, 0o644)
    with pytest.raises(UntrustedPath, match="not a regular file"):
        read_trusted(fifo)


def test_the_watcher_parses_the_bytes_it_checked(tmp_path):
    """The bytes handed to the parser are the ones read from the checked descriptor, not a second open."""
    policy = _trusted_base(tmp_path) / "policy.yaml"
    policy.write_text(GOOD)
    policy.chmod(0o644)
    seen = []

    def load(path, data):
        seen.append(data)
        policy.write_text(GOOD.replace("name: b", "name: swapped"))  # a swap after the read changes nothing
        return parse_policy(data.decode(), str(path))

    applied = []
    watcher = PolicyWatcher(policy, load, applied.append, lambda r, m: None, check_perms=True,
                            initial_text=b"")
    assert watcher.reload_now() is True
    assert seen == [GOOD.encode()] and [s.name for s in applied[0].ladder] == ["a", "b"]


def test_a_state_directory_others_can_write_is_refused(tmp_path):
    d = _trusted_base(tmp_path) / "state"
    d.mkdir()
    d.chmod(0o775)
    with pytest.raises(UntrustedPath, match=rf"{d} is writable by group \(drwxrwxr-x; fix: chmod go-w {d}\)"):
        check_trusted_dir(d)
    d.chmod(0o700)
    check_trusted_dir(d)


@needs_root
def test_a_state_directory_owned_by_another_user_is_refused(tmp_path):
    d = _trusted_base(tmp_path) / "state"
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)
    with pytest.raises(UntrustedPath, match=rf"{d} is owned by uid {NOBODY}, not by the daemon's uid 0"):
        check_trusted_dir(d)
    assert stat.S_ISDIR(os.stat(d).st_mode)
