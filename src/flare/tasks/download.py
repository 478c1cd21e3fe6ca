"""Moved to flare.tasks.fetch (the engine) and the task modules (each task's layout); this name stays for old imports."""

from flare.tasks.fetch import TaskSource, download, expected_files, fetch_task_data
from flare.tasks.nusax import NUSAX_COMMIT
from flare.tasks.registry import SOURCES

__all__ = ["NUSAX_COMMIT", "SOURCES", "TaskSource", "download", "expected_files", "fetch_task_data"]
