"""The lab registry: entries, lookup, owner liveness (no root); removing labs and their processes (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.lab import netns, registry
from netsim.lab.lab import Lab
from netsim.lab.registry import LabError
from netsim.lab.topology import standard_topology

ChildLab = tuple[subprocess.Popen[str], str, list[str]]  # see the child_lab fixture


def _entry(runtime: Path, lab_id: str, *, keep: bool = False, namespaces: tuple[str, ...] = ()) -> Path:
    """Register a lab owned by this process (no namespaces are made)."""
    directory = registry.lab_dir(lab_id, runtime)
    directory.mkdir(parents=True)
    info = {"lab": lab_id, "topology": "t", "nodes": {}}
    registry.write_entry(directory, info, namespaces=namespaces, keep=keep)
    return directory


def _orphan(directory: Path) -> None:
    """Make the entry's owner a process that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    path = directory / "lab.json"
    entry = json.loads(path.read_text())
    entry["owner_pid"] = proc.pid
    path.write_text(json.dumps(entry))


def test_an_entry_names_its_lab_owner_and_namespaces(tmp_path: Path) -> None:
    _entry(tmp_path, "nsa1", keep=True, namespaces=("nsa1-a", "nsa1-b"))
    (entry,) = registry.registered(tmp_path)
    assert registry.owner_alive(entry)
    assert entry.pop("created").endswith("Z")
    assert entry.pop("owner_start")
    assert entry == {
        "lab": "nsa1",
        "topology": "t",
        "nodes": {},
        "owner_pid": os.getpid(),
        "keep": True,
        "namespaces": ["nsa1-a", "nsa1-b"],
    }
    assert list((tmp_path / "nsa1").iterdir()) == [tmp_path / "nsa1" / "lab.json"]  # no temporary file left


def test_registered_is_sorted_and_skips_unreadable_entries(tmp_path: Path) -> None:
    _entry(tmp_path, "nsb2")
    _entry(tmp_path, "nsb1")
    (tmp_path / "nsb3").mkdir()
    (tmp_path / "nsb3" / "lab.json").write_text('{"lab": "nsb3", ')  # being written
    assert [e["lab"] for e in registry.registered(tmp_path)] == ["nsb1", "nsb2"]
    assert registry.registered(tmp_path / "missing") == []


def test_lookup_finds_a_lab_or_names_the_running_ones(tmp_path: Path) -> None:
    _entry(tmp_path, "nsc1")
    _entry(tmp_path, "nsc2")
    assert registry.lookup("nsc2", tmp_path)["lab"] == "nsc2"
    with pytest.raises(LabError, match=r"^no lab 'nsnope' \(running labs: nsc1, nsc2\)$"):
        registry.lookup("nsnope", tmp_path)
    with pytest.raises(LabError, match=r"^no lab 'nsc1' \(running labs: none\)$"):
        registry.lookup("nsc1", tmp_path / "empty")


def test_owner_alive_tells_a_dead_or_reused_pid_from_the_owner(tmp_path: Path) -> None:
    directory = _entry(tmp_path, "nsd1")
    (entry,) = registry.registered(tmp_path)
    assert registry.owner_alive(entry)
    assert not registry.owner_alive({**entry, "owner_start": "0"})  # same pid, another process
    _orphan(directory)
    (orphaned,) = registry.registered(tmp_path)
    assert not registry.owner_alive(orphaned)


def test_cleanup_removes_only_labs_whose_owner_died(tmp_path: Path) -> None:
    _orphan(_entry(tmp_path, "nse1"))
    _orphan(_entry(tmp_path, "nse2", keep=True))  # kept by `netsim up`: survives its owner
    _entry(tmp_path, "nse3")  # owner alive
    assert registry.cleanup(runtime_dir=tmp_path) == ["nse1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nse2", "nse3"]
    assert registry.cleanup(runtime_dir=tmp_path) == []
    assert registry.cleanup(all_labs=True, runtime_dir=tmp_path) == ["nse2", "nse3"]
    assert list(tmp_path.iterdir()) == []


def test_the_runtime_dir_follows_netsim_runtime_dir(tmp_path: Path) -> None:
    code = "from netsim.lab import registry; print(registry.lab_dir('nsf1'))"
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout == f"{tmp_path / 'nsf1'}\n"


# ---- real labs (root) --------------------------------------------------------------------------------------


@pytest.mark.root
def test_cleanup_removes_a_dead_owners_lab_but_not_a_kept_one(
    tmp_path: Path, child_lab: Callable[[Path], ChildLab], no_leftovers: None
) -> None:
    proc, orphan_id, names = child_lab(tmp_path)
    kept = Lab(standard_topology("open", "open"), keep=True, coturn=False, runtime_dir=tmp_path)
    with kept:
        pass
    proc.kill()  # no chance to clean up: the lab is orphaned
    proc.wait()
    assert all(netns.exists(n) for n in names)
    assert registry.cleanup(runtime_dir=tmp_path) == [orphan_id]
    assert not any(netns.exists(n) for n in names)
    assert all(netns.exists(n) for n in kept.namespaces.values())
    assert registry.cleanup(runtime_dir=tmp_path) == []
    assert registry.cleanup(all_labs=True, runtime_dir=tmp_path) == [kept.id]
    assert not any(netns.exists(n) for n in kept.namespaces.values())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.root
def test_remove_kills_the_labs_processes_and_nothing_else(tmp_path: Path, no_leftovers: None) -> None:
    lab = Lab(standard_topology("full-cone", "open"), keep=True, coturn=False, runtime_dir=tmp_path)
    with lab:
        # nsenter joins the namespace before exec: wait for that, or remove() may run before it is inside
        inside = netns.popen(lab.netns("a"), ["sh", "-c", "echo in; exec sleep 60"], stdout=subprocess.PIPE)
        assert inside.stdout is not None and inside.stdout.readline() == b"in\n"
    outside = subprocess.Popen(["sleep", "60"])
    try:
        registry.remove(registry.lookup(lab.id, tmp_path), tmp_path)
        assert inside.wait(timeout=5) == -9
        assert outside.poll() is None
        assert not any(netns.exists(n) for n in lab.namespaces.values())
        assert not lab.workdir.exists()
    finally:
        outside.kill()
        outside.wait()
        inside.kill()
        inside.wait()
        if inside.stdout is not None:
            inside.stdout.close()


@pytest.mark.root
def test_remove_touches_only_namespaces_named_after_the_lab(tmp_path: Path, scratch_netns: str) -> None:
    _entry(tmp_path, "nsg1", namespaces=(scratch_netns,))  # a damaged entry naming another namespace
    registry.remove(registry.lookup("nsg1", tmp_path), tmp_path)
    assert netns.exists(scratch_netns)
    assert list(tmp_path.iterdir()) == []


def test_cleanup_removes_an_unlisted_directory_of_a_dead_owner_only(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"ns{dead.pid:x}beef").mkdir()  # claimed, then killed before the entry was written
    (tmp_path / f"ns{os.getpid():x}beef").mkdir()  # a live owner may be writing its entry right now
    (tmp_path / "notalab").mkdir()
    assert registry.cleanup(runtime_dir=tmp_path) == [f"ns{dead.pid:x}beef"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"ns{os.getpid():x}beef", "notalab"])


def test_a_runtime_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    afile = tmp_path / "run"
    afile.write_text("")
    with pytest.raises(LabError, match=rf"^NETSIM_RUNTIME_DIR '{afile}': a file, not a directory$"):
        registry.ensure_runtime_dir(afile)
    registry.ensure_runtime_dir(tmp_path / "new" / "run")
    assert (tmp_path / "new" / "run").is_dir()


@pytest.mark.root
def test_held_open_identifies_only_live_bind_mounts(tmp_path: Path, scratch_netns: str) -> None:
    plain = f"ns{os.getpid():x}f00d-plain"  # a file left in /run/netns without its bind mount
    netns.path(plain).touch()
    try:
        with registry.held_open([scratch_netns, plain, "ns0000-missing"]) as wanted:
            st = os.stat(netns.path(scratch_netns))
            assert wanted == {(st.st_dev, st.st_ino)}
    finally:
        netns.path(plain).unlink()
