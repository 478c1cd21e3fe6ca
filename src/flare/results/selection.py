"""Variants (several method names with one ``base_method``, e.g. flare-add and flare-mul) and the
choice among them on a split other than the reported one (``flare report --select-on validation``).

Without ``select_on`` the variants' rows in a report of any split but validation are labelled
``(post-hoc)`` (:func:`post_hoc_variants`); with ``select_on="validation"`` only the variant with
the best validation score is reported, under the base name (:func:`select_variants`, which reads
the selection split only, then :func:`apply_selection`).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from flare.errors import ConfigError, DataError
from flare.results.schema import AVG, RunResult, method_sort_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One variant of a base method and its score on the selection split (JSON units)."""

    method: str
    score: float | None  # mean over the scored languages of the mean over seeds; None: no value
    languages: tuple[str, ...]  # the languages the score is over


@dataclass(frozen=True)
class VariantChoice:
    """The variant chosen for one base method, on the selection split only."""

    base_method: str
    variants: tuple[str, ...]  # every name the base method ran under
    candidates: dict[str, tuple[Candidate, ...]]  # AVG (across languages) or a language -> candidates
    chosen: dict[str, str]  # AVG or a language -> the chosen variant

    def variant_for(self, language: str) -> str | None:
        return self.chosen.get(AVG, self.chosen.get(language))


@dataclass(frozen=True)
class Selection:
    """``flare report --select-on SPLIT``: one variant per base method, chosen on ``split``."""

    split: str
    metric: str
    per_language: bool
    choices: tuple[VariantChoice, ...]

    def choice(self, base_method: str) -> VariantChoice | None:
        return next((c for c in self.choices if c.base_method == base_method), None)


def variant_groups(runs: Iterable[RunResult]) -> dict[str, list[str]]:
    """Base methods run under several names (``flare-add``, ``flare-mul``) -> those names.

    The base is the run's stored ``base_method`` (the method it trained); a run that does not
    store one is its own base, so it is never grouped.  A row that scores another run's weights
    (``weights_from``, e.g. ``flare-add-no-english``) is not a variant: it follows its weights.
    """
    names: dict[str, set[str]] = {}
    for run in runs:
        if run.weights_from is None:
            names.setdefault(run.base_method or run.method, set()).add(run.method)
    return {base: sorted(found, key=method_sort_key) for base, found in names.items() if len(found) > 1}


def _split_means(runs: Iterable[RunResult], split: str, metric: str) -> dict[str, dict[str, float]]:
    """method -> language -> mean over seeds of ``split``/``metric`` (only runs with a value)."""
    values: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        value = run.value(split, metric)
        if value is not None:
            values.setdefault(run.method, {}).setdefault(run.language, []).append(value)
    return {m: {lang: statistics.fmean(v) for lang, v in by_lang.items()} for m, by_lang in values.items()}


def _best(candidates: Sequence[Candidate]) -> str:
    """Highest score; ties go to the variant first in the method order."""
    scored = [c for c in candidates if c.score is not None]
    return min(scored, key=lambda c: (-c.score, method_sort_key(c.method))).method


def select_variants(
    runs: Sequence[RunResult], metric: str, split: str = "validation", per_language: bool = False,
    warn=None,
) -> Selection:
    """For every base method with several variants, the variant with the best ``split`` score.

    Reads ``split``/``metric`` and nothing else of the runs (never the reported test scores).
    Across languages (the default), a variant's score is the mean over the languages every
    scored variant of the group has, of its mean over seeds; ``per_language`` chooses in each
    language on its mean over seeds there.  Raises :class:`DataError` when a group has no
    variant with a ``split`` score, or its variants share no scored language.
    """
    if split == "test":
        raise ConfigError("choosing variants on the test split is the post-hoc choice --select-on avoids; "
                          "select on validation")
    warn = warn or (lambda message: logger.warning("%s", message))
    means = _split_means(runs, split, metric)
    choices = []
    for base, variants in sorted(variant_groups(runs).items(), key=lambda item: method_sort_key(item[0])):
        scored = [v for v in variants if means.get(v)]
        for variant in sorted(set(variants) - set(scored), key=method_sort_key):
            warn(f"{variant}: no {split}/{metric} value, so it cannot be chosen for {base}; left out")
        if not scored:
            raise DataError(
                f"{base}: none of its variants ({', '.join(variants)}) has a {split}/{metric} value to "
                "choose on", path=runs[0].path.parents[2],
                hint=f"report without --select-on, or rerun the variants so that they store {split} scores")
        if per_language:
            candidates, chosen = {}, {}
            for language in sorted({lang for v in scored for lang in means[v]}):
                found = tuple(Candidate(v, means[v].get(language), (language,)) for v in scored)
                candidates[language], chosen[language] = found, _best(found)
            unscored = sorted({run.language for run in runs if run.method in variants} - set(chosen))
            if unscored:
                warn(f"{base}: no variant has a {split}/{metric} value in {', '.join(unscored)}; "
                     f"{base} is left out there")
        else:
            common = tuple(sorted(set.intersection(*(set(means[v]) for v in scored))))
            if not common:
                raise DataError(
                    f"{base}: its variants {', '.join(scored)} share no language with a {split}/{metric} "
                    "value, so their scores cannot be compared", path=runs[0].path.parents[2],
                    hint="choose per language (--per-language) or run the variants on the same languages")
            if any(set(means[v]) != set(common) for v in scored):
                warn(f"{base}: variants scored on the languages they all have ({', '.join(common)})")
            found = tuple(Candidate(v, statistics.fmean(means[v][lang] for lang in common), common)
                          for v in scored)
            candidates, chosen = {AVG: found}, {AVG: _best(found)}
        choices.append(VariantChoice(base_method=base, variants=tuple(variants), candidates=candidates,
                                     chosen=chosen))
    return Selection(split=split, metric=metric, per_language=per_language, choices=tuple(choices))


def apply_selection(runs: Iterable[RunResult], selection: Selection) -> list[RunResult]:
    """The runs with each group's variants replaced by the chosen one, renamed to the base method.

    Runs of methods outside every group are kept as they are; in a per-language selection a
    language without a choice loses the group's runs.  A row scoring a variant's weights
    (``weights_from``) goes with that variant: ``flare-add-no-english`` becomes
    ``flare-no-english`` when flare-add is chosen.
    """
    out = []
    for run in runs:
        owner = run.weights_from or run.method  # the trained variant whose weights the row scores
        choice = selection.choice(run.base_method or run.method)
        if choice is None or owner not in choice.variants:
            out.append(run)
        elif choice.variant_for(run.language) == owner:
            suffix = run.method[len(owner):] if run.method.startswith(owner) else f"-{run.method}"
            out.append(replace(run, method=choice.base_method + suffix))
    return out


def post_hoc_variants(runs: Sequence[RunResult]) -> dict[str, str]:
    """Every variant of a base method run under several names, and the rows scoring its weights -> the base."""
    post_hoc = {name: base for base, names in variant_groups(runs).items() for name in names}
    for run in runs:
        if run.weights_from in post_hoc:
            post_hoc[run.method] = post_hoc[run.weights_from]
    return post_hoc
