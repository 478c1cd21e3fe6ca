"""How far does the learned gate of gated_add_relu move from add_relu (g = 1/2)?

phi(S, T) = relu(T) + 2 g relu(S), g = sigmoid(w_s S + w_t T + b) (docs/core.md); g = 1/2 is exactly
add_relu. For every saved gated_add_relu adapter of this study (adapters/flare-gated_add_relu/, made
by the final runs; not committed), this runs the test set of its language one example at a time
(no padding), records g at every fused module, position paired with an English token and bottleneck
dimension, and writes gate_statistics.csv beside this file: mean g, mean |g - 1/2|, and the share of
values below 0.25 or above 0.75 (the English taken in at under half or over 1.5 x add_relu's share).
Rows of the CSV whose adapter is no longer on disk (adapters are not committed) are kept as they
are. Run from the repository root after the final runs:

    python studies/nusax-e5-small-fusion-learned/analysis/gate_statistics.py
"""

import csv
import json
from pathlib import Path

import torch

from flare.core.fusion import GatedAddReLU
from flare.io import write_text_atomic
from flare.pipeline import stages
from flare.pipeline.config import load_config
from flare.pipeline.data import build_features
from flare.pipeline.runner import Experiment
from flare.results.render import csv_text

CONFIG = "configs/study/nusax-e5-small-fusion-learned.yaml"
METHOD = "flare-gated_add_relu"
experiment = Experiment(load_config(CONFIG, ["threads=1"]), log=lambda message: None)
config, head = experiment.config, experiment.head
method = experiment.method(METHOD)
gates: list[torch.Tensor] = []
paired = 0  # the target positions with an English partner in the current example


def record(module, args, output):
    source, target = args
    gate = torch.sigmoid(module.source_weight * source + module.target_weight * target + module.bias)
    gates.append(gate[0, :paired].detach().flatten())


OUT = Path(__file__).with_name("gate_statistics.csv")
kept = {(row["language"], int(row["seed"])): row for row in csv.DictReader(OUT.open())} if OUT.is_file() else {}
rows = []
for language in config.languages:
    for seed in config.seeds:
        folder = experiment.adapter_dir(method, language, seed)
        result_file = experiment.result_path(method, language, seed)
        if not folder.is_dir() or not result_file.is_file():
            if (language, seed) in kept:
                rows.append(kept[(language, seed)])
            continue
        chosen = (json.loads(result_file.read_text()).get("selection") or {}).get("chosen")
        variant = method.at(chosen)
        model = stages.load_stage3(variant.method, config, variant.adapter(config.adapter), head,
                                   experiment.stage1(seed), folder).eval()
        handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, GatedAddReLU)]
        gates.clear()
        test = experiment.load(language, "test")
        with torch.no_grad():
            for feature in build_features(test, head, "flare", f"{language}/test"):
                paired = min(len(feature["input_ids"]), len(feature["source_input_ids"]))
                batch = {
                    "input_ids": torch.tensor([feature["input_ids"]]),
                    "attention_mask": torch.ones(1, len(feature["input_ids"]), dtype=torch.long),
                    "source_input_ids": torch.tensor([feature["source_input_ids"]]),
                    "source_attention_mask": torch.ones(1, len(feature["source_input_ids"]), dtype=torch.long),
                }
                model(**batch)
        for handle in handles:
            handle.remove()
        values = torch.cat(gates)
        rows.append({
            "language": language, "seed": seed, "values": values.numel(),
            "fusion_lr_ratio": (chosen or {}).get("fusion_lr_ratio", 1.0),
            "learning_rate": (chosen or {}).get("learning_rate"),
            "mean_g": round(values.mean().item(), 4),
            "mean_abs_g_minus_half": round((values - 0.5).abs().mean().item(), 4),
            "share_below_0.25": round((values < 0.25).float().mean().item(), 4),
            "share_above_0.75": round((values > 0.75).float().mean().item(), 4),
        })
        print(rows[-1])
out = write_text_atomic(OUT, csv_text(list(rows[0]), rows))
print(out.read_text())
