"""Helpers for the task tests: write small data files (CSV, JSONL, SQuAD JSON)."""

import csv
import json
from pathlib import Path


def write_csv(path: Path, header, rows, delimiter=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, objects, ensure_ascii=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        for obj in objects:
            f.write(json.dumps(obj, ensure_ascii=ensure_ascii) + "\n")
    return path


def squad(questions):
    """A SQuAD 1.1 document from (id, question, context, [(text, start), ...]) tuples."""
    return {
        "version": "1.1",
        "data": [
            {
                "title": f"t{i}",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": qid,
                                "question": question,
                                "answers": [{"text": t, "answer_start": s} for t, s in answers],
                            }
                        ],
                    }
                ],
            }
            for i, (qid, question, context, answers) in enumerate(questions)
        ],
    }


def write_json(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path
