"""Where converted models live, and how a folder is written there safely.

A converted model is written into a hidden temporary folder next to its final place
and renamed at the end, so a crash or Ctrl-C never leaves a half-written model behind,
and a folder that exists is always complete.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flare.io import ENV_VAR, atomic_folder, cache_root, folder_lock  # noqa: F401 (the cache's names, kept here)

# Written last into every converted folder: its presence marks a finished conversion.
MARKER = "provenance.json"


def model_dir(alias: str) -> Path:
    """The folder that holds (or will hold) the converted copy of `alias`."""
    return cache_root() / "models" / alias


def is_complete(folder: Path) -> bool:
    """True when `folder` holds a finished conversion."""
    return (folder / MARKER).is_file() and (folder / "config.json").is_file()


def work_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A scratch folder for downloads, inside the cache (same disk; /tmp may be small)."""
    root = cache_root() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=root)


def remove_leftovers(target: Path, work_prefix: str) -> None:
    """Delete partial folders and scratch downloads that a killed run left behind.

    Call only while holding `folder_lock(target)`: nobody else can be writing them then.
    """
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)
    scratch = cache_root() / "tmp"
    if scratch.is_dir():
        for stale in scratch.glob(f"{work_prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
