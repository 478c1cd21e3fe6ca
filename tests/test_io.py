"""flare/io.py: a file or folder written through it is the old one or the new one, never half; a
folder lock names its live holder."""

import os
import socket
import stat
import subprocess
import sys

import pytest

from flare.io import atomic_file, atomic_folder, folder_lock, lock_holder, lock_path, write_text_atomic
from flare.weights import save_weights


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["result.json"]
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["result.json"]


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        save_weights({}, tmp_path / "w.safetensors")
    finally:
        os.umask(umask)
    for name in ("a.txt", "w.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_folder_is_replaced_only_once_the_new_one_is_complete(tmp_path):
    target = tmp_path / "entry"
    with atomic_folder(target) as tmp:
        (tmp / "index.json").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "index.json").write_text("2")
            raise RuntimeError("killed")
    assert (target / "index.json").read_text() == "1" and sorted(os.listdir(tmp_path)) == ["entry"]
    with atomic_folder(target) as tmp:
        (tmp / "index.json").write_text("3")
    assert (target / "index.json").read_text() == "3" and sorted(os.listdir(tmp_path)) == ["entry"]


def test_a_hash_named_folder_keeps_the_first_writers_copy(tmp_path):
    """keep_existing (cache entries named by their content's hash): a second writer of the same
    folder, one started before the first finished included, leaves the first copy in place, whose
    files a reader may have open, and no temporary folder behind."""
    target = tmp_path / "entry"
    with atomic_folder(target, keep_existing=True) as late:
        (late / "index.json").write_text("late")
        with atomic_folder(target, keep_existing=True) as first:
            (first / "index.json").write_text("first")
        assert (target / "index.json").read_text() == "first"
        reader = open(target / "index.json")
    assert (target / "index.json").read_text() == "first" and sorted(os.listdir(tmp_path)) == ["entry"]
    assert reader.read() == "first"
    reader.close()


def test_a_lock_names_its_live_holder_and_nobody_once_released_or_its_holder_is_gone(tmp_path):
    target = tmp_path / "run"
    assert lock_holder(target) is None  # never locked
    with folder_lock(target) as held:
        assert held and lock_holder(target) == os.getpid()
        with folder_lock(target, wait=False) as second:  # another open file: as another process would
            assert second is False
        assert lock_holder(target) == os.getpid()  # the refused try left the holder's record alone
    assert lock_holder(target) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(target).write_text(f"{dead.pid} {socket.gethostname()}\n")  # a holder killed while holding it
    assert lock_holder(target) is None
    lock_path(target).write_text(f"{os.getpid()} another-host\n")  # a holder on another machine
    assert lock_holder(target) is None
