"""flare/io.py: a file or folder written through it is the old one or the new one, never half."""

import os
import stat

import pytest

from flare.io import atomic_file, atomic_folder, write_text_atomic
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
