"""How long are the gold answers of study 4's test split, in the tokens QA F1 counts?

QA F1 (src/flare/tasks/metrics.py) splits a normalised answer into whitespace words and counts
every CJK character as a token of its own, so a Chinese answer has more tokens than its English
original and F1 gives partial credit at a finer grain. Writes answer_lengths.csv beside this file
(per language: test questions, mean and median tokens of the first gold answer). Run from the
repository root:

    python studies/xquad-e5-small-tuned/analysis/answer_lengths.py
"""

import statistics
from pathlib import Path

from flare.io import write_text_atomic
from flare.results.render import csv_text
from flare.tasks import get_task
from flare.tasks.data_root import find_data_root
from flare.tasks.metrics import answer_tokens, normalize_answer

LANGUAGES = ["en", "de", "hi", "zh"]  # the English side and study 4's target languages
task = get_task("xquad")
root = find_data_root(needs=task.folder).path

rows = []
for language in LANGUAGES:
    examples = task.load(language, "test", root)
    lengths = [len(answer_tokens(normalize_answer(e.answer_texts[0]))) for e in examples]
    rows.append({"language": language, "questions": len(examples),
                 "mean_tokens": round(statistics.mean(lengths), 3), "median_tokens": statistics.median(lengths)})

out = write_text_atomic(Path(__file__).with_name("answer_lengths.csv"), csv_text(list(rows[0]), rows))
for row in rows:
    print(row)
