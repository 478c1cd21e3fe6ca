"""``flare compare``: is method A better than method B? A paired bootstrap over test examples,
per language, from the predictions every run stores in its result JSON, with the p-values
corrected for the family of comparisons printed together.

For one language, the runs of A and B with the same seeds are paired example by example (by
example id). Each bootstrap resample draws test examples with replacement, the same draw for A
and B and for every seed, and computes mean over seeds of metric(A) - metric(B): the test asks
whether A's advantage holds across the test examples with training randomness averaged over the
seeds both methods ran. With ``resample_seeds`` each resample first draws the seeds with
replacement too (seed s of A stays paired with seed s of B), so that the interval and p-value
include the spread over training seeds (:mod:`flare.results.stats` defines delta, p-value,
interval and the corrections).

The gold: each method is scored against its own. For QA, translate-test's English answers are
scored against the English partner's answers, every other method's against the target language's
(``MethodSpec.scored_on_english``). A result file stores its predictions by test example id and
no copy of the data: the gold is read again from the task data by id (the data folder from
``data_dir``, else the run's own ``data_dir``, else the usual search), except where the file
stores it because a machine made it (translate-test's English answers projected through machine
translation) or because an older flare stored every gold.

The family: every (pair, language) test of one call, e.g. all languages of A vs B, or of A vs B
and A vs C when several pairs are compared at once. Holm-Bonferroni (default), Benjamini-Hochberg
or no correction adjusts the one-sided p-values over that family; the tables show raw and
adjusted p and say which family and correction.

``select_on="validation"``: a base method run under several names (variants such as
``flare-add``, ``flare-mul``) can be named by its base name; it stands for the variant that
``flare report --select-on validation`` chooses (:func:`flare.results.selection.select_variants`,
which reads validation scores only).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flare.errors import ConfigError, DataError
from flare.io import write_text_atomic
from flare.methods import get_method, method_names
from flare.results.schema import AVG, load_results
from flare.results.selection import apply_selection, select_variants
from flare.results.stats import CORRECTIONS, adjust_p_values, hierarchical_bootstrap, paired_bootstrap
from flare.tasks import get_task
from flare.tasks.data_root import find_data_root

ALPHA = 0.05
_CORRECTION_NAMES = {"holm": "Holm", "bh": "BH", "none": "uncorrected"}


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
    p_value: float  # one-sided, "A is not better than B", before correction
    method_a: str = ""
    method_b: str = ""
    p_adjusted: float | None = None  # p_value corrected over the family (see Family.correction)
    correction: str = "none"
    resampled: str = "examples"  # or "seeds+examples"


@dataclass
class Family:
    """The comparisons of one call: every language of every pair, corrected together."""

    pairs: list[tuple[str, str]]
    comparisons: list[Comparison]
    correction: str  # holm, bh or none
    resample_seeds: bool
    resamples: int
    selected: dict[str, str] = field(default_factory=dict)  # base method -> how its variant was chosen

    @property
    def description(self) -> str:
        pairs = ", ".join(f"{a} vs {b}" for a, b in self.pairs)
        size = len(self.comparisons)
        return f"{size} test{'s' if size != 1 else ''}: all languages of {pairs}"

    def of_pair(self, method_a: str, method_b: str) -> list[Comparison]:
        return [c for c in self.comparisons if (c.method_a, c.method_b) == (method_a, method_b)]


def _predictions(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    predictions = data.get("predictions")
    if not isinstance(predictions, dict) or not {"ids", "predicted"} <= predictions.keys():
        raise DataError("has no stored predictions (ids, predicted)", path=path,
                        hint="rerun the run with this version of flare: result files store per-example predictions")
    stored = predictions.get("gold")
    return {"path": path, "task": data.get("task"), "metric": data.get("primary_metric"),
            "method": data.get("base_method") or data.get("method"), "language": data.get("language"),
            "config": data.get("config") or {},
            "by_id": dict(zip(predictions["ids"], predictions["predicted"])),
            "gold": None if stored is None else dict(zip(predictions["ids"], stored))}


class GoldFromData:
    """Each run's gold by test example id, read from the task data (each split loaded once)."""

    def __init__(self, data_dir: str | os.PathLike | None = None):
        self.data_dir = data_dir
        self._splits: dict[tuple, dict] = {}

    @staticmethod
    def task(run: dict):
        return get_task(run["task"], run["config"].get("task_options") or None)

    def _examples(self, run: dict) -> dict:
        config = run["config"]
        options = config.get("task_options") or None
        task = self.task(run)
        explicit = self.data_dir
        if explicit is None and config.get("data_dir") and Path(config["data_dir"]).is_dir():
            explicit = config["data_dir"]
        root = find_data_root(explicit, needs=getattr(task, "folder", None) or None)
        key = (run["task"], json.dumps(options, sort_keys=True, default=str), str(root.path), run["language"])
        if key not in self._splits:
            self._splits[key] = {"task": task, "root": root,
                                 "by_id": {e.id: e for e in task.load(run["language"], "test", root.path)}}
        return self._splits[key]

    def __call__(self, run: dict, ids: list) -> list:
        """The gold of ``ids`` for this run: stored in its file, else from the data."""
        if run["gold"] is not None:
            return [run["gold"][i] for i in ids]
        split = self._examples(run)
        missing = [i for i in ids if i not in split["by_id"]]
        if missing:
            raise DataError(f"{len(missing)} test example ids of this run are not in the {run['language']} test split "
                            f"of {split['root']} (e.g. {missing[0]!r})", path=run["path"],
                            hint="compare with the data the run was tested on: pass --data-dir")
        examples = [split["by_id"][i] for i in ids]
        method = run["method"]
        if method in method_names() and get_method(method).scored_on_english(split["task"].kind):
            examples = [e.english for e in examples]
        return examples


def _run_paths(run_dir: str | os.PathLike, metric: str | None, select_on: str | None, per_language: bool
               ) -> tuple[dict[tuple[str, str], dict[int, Path]], dict[str, str]]:
    """(method, language) -> seed -> result file; with ``select_on``, base names for the chosen variants."""
    runs, _ = load_results(run_dir)
    selected: dict[str, str] = {}
    if select_on is not None and runs:
        primaries = Counter(r.primary_metric for r in runs if r.primary_metric)
        metric = metric or min(primaries, key=lambda m: (-primaries[m], m), default=None)
        if metric is None:
            raise DataError("no run names a primary_metric to select on", path=Path(run_dir) / "results")
        selection = select_variants(runs, metric, select_on, per_language)
        for choice in selection.choices:
            if per_language:
                chosen = ", ".join(f"{lang} {variant}" for lang, variant in choice.chosen.items())
                selected[choice.base_method] = f"{chosen}, chosen per language on {select_on} {metric}"
            else:
                selected[choice.base_method] = f"{choice.chosen[AVG]}, chosen on the mean {select_on} {metric}"
        runs = apply_selection(runs, selection)
    paths: dict[tuple[str, str], dict[int, Path]] = {}
    for run in runs:
        paths.setdefault((run.method, run.language), {})[run.seed] = run.path
    return paths, selected


def _own_gold_metric(task, name: str, n_seeds: int):
    """metric_fn over examples given as (predictions, gold) pairs, one prediction per seed: the mean
    over seeds. Each method is scored against its own gold, and the bootstrap's shared references
    (the example ids) are not read: two methods may have different gold for one example (QA's
    translate-test answers in English and is scored against the English partner's answers, every
    other method against the target language's)."""
    def score(items: list[tuple[tuple, object]], _ids: list) -> float:
        gold = [g for _, g in items]
        return sum(task.metric([p[s] for p, _ in items], gold)[name] for s in range(n_seeds)) / n_seeds

    return score


def _compare_pair(paths: dict[tuple[str, str], dict[int, Path]], run_dir: Path, method_a: str, method_b: str,
                  metric: str | None, resamples: int, seed: int, resample_seeds: bool, gold: GoldFromData,
                  selected: bool = False) -> list[Comparison]:
    """One paired bootstrap per language that both methods have runs for (common seeds only)."""
    methods = {method for method, _ in paths}
    for method in (method_a, method_b):
        if method not in methods:
            raise DataError(f"no results of method {method!r}", path=run_dir / "results",
                            hint=f"methods with results: {', '.join(sorted(methods))}"
                            + ("; with --select-on a base method's variants go by the base name" if selected else ""))
    languages = sorted({lang for m, lang in paths if m == method_a} & {lang for m, lang in paths if m == method_b})
    comparisons = []
    for language in languages:
        seeds = sorted(paths[method_a, language].keys() & paths[method_b, language].keys())
        if not seeds:
            continue
        a = [_predictions(paths[method_a, language][s]) for s in seeds]
        b = [_predictions(paths[method_b, language][s]) for s in seeds]
        task = gold.task(a[0])
        name = metric or a[0]["metric"]
        ids = sorted(set.intersection(*(set(run["by_id"]) for run in a + b)))
        if not ids:
            raise DataError(f"{language}: the runs of {method_a} and {method_b} share no test example ids",
                            path=run_dir / "results")

        def with_gold(runs: list[dict]) -> list[tuple[tuple, object]]:  # (one prediction per seed, its gold)
            return list(zip((tuple(run["by_id"][i] for run in runs) for i in ids), gold(runs[0], ids)))

        items_a, items_b = with_gold(a), with_gold(b)
        mean_over_seeds = _own_gold_metric(task, name, len(seeds))
        if resample_seeds:
            by_seed_a = [[((p[s],), g) for p, g in items_a] for s in range(len(seeds))]
            by_seed_b = [[((p[s],), g) for p, g in items_b] for s in range(len(seeds))]
            test = hierarchical_bootstrap(by_seed_a, by_seed_b, ids, _own_gold_metric(task, name, 1),
                                          n_resamples=resamples, seed=seed)
        else:
            test = paired_bootstrap(items_a, items_b, ids, mean_over_seeds, n_resamples=resamples, seed=seed)
        comparisons.append(Comparison(language, seeds, len(ids), name, mean_over_seeds(items_a, ids),
                                      mean_over_seeds(items_b, ids), **test, method_a=method_a, method_b=method_b,
                                      resampled="seeds+examples" if resample_seeds else "examples"))
    if not comparisons:
        raise DataError(f"{method_a} and {method_b} have no language and seed in common", path=run_dir / "results")
    return comparisons


def compare_family(run_dir: str | os.PathLike, pairs: list[tuple[str, str]], metric: str | None = None,
                   resamples: int = 1000, seed: int = 0, resample_seeds: bool = False, correction: str = "holm",
                   select_on: str | None = None, per_language: bool = False,
                   data_dir: str | os.PathLike | None = None) -> Family:
    """Every language of every (A, B) pair, with p adjusted by ``correction`` over all of them.
    ``data_dir``: the task data the gold is read from (default: the runs' own, else the search)."""
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}; choose one of {', '.join(CORRECTIONS)}")
    if not pairs:
        raise ConfigError("no pair of methods to compare: name method A and at least one method B")
    if len(set(pairs)) != len(pairs):
        raise ConfigError("a pair of methods is named twice: name every pair once (the family counts each test)")
    paths, selected = _run_paths(run_dir, metric, select_on, per_language)
    gold = GoldFromData(data_dir)
    comparisons = [c for a, b in pairs
                   for c in _compare_pair(paths, Path(run_dir), a, b, metric, resamples, seed, resample_seeds,
                                          gold, select_on is not None)]
    # A raw p of 0 means p < 1/resamples: the correction takes 1/resamples, an upper bound.
    raw = [max(c.p_value, 1 / resamples) for c in comparisons]
    for c, adjusted in zip(comparisons, adjust_p_values(raw, correction)):
        c.p_adjusted, c.correction = adjusted, correction
    used = {m for pair in pairs for m in pair}
    return Family(list(pairs), comparisons, correction, resample_seeds, resamples,
                  {base: how for base, how in selected.items() if base in used})


def compare(run_dir: str | os.PathLike, method_a: str, method_b: str, metric: str | None = None,
            resamples: int = 1000, seed: int = 0, resample_seeds: bool = False,
            correction: str = "holm", select_on: str | None = None, per_language: bool = False,
            data_dir: str | os.PathLike | None = None) -> list[Comparison]:
    """One paired bootstrap per language that both methods have runs for (common seeds only);
    ``p_adjusted`` corrects over these languages (the family of one pair)."""
    return compare_family(run_dir, [(method_a, method_b)], metric, resamples, seed, resample_seeds, correction,
                          select_on, per_language, data_dir).comparisons


def format_family(family: Family) -> str:
    """Markdown: what was tested, the family and its correction, a table per pair, the verdicts."""
    first = family.comparisons[0]
    short = _CORRECTION_NAMES[family.correction]
    resampled = "seeds (with replacement) and test examples" if family.resample_seeds else "test examples"
    lines = [(f"Paired bootstrap over {resampled}, mean over the seeds both methods ran ({first.metric}); "
              "p one-sided, \"A is not better than B\"."),
             f"Family: {family.description}; p adjusted by {CORRECTIONS[family.correction]} over the family."]
    lines += [f"{base} = {how}." for base, how in family.selected.items()]
    lines = [part for line in lines for part in ("", line)][1:]  # one paragraph each
    for method_a, method_b in family.pairs:
        rows = family.of_pair(method_a, method_b)
        lines += ["", f"**{method_a} vs {method_b}**", "",
                  f"| language | seeds | examples | {method_a} | {method_b} | delta | 95% interval | p | p ({short}) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in rows:
            lines.append(f"| {c.language} | {','.join(map(str, c.seeds))} | {c.examples} | {c.score_a:.2f} | "
                         f"{c.score_b:.2f} | {c.delta:+.2f} | [{c.ci_low:+.2f}, {c.ci_high:+.2f}] | "
                         f"{_p_text(c.p_value, family.resamples)} | {c.p_adjusted:.3f} |")
        better = sum(c.p_adjusted < ALPHA for c in rows)
        raw = sum(c.p_value < ALPHA for c in rows)
        worse = sum(c.p_value > 1 - ALPHA for c in rows)
        after = "with no correction" if family.correction == "none" else f"after {short} ({raw} before)"
        lines += ["", (f"{method_a} better at p < {ALPHA} on {better} of {len(rows)} languages {after}; "
                       f"{method_b} better (raw one-sided p > {1 - ALPHA:.2f}) on {worse}.")]
    lines.append("")
    if any(c.p_value == 0 for c in family.comparisons):
        lines.append(f"p <{1 / family.resamples:.3g}: no resample of {family.resamples} had delta <= 0; the "
                     f"correction takes {1 / family.resamples:.3g} for it, so its adjusted p is an upper bound"
                     + ("; some stay at or above the level only for that: raise --resamples."
                        if any(c.p_value == 0 and c.p_adjusted >= ALPHA for c in family.comparisons) else "."))
    lines.append("Intervals are per test, not adjusted for the family.")
    return "\n".join(lines)


def _p_text(p: float, resamples: int) -> str:
    return f"<{1 / resamples:.3g}" if p == 0 else f"{p:.3f}"


def _one_pair(method_a: str, method_b: str, comparisons: list[Comparison], resamples: int) -> Family:
    first = comparisons[0]
    return Family([(method_a, method_b)], comparisons, first.correction, first.resampled != "examples", resamples)


def format_comparisons(method_a: str, method_b: str, comparisons: list[Comparison], resamples: int = 1000) -> str:
    """:func:`format_family` for the comparisons of one pair (as :func:`compare` returns them)."""
    return format_family(_one_pair(method_a, method_b, comparisons, resamples))


def family_stem(family: Family) -> str:
    """``compare-A-vs-B``; ``compare-A-vs-B+C`` (A against several), ``compare-A-vs-B+C-vs-D`` (other
    pairs); then ``-seeds``, ``-bh`` / ``-none``, ``-selected`` for what differs from the default."""
    firsts = {a for a, _ in family.pairs}
    if len(firsts) == 1:
        stem = f"compare-{family.pairs[0][0]}-vs-" + "+".join(b for _, b in family.pairs)
    else:
        stem = "compare-" + "+".join(f"{a}-vs-{b}" for a, b in family.pairs)
    if family.resample_seeds:
        stem += "-seeds"
    if family.correction != "holm":
        stem += f"-{family.correction}"
    if family.selected:
        stem += "-selected"
    return stem


def write_family(run_dir: str | os.PathLike, family: Family) -> list[Path]:
    """report/<stem>.json, .csv and .md (one row per pair and language)."""
    out = Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / family_stem(family)
    json_path, csv_path, md_path = (stem.with_name(stem.name + ext) for ext in (".json", ".csv", ".md"))
    rows = [asdict(c) for c in family.comparisons]
    write_text_atomic(json_path, json.dumps(rows, indent=2) + "\n")
    fields = list(rows[0])
    lines = [",".join(fields)] + [",".join(" ".join(map(str, v)) if isinstance(v, list) else str(v)
                                           for v in row.values()) for row in rows]
    write_text_atomic(csv_path, "\n".join(lines) + "\n")
    write_text_atomic(md_path, format_family(family) + "\n")
    return [json_path, csv_path, md_path]


def write_comparisons(run_dir: str | os.PathLike, method_a: str, method_b: str,
                      comparisons: list[Comparison], resamples: int = 1000) -> list[Path]:
    """:func:`write_family` for the comparisons of one pair."""
    return write_family(run_dir, _one_pair(method_a, method_b, comparisons, resamples))
