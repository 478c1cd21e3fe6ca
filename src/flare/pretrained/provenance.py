"""The record of where a converted model came from, kept next to its weights."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from flare import __version__ as flare_version
from flare.pretrained.cache import MARKER


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def write_provenance(folder: Path, record: dict) -> None:
    """Write PROVENANCE.md (for people) and provenance.json (for code).

    `record` holds: alias, model, hub_id, license, sources (list of dicts with package,
    version, file, sha256), converter, converter_version, caveats (list), and any extra keys.
    The json file is written last: it marks the conversion as finished.
    """
    record = {"converted_at": now_utc(), "flare_version": flare_version, **record}
    (folder / "PROVENANCE.md").write_text(render_markdown(record), encoding="utf-8")
    (folder / MARKER).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_provenance(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def render_markdown(record: dict) -> str:
    lines = [f"# {record['model']} (flare alias `{record['alias']}`)", ""]
    lines.append(f"- Original model: {record['hub_id']} on the Hugging Face hub; license: {record['license']}")
    lines.append(f"- Converted {record['converted_at']} by {record['converter']} "
                 f"version {record['converter_version']} (flare {record['flare_version']})")
    if "dtype" in record:
        lines.append(f"- Stored as: {record['dtype']}")
    if "size_bytes" in record:
        lines.append(f"- Folder size: {record['size_bytes']:,} bytes")
    if "provisioning_seconds" in record:
        lines.append(f"- Download and conversion took {record['provisioning_seconds']} s")
    lines += ["", "## Sources (PyPI)", ""]
    for src in record["sources"]:
        lines.append(f"- `{src['package']}=={src['version']}`, file `{src['file']}`, sha256 `{src['sha256']}`")
    if "assembled" in record:
        whole = record["assembled"]
        lines.append(f"- concatenated in this order: `{whole['file']}`, {whole['size_bytes']:,} bytes, "
                     f"sha256 `{whole['sha256']}`")
    lines += ["", "## Caveats", ""]
    lines += [f"- {caveat}" for caveat in record["caveats"]]
    return "\n".join(lines) + "\n"
