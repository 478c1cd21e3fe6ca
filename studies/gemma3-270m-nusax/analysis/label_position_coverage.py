"""How often does the position that predicts the label word have an English partner?

FLARE pairs the j-th target token with the j-th source token (src/flare/core/alignment.py). In the
decoder setting the label word is predicted at the prompt's last token ("...\nSentiment:"); when
the target prompt is longer than the English one, that position has no partner and gets plain LoRA.
Writes label_position_coverage.csv beside this file. Run from the repository root:

    python studies/gemma3-270m-nusax/analysis/label_position_coverage.py
"""

from pathlib import Path

from transformers import AutoTokenizer

from flare.io import write_text_atomic
from flare.pipeline.heads import PROMPTS
from flare.pretrained.resolve import resolve_model
from flare.results.render import csv_text
from flare.tasks import get_task

LANGUAGES = ["ind", "jav", "sun"]
task = get_task("nusax")
tokenizer = AutoTokenizer.from_pretrained(resolve_model("gemma3-270m").path_or_id)


def prompt_length(fields: tuple[str, ...]) -> int:
    return len(tokenizer(PROMPTS["nusax"].format(*fields), add_special_tokens=True)["input_ids"])


rows = []
for language in LANGUAGES:
    examples = task.load(language, "test")
    pairs = [(prompt_length(e.texts), prompt_length(e.english)) for e in examples]
    rows.append({
        "language": language,
        "examples": len(pairs),
        "label_position_unpaired_pct": round(100 * sum(t > s for t, s in pairs) / len(pairs), 1),
        "paired_with_english_cue_pct": round(100 * sum(t == s for t, s in pairs) / len(pairs), 1),
        "mean_target_tokens": round(sum(t for t, _ in pairs) / len(pairs), 1),
        "mean_english_tokens": round(sum(s for _, s in pairs) / len(pairs), 1),
    })
out = write_text_atomic(Path(__file__).with_name("label_position_coverage.csv"), csv_text(list(rows[0]), rows))
print(out.read_text())
