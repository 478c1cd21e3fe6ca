"""``flare compare``: is method A better than method B? A paired bootstrap over test examples,
per language, from the predictions every run stores in its result JSON.

For one language, the runs of A and B with the same seeds are paired example by example (by
example id). Each bootstrap resample draws test examples with replacement, the same draw for A
and B and for every seed, and computes mean over seeds of metric(A) - metric(B): the test asks
whether A's advantage holds across the test examples with training randomness averaged over the
seeds both methods ran (:mod:`flare.pipeline.stats` defines delta, p-value and interval).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from flare.errors import DataError
from flare.pipeline.report import load_results
from flare.pipeline.stats import paired_bootstrap
from flare.tasks import get_task


@dataclass
class Comparison:
    language: str
    seeds: list[int]
    examples: int
    metric: str
    score_a: float  # mean over seeds
    score_b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float  # one-sided, "A is not better than B"


def _predictions(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    predictions = data.get("predictions")
    if not isinstance(predictions, dict) or not {"ids", "predicted", "gold"} <= predictions.keys():
        raise DataError("has no stored predictions (ids, predicted, gold)", path=path,
                        hint="rerun the run with this version of flare: result files store per-example predictions")
    return {"task": data.get("task"), "metric": data.get("primary_metric"),
            "by_id": dict(zip(predictions["ids"], zip(predictions["predicted"], predictions["gold"])))}


def compare(run_dir: str | os.PathLike, method_a: str, method_b: str, metric: str | None = None,
            resamples: int = 1000, seed: int = 0) -> list[Comparison]:
    """One paired bootstrap per language that both methods have runs for (common seeds only)."""
    runs, _ = load_results(run_dir)
    paths: dict[tuple[str, str], dict[int, Path]] = {}
    for run in runs:
        paths.setdefault((run.method, run.language), {})[run.seed] = run.path
    methods = {method for method, _ in paths}
    for method in (method_a, method_b):
        if method not in methods:
            raise DataError(f"no results of method {method!r}", path=Path(run_dir) / "results",
                            hint=f"methods with results: {', '.join(sorted(methods))}")
    languages = sorted({lang for m, lang in paths if m == method_a} & {lang for m, lang in paths if m == method_b})
    comparisons = []
    for language in languages:
        seeds = sorted(paths[method_a, language].keys() & paths[method_b, language].keys())
        if not seeds:
            continue
        a = [_predictions(paths[method_a, language][s]) for s in seeds]
        b = [_predictions(paths[method_b, language][s]) for s in seeds]
        task = get_task(a[0]["task"])
        name = metric or a[0]["metric"]
        ids = sorted(set.intersection(*(set(run["by_id"]) for run in a + b)))
        if not ids:
            raise DataError(f"{language}: the runs of {method_a} and {method_b} share no test example ids",
                            path=Path(run_dir) / "results")
        gold = [a[0]["by_id"][i][1] for i in ids]
        per_a = [tuple(run["by_id"][i][0] for run in a) for i in ids]  # one prediction per seed
        per_b = [tuple(run["by_id"][i][0] for run in b) for i in ids]

        def mean_over_seeds(predicted: list[tuple], references: list) -> float:
            return sum(task.metric([p[s] for p in predicted], references)[name]
                       for s in range(len(seeds))) / len(seeds)

        test = paired_bootstrap(per_a, per_b, gold, mean_over_seeds, n_resamples=resamples, seed=seed)
        comparisons.append(Comparison(language, seeds, len(ids), name, mean_over_seeds(per_a, gold),
                                      mean_over_seeds(per_b, gold), **test))
    if not comparisons:
        raise DataError(f"{method_a} and {method_b} have no language and seed in common",
                        path=Path(run_dir) / "results")
    return comparisons


def format_comparisons(method_a: str, method_b: str, comparisons: list[Comparison]) -> str:
    lines = [f"{method_a} vs {method_b}: paired bootstrap over test examples, mean over common seeds "
             f"({comparisons[0].metric})", "",
             f"| language | seeds | examples | {method_a} | {method_b} | delta | 95% interval | p (one-sided) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c.language} | {','.join(map(str, c.seeds))} | {c.examples} | {c.score_a:.2f} | "
                     f"{c.score_b:.2f} | {c.delta:+.2f} | [{c.ci_low:+.2f}, {c.ci_high:+.2f}] | {c.p_value:.3f} |")
    better = sum(c.p_value < 0.05 for c in comparisons)
    worse = sum(c.p_value > 0.95 for c in comparisons)
    lines += ["", f"{method_a} better at p < 0.05 on {better} of {len(comparisons)} languages; "
                  f"{method_b} better (p > 0.95) on {worse}."]
    return "\n".join(lines)


def write_comparisons(run_dir: str | os.PathLike, method_a: str, method_b: str,
                      comparisons: list[Comparison]) -> list[Path]:
    out = Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"compare-{method_a}-vs-{method_b}"
    json_path, csv_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".csv"), stem.with_suffix(".md")
    json_path.write_text(json.dumps([asdict(c) for c in comparisons], indent=2) + "\n")
    fields = list(asdict(comparisons[0]))
    rows = [",".join(fields)] + [",".join(" ".join(map(str, v)) if isinstance(v, list) else str(v)
                                          for v in asdict(c).values()) for c in comparisons]
    csv_path.write_text("\n".join(rows) + "\n")
    md_path.write_text(format_comparisons(method_a, method_b, comparisons) + "\n")
    return [json_path, csv_path, md_path]
