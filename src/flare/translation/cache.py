"""A disk cache that makes translation resumable and repeatable.

One JSONL file per (model, source language, target language). Each line holds one translation:

    {"key": "<sha256 of settings id + text>", "settings": "<settings id>", "text": ..., "translation": ...}

The key covers the text *and* the generation settings (model, codes, beams, lengths, dtype, ...),
so entries made with other settings sit in the same file but are never reused. Lines are only
ever appended, a batch at a time, flushed and fsync'ed, so a run that is killed loses at most
the batch in flight. A killed write can leave a truncated last line: loading ignores it, and the
next append cuts it off first, so the file never holds a broken line followed by good ones. A
broken line anywhere else means the file was damaged some other way: that is a DataError naming
the line. One process at a time per file (no locking).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from flare.errors import DataError

CACHE_FORMAT = 1


def settings_id(settings: Mapping) -> str:
    """A short stable hash of the generation settings (JSON with sorted keys)."""
    blob = json.dumps({"cache_format": CACHE_FORMAT, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cache_file(cache_dir: str | os.PathLike, model_name: str, src: str, tgt: str) -> Path:
    """``cache_dir/<readable model name>-<hash>/<src>-<tgt>.jsonl``."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.strip("/\\")).strip("._")[-60:] or "model"
    digest = hashlib.sha256(model_name.encode("utf-8")).hexdigest()[:8]
    return Path(cache_dir) / f"{readable}-{digest}" / f"{src}-{tgt}.jsonl"


class TranslationCache:
    """Translations of one (model, src, tgt) under one set of generation settings."""

    def __init__(self, path: str | os.PathLike, settings: Mapping):
        self.path = Path(path)
        self.settings = dict(settings)
        self.settings_id = settings_id(settings)
        self._entries: dict[str, str] = {}
        self._good_size = 0  # bytes of the file up to the last complete, valid line
        self.dropped_tail = False  # whether a truncated last line was found and ignored
        self._lines_seen = 0
        self._load()

    # -- reading ---------------------------------------------------------------------------
    def _load(self) -> None:
        if self.path.exists():
            self._good_size = self._ingest(self.path.read_bytes())

    def _ingest(self, data: bytes) -> int:
        """Read the complete lines of ``data`` (file bytes from ``_good_size`` on).

        Returns how many bytes of it are complete, valid lines. A piece after the last newline
        is a cut-off line (ignored); so is an unreadable line with nothing after it.
        """
        pieces = data.split(b"\n")
        used = 0
        self.dropped_tail = bool(pieces[-1].strip())
        for index, raw in enumerate(pieces[:-1]):
            self._lines_seen += 1
            if raw.strip():
                try:
                    entry = json.loads(raw.decode("utf-8", "surrogatepass"))
                    key, translation = entry["key"], entry["translation"]
                    if not isinstance(key, str) or not isinstance(translation, str):
                        raise TypeError("key and translation must be strings")
                except (ValueError, KeyError, TypeError) as err:
                    if all(not rest.strip() for rest in pieces[index + 1 :]):
                        self.dropped_tail = True  # damaged by a crash, nothing after it
                        return used
                    raise DataError(
                        f"translation cache line is damaged ({err})",
                        path=self.path,
                        row=self._lines_seen,
                        hint="delete the file (its translations are then redone) or the damaged line",
                    ) from err
                self._entries[key] = translation
            used += len(raw) + 1
        return used

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.settings_id}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, text: str) -> str | None:
        return self._entries.get(self.key(text))

    def __contains__(self, text: str) -> bool:
        return self.key(text) in self._entries

    def __len__(self) -> int:
        """Number of entries in the file (all settings)."""
        return len(self._entries)

    # -- writing ---------------------------------------------------------------------------
    def add_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Append (text, translation) pairs as one write, then flush and fsync."""
        lines = []
        for text, translation in pairs:
            key = self.key(text)
            entry = {"key": key, "settings": self.settings_id, "text": text, "translation": translation}
            lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
            self._entries[key] = translation
        if not lines:
            return
        blob = "".join(lines).encode("utf-8", "surrogatepass")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            # lines another writer (e.g. another settings' cache in this process) appended since
            # we last looked are read in; a cut-off tail of a killed run is cut off
            size = handle.seek(0, os.SEEK_END)
            if size < self._good_size:  # replaced by a shorter file: read it from the start
                self._good_size = self._lines_seen = 0
            handle.seek(self._good_size)
            rest = handle.read()
            if rest:
                self._good_size += self._ingest(rest)
            if size != self._good_size:
                handle.truncate(self._good_size)
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
            self._good_size = handle.tell()
        self.dropped_tail = False
