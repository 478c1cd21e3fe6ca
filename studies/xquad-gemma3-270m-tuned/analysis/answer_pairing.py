"""Which English tokens does FLARE pair with the answer in study 5? (tokenization only, no model)

Written 2026-12-07 after study 5's test scores were read (post hoc): FLARE's weights scored the same
with and without the English partner at test time, and this asks whether the English answer is
even where the Hindi answer is. Study 4's answer_pairing.py asks the same for e5-small.

Gemma 3 270M reads one prompt, "Context: {c}\\nQuestion: {q}\\nAnswer:", at most 256 tokens (the end
of a long context cut), and FLARE's source is the English prompt of the same question, cut the same
way. With end pairing (study 5's choice, docs/core.md) target prompt position i meets source position
i - len(target) + len(source): the prompts' last tokens meet (where the first answer token is
predicted, so that position always reads a state that has seen the whole English prompt) and the
pairing runs backwards from there. With start pairing (the other grid point) position i meets
source position i. Per language of study 5's test split, for the answer inside the target prompt
(questions whose first gold answer was cut from the prompt are left out):

- paired_in_english_answer (end / start): at least one target answer token meets a token of the
  English answer;
- paired_tokens_in_english_answer (end / start): of all target answer tokens, the share that meet
  a token of the English answer;
- median_offset_tokens (end / start): the distance in tokens between the English answer's start
  and the source position the target answer's start meets (0: they meet), over questions whose
  English answer is inside the source prompt;
- unpaired_answer_tokens (end / start): the share of target answer tokens that meet no source
  token (outside the source prompt's positions).

English against itself (the "en" row) is the control. Writes answer_pairing.csv beside this file.
Run from the repository root (needs the data and the Gemma 3 270M tokenizer, no training):

    python studies/xquad-gemma3-270m-tuned/analysis/answer_pairing.py
"""

import statistics
from pathlib import Path

from flare.heads.qa import first_answer
from flare.io import write_text_atomic
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment
from flare.results.render import csv_text

CONFIG = "configs/study/xquad-gemma3-270m-tuned.yaml"
LANGUAGES = ["en", "hi", "de", "zh"]  # hi: study 5's language; de, zh (cut from the study) for comparison

experiment = Experiment(load_config(CONFIG, []), log=lambda message: None)
head = experiment.head


def prompt_and_answer(example) -> tuple[int, range | None]:
    """The prompt's length in tokens and the token positions of the gold answer in it (None: cut)."""
    context = head.fitted_context(example)
    text = head.render(example.question, context)
    encoded = head.tokenizer(text, return_offsets_mapping=True)
    span = first_answer(example)  # the answer trained on (flare.heads.generative_qa.answer_ids)
    if span is None or span[1] > len(context):
        return len(encoded["input_ids"]), None
    offset = len(head.text_prefix) + len("Context: ")  # QA_PROMPT starts with it
    start, end = offset + span[0], offset + span[1]
    tokens = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > a and a < end and b > start]
    return len(encoded["input_ids"]), range(tokens[0], tokens[-1] + 1) if tokens else None


rows = []
for language in LANGUAGES:
    examples = experiment.task.load(language, "test", experiment.data_root.path)
    english = {e.id: e for e in experiment.task.load("en", "test", experiment.data_root.path)}
    counts = {pairing: {"met": 0, "paired": 0, "unpaired": 0, "offsets": []} for pairing in ("end", "start")}
    questions = answer_tokens = 0
    for example in examples:
        target_length, target = prompt_and_answer(example)
        source_length, source = prompt_and_answer(english[example.id])
        if target is None:
            continue
        questions += 1
        answer_tokens += len(target)
        english_answer = set(source) if source is not None else set()
        for pairing, shift in (("end", source_length - target_length), ("start", 0)):
            met = [i + shift for i in target]  # the source position each target answer token meets
            count = counts[pairing]
            count["unpaired"] += sum(not 0 <= j < source_length for j in met)
            hits = sum(j in english_answer for j in met)
            count["paired"] += hits
            count["met"] += hits > 0
            if source is not None:
                count["offsets"].append(abs(met[0] - source[0]))
    row = {"language": language, "questions": questions}
    for pairing, count in counts.items():
        row[f"paired_in_english_answer_{pairing}"] = round(count["met"] / questions, 3)
        row[f"paired_tokens_in_english_answer_{pairing}"] = round(count["paired"] / answer_tokens, 3)
        row[f"median_offset_tokens_{pairing}"] = float(statistics.median(count["offsets"]))
        row[f"unpaired_answer_tokens_{pairing}"] = round(count["unpaired"] / answer_tokens, 3)
    rows.append(row)
    print(row, flush=True)

out = write_text_atomic(Path(__file__).with_name("answer_pairing.csv"), csv_text(list(rows[0]), rows))
print(f"wrote {out}")
