"""How many of study 5's gold answers can the decoder read at all? (tokenization only, no model)

Generative QA with Gemma 3 270M puts the question and context into one prompt of at most
max_length tokens (256 in study 5); a longer context loses its end (flare.heads.generative_qa),
and a question whose every gold answer lies in the lost part cannot be answered from the text.
Per language and split of study 5's XQuAD split (English, its one target language Hindi, and
German and Chinese, cut from the study, for comparison), and for the TyDiQA-GoldP development sets
that study 6 scores with study 5's models (the same prompt and max_length), this counts:

- context_cut: the share of questions whose context is cut to fit;
- answer_kept: the share whose gold answer is still whole in the prompt (the ceiling of exact
  match for a model that only copies from its context).

The pipeline logs the same count for every split it builds (flare.pipeline.data.build_features).
Writes answer_reach.csv beside this file. Run from the repository root (needs the data and the
Gemma 3 270M tokenizer, no training):

    python studies/xquad-gemma3-270m-tuned/analysis/answer_reach.py
"""

from pathlib import Path

from flare.heads.generative_qa import answer_kept
from flare.io import write_text_atomic
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment
from flare.results.render import csv_text

# config -> (languages, splits); TyDiQA's "test" is its development set (flare.tasks.tydiqa)
STUDIES = {
    "configs/study/xquad-gemma3-270m-tuned.yaml": (["en", "hi", "de", "zh"], ["train", "validation", "test"]),
    "configs/study/tydiqa-gemma3-270m-zero-shot.yaml": (["ar", "bn", "fi", "id", "ko", "ru", "sw", "te"], ["test"]),
}

rows = []
for config, (languages, splits) in STUDIES.items():
    experiment = Experiment(load_config(config, []), log=lambda message: None)
    head = experiment.head
    for language in languages:
        for split in splits:
            examples = experiment.task.load(language, split, experiment.data_root.path)
            contexts = [head.fitted_context(example) for example in examples]
            cut = sum(kept != example.context for kept, example in zip(contexts, examples))
            kept = sum(answer_kept(example, context) for context, example in zip(contexts, examples))
            rows.append({"task": experiment.config.task, "language": language, "split": split,
                         "questions": len(examples), "max_length": head.max_length,
                         "context_cut": round(cut / len(examples), 4), "answer_kept": round(kept / len(examples), 4)})
            print(rows[-1], flush=True)

out = write_text_atomic(Path(__file__).with_name("answer_reach.csv"), csv_text(list(rows[0]), rows))
print(f"wrote {out}")
