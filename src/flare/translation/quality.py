"""Translation quality against a human reference: chrF and BLEU with ``sacrebleu``.

Parallel tasks (NusaX, XNLI, XQuAD) have human translations, so stage 2's machine translation
can be scored where it replaces one: ``score_translations(hypotheses, references)`` gives
corpus chrF (sacrebleu's default chrF2: character 6-grams, beta 2) and corpus BLEU (default
13a tokenization), both 0-100, over segments (each text field of an example is one segment).

``QualityTable`` is the file ``<output_dir>/translations/quality.json`` next to the cached
translations: one row per (model, language, split, direction), replaced when measured again,
written atomically. ``quality_markdown(run_dir)`` renders it for ``flare translate`` and
``flare report``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flare.errors import DataError
from flare.io import write_text_atomic

QUALITY_FILE = "quality.json"
QUALITY_MD = "quality.md"
_KEY = ("model", "language", "split", "src", "tgt")


def score_translations(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | int]:
    """Corpus chrF and BLEU (0-100) of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise DataError(f"{len(hypotheses)} translations but {len(references)} references")
    if not hypotheses:
        raise DataError("no translations to score")
    hyps, refs = list(hypotheses), [list(references)]
    return {
        "chrf": round(CHRF().corpus_score(hyps, refs).score, 4),
        "bleu": round(BLEU().corpus_score(hyps, refs).score, 4),
        "segments": len(hyps),
    }


def quality_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "translations" / QUALITY_FILE


class QualityTable:
    """The rows of ``quality.json``; ``add`` replaces a row with the same key and writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                rows = data["rows"]
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise TypeError("rows must be a list of objects")
            except (ValueError, KeyError, TypeError) as err:
                raise DataError(
                    f"translation quality file is damaged ({err})",
                    path=self.path,
                    hint="delete it: it is rewritten when the translations are scored again",
                ) from err
            self.rows = rows

    def add(self, row: dict[str, Any]) -> None:
        key = tuple(row.get(k) for k in _KEY)
        self.rows = [r for r in self.rows if tuple(r.get(k) for k in _KEY) != key] + [row]
        self.rows.sort(key=lambda r: tuple(str(r.get(k)) for k in _KEY))
        self.write()

    def get(self, **key: Any) -> dict[str, Any] | None:
        for row in self.rows:
            if all(row.get(k) == v for k, v in key.items()):
                return row
        return None

    def write(self) -> None:
        write_text_atomic(self.path, json.dumps({"rows": self.rows}, indent=2, ensure_ascii=False) + "\n")
        write_text_atomic(self.path.with_name(QUALITY_MD), markdown_table(self.rows))


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per measured (model, language, split, direction)."""
    lines = [
        "| model | language | split | direction | segments | chrF | BLEU |",
        "|:---|:---|:---|:---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.get('model')} | {r.get('language')} | {r.get('split')} | {r.get('src')}→{r.get('tgt')} "
            f"| {r.get('segments')} | {r.get('chrf', float('nan')):.1f} | {r.get('bleu', float('nan')):.1f} |"
        )
    return "\n".join(lines) + "\n"


def quality_markdown(run_dir: str | os.PathLike) -> str:
    """The quality table of an experiment's translations with a note, or "" when none was measured."""
    path = quality_path(run_dir)
    if not path.is_file():
        return ""
    rows = QualityTable(path).rows
    if not rows:
        return ""
    note = (
        "\nMachine translation scored against the human translation of the same examples "
        "(sacrebleu corpus chrF2 and BLEU-13a, 0-100; segments: text fields).\n"
    )
    return markdown_table(rows) + note
