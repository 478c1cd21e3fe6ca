"""`flare predict`: a trained adapter of an experiment on new raw text.

Input: a CSV, TSV or JSONL file (text columns by name), a plain text file or standard input (one
text per line; classification only). The English side of each text comes from a column (`english_columns`), from the
experiment's translator (`translation.model`), or is absent: then FLARE runs without its source,
which is its plain-LoRA path (a note says so). Output: one row per input with the predicted label
and the probability of every label (classification), or the answer (QA), as JSONL or CSV.

The text columns are the task's fields: NusaX one text, XNLI premise and hypothesis, QA (XQuAD,
TyDiQA) question and context; the English columns the same fields of the English side.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from flare.errors import ConfigError, DataError
from flare.io import write_text_atomic
from flare.pipeline import stages
from flare.pipeline.data import Collator, build_features, source_kwargs
from flare.pipeline.training import predict
from flare.tasks.examples import ClassificationExample, QAExample
from flare.tasks.readers import read_table

ENGLISH_FROM = ("column", "translate", "none")


def read_inputs(path: str | Path, text_columns: Sequence[str], english_columns: Sequence[str] | None = None,
                id_column: str | None = None) -> list[dict]:
    """Rows {"id", "texts", "english"} from a table, a text file or "-" (stdin; one text per line)."""
    if str(path) == "-" or Path(path).suffix.lower() not in (".csv", ".tsv", ".jsonl"):
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
        if len(text_columns) != 1 or english_columns:
            raise ConfigError("plain-text input holds one text per line: use a CSV/TSV/JSONL file for several "
                              "text columns or an English column")
        return [{"id": str(i + 1), "texts": (line,), "english": None}
                for i, line in enumerate(text.splitlines()) if line.strip()]
    path = Path(path)
    _, records = read_table(path)
    rows = []
    for number, record in enumerate(records, 1):
        def field(name: str) -> str:
            value = record.values.get(name)
            if value is None or not str(value).strip():
                raise DataError(f"row {number} has no value in column {name!r}", path, record.line,
                                hint=f"columns here: {', '.join(record.values)}")
            return str(value)

        rows.append({"id": field(id_column) if id_column else str(number),
                     "texts": tuple(field(c) for c in text_columns),
                     "english": tuple(field(c) for c in english_columns) if english_columns else None})
    return rows


def predict_rows(experiment, method_name: str, language: str, seed: int, rows: list[dict], english_from: str,
                 log: Callable[[str], None] = print) -> list[dict]:
    """Predicted label and label probabilities for each row, with the adapter the experiment saved
    for (method, language, seed)."""
    if english_from not in ENGLISH_FROM:
        raise ConfigError(f"english must be one of {', '.join(ENGLISH_FROM)}, got {english_from!r}")
    qa = experiment.task.kind == "qa"
    if qa and any(len(r["texts"]) != 2 or (r["english"] is not None and len(r["english"]) != 2) for r in rows):
        raise ConfigError("QA input needs two text columns, question then context (and two English columns)")
    method = experiment.method(method_name)
    head = experiment.head
    if english_from == "column" and any(r["english"] is None for r in rows):
        raise ConfigError("english=column needs --english-column (or use --english translate / none)")
    if english_from == "translate":  # each field on its own, in one batch
        width = len(rows[0]["texts"]) if rows else 0
        english = experiment.translator.translate([t for r in rows for t in r["texts"]], language, experiment.english)
        rows = [{**r, "english": tuple(english[i * width:(i + 1) * width])} for i, r in enumerate(rows)]
    base = method.method
    if english_from == "none" and method.spec.reads_english:
        if not method.spec.no_english_row:  # FLARE alone has a path without the English side
            raise ConfigError(f"method {method_name} ({base}) reads the English side: give --english-column "
                              "or --english translate")
        log("note: no English side: FLARE runs as plain LoRA")
        base = "lora"
    if qa:
        examples = [QAExample(r["id"], r["texts"][0], r["texts"][1], (),
                              QAExample(r["id"], *r["english"], ()) if r["english"] else None) for r in rows]
    else:
        examples = [ClassificationExample(r["id"], tuple(r["texts"]), 0, r["english"]) for r in rows]
    if method.spec.trained:
        folder = experiment.adapter_dir(method, language, seed)
        if not folder.is_dir():
            raise ConfigError(f"no saved adapter in {folder}: run `flare train` for it first")
        model = stages.load_stage3(method.method, experiment.config, method.adapter(experiment.config.adapter),
                                   head, experiment.stage1(seed), folder)
    else:
        model = stages.load_stage1_model(head, experiment.stage1(seed))
    if method.spec.source == "encoder":
        raise ConfigError("flare predict does not run flare-mt adapters yet (they need the MT encoder's states)")
    model = model.to(experiment.accelerator.device).eval()
    features = build_features(examples, head, base, "input")
    if qa:
        answers = predict(model, head, features, experiment.config.train.eval_batch_size, head.pad_id,
                          experiment.accelerator)
        return [{"id": r["id"], "answer": a, "english": " | ".join(r["english"]) if r["english"] else None}
                for r, a in zip(rows, answers)]
    probabilities = []
    loader = DataLoader(features, batch_size=experiment.config.train.eval_batch_size, collate_fn=Collator(head.pad_id))
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(experiment.accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            probabilities += torch.softmax(head.label_scores(model, batch, **source_kwargs(batch)), -1).tolist()
    names = experiment.task.label_names
    predictions = []
    for row, probs in zip(rows, probabilities):
        best = max(range(len(probs)), key=probs.__getitem__)
        predictions.append({"id": row["id"], "label": names[best], "label_index": best,
                            "probabilities": {n: round(v, 6) for n, v in zip(names, probs)},
                            "english": " ".join(row["english"]) if row["english"] else None})
    return predictions


def write_predictions(predictions: list[dict], out: str | Path | None) -> None:
    """JSONL (default; stdout when `out` is None or "-") or CSV (by the suffix)."""
    if out is not None and str(out) != "-" and Path(out).suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if predictions and "answer" in predictions[0]:
            writer.writerow(["id", "answer"])
            writer.writerows([p["id"], p["answer"]] for p in predictions)
        else:
            names = list(predictions[0]["probabilities"]) if predictions else []
            writer.writerow(["id", "label", *[f"p_{n}" for n in names]])
            for p in predictions:
                writer.writerow([p["id"], p["label"], *[p["probabilities"][n] for n in names]])
        text = buffer.getvalue()
    else:
        text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions)
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        return
    write_text_atomic(out, text)
