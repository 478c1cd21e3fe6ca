"""Which English tokens does FLARE pair with the answer in study 4? (tokenization only, no model)

FLARE's encoder pairing (`alignment: start`, docs/core.md) fuses the j-th real token of the target
input with the j-th real token of the English source. On XQuAD the target input is one window of
(question, context) of the target language (256 tokens, contexts longer than that split into
overlapping windows) and the source is the English (question, context), its first window only,
for every window of the target (flare.heads.span_qa). This counts, per language of study 4's test
split, what the gold answer's tokens meet under that rule, in the window that holds the answer:

- answer_in_first_window: the target window holding the answer is the first one (the one whose
  positions match the source's window; in later windows position j is another part of the context);
- paired_in_english_answer: at least one target answer token is paired with a token of the English
  answer (the English answer inside the source window);
- paired_tokens_in_english_answer: of all target answer tokens, the share paired with a token of
  the English answer;
- mean_offset_tokens, median_offset_tokens: |target answer start - English answer start| in tokens,
  over the questions whose answer is inside the first target window and the source window;
- unpaired_answer_tokens: the share of target answer tokens beyond the source's last token.

English against itself (the "en" row) is the control: every answer token meets its own English
token. Writes answer_pairing.csv beside this file. Run from the repository root (needs the data
and the e5-small tokenizer, no training):

    python studies/xquad-e5-small-tuned/analysis/answer_pairing.py
"""

import statistics
from pathlib import Path

from flare.heads.qa import first_answer
from flare.io import write_text_atomic
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment
from flare.results.render import csv_text

CONFIG = "configs/study/xquad-e5-small-tuned.yaml"
LANGUAGES = ["en", "de", "hi", "zh"]

experiment = Experiment(load_config(CONFIG, []), log=lambda message: None)
head = experiment.head


def answer_window(windows: list[dict]) -> tuple[int, dict] | None:
    """The first window whose labels hold the answer (start > 0), with its index."""
    for index, window in enumerate(windows):
        if window.get("start_positions", 0) > 0:
            return index, window
    return None


rows = []
for language in LANGUAGES:
    examples = experiment.task.load(language, "test", experiment.data_root.path)
    english = {e.id: e for e in experiment.task.load("en", "test", experiment.data_root.path)}
    first_window = met = answers = 0
    paired_tokens = unpaired_tokens = answer_tokens = 0
    offsets = []
    for example in examples:
        target = answer_window(head.windows(head._first_text(example.question, head.max_length // 2),
                                            example.context, head.max_length, first_answer(example)))
        source = head.windows(head._first_text(english[example.id].question, head.max_length // 2),
                              english[example.id].context, head.max_length, first_answer(english[example.id]),
                              overflow=False)[0]
        if target is None:  # the answer is cut from every window (not the case in this split)
            continue
        answers += 1
        index, window = target
        start, end = window["start_positions"], window["end_positions"]
        source_start, source_end = source["start_positions"], source["end_positions"]
        source_length = len(source["input_ids"])
        english_answer = set(range(source_start, source_end + 1)) if source_start > 0 else set()
        positions = range(start, end + 1)
        answer_tokens += len(positions)
        unpaired_tokens += sum(p >= source_length for p in positions)
        hits = sum(p in english_answer for p in positions)  # start pairing: target j meets source j
        paired_tokens += hits
        met += hits > 0
        first_window += index == 0
        if index == 0 and source_start > 0:
            offsets.append(abs(start - source_start))
    rows.append({"language": language, "questions": answers,
                 "answer_in_first_window": round(first_window / answers, 3),
                 "paired_in_english_answer": round(met / answers, 3),
                 "paired_tokens_in_english_answer": round(paired_tokens / answer_tokens, 3),
                 "mean_offset_tokens": round(float(statistics.mean(offsets)), 1) if offsets else "",
                 "median_offset_tokens": float(statistics.median(offsets)) if offsets else "",
                 "unpaired_answer_tokens": round(unpaired_tokens / answer_tokens, 3)})

out = write_text_atomic(Path(__file__).with_name("answer_pairing.csv"), csv_text(list(rows[0]), rows))
for row in rows:
    print(row)
