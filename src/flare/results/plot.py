"""The report's figures (matplotlib, Agg, no pyplot state): the grouped bar chart of the table
(``comparison.png``) and the learning curves (``curves-<method>.png``)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from flare.io import atomic_file
from flare.results.schema import AVG, method_sort_key
from flare.results.training import curve_file, learning_curve

DAGGER = "†"  # an avg over a subset of the languages


def plot_comparison(report, path: str | os.PathLike) -> Path:
    """Grouped bar chart (Agg, no pyplot state): x = languages + avg, a bar per method."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [*report.languages, AVG]
    n_methods = max(len(report.rows), 1)
    width = 0.8 / n_methods
    fig = Figure(figsize=(max(6.0, 1.0 + len(groups) * (0.35 + 0.22 * n_methods)), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = [f"C{i % 10}" for i in range(n_methods)]
    top = 0.0
    for i, row in enumerate(report.rows):
        xs, means, errs_x, errs = [], [], [], []
        for g, col in enumerate(groups):
            cell = row.cell(col)
            if cell is None:
                continue
            x = g - 0.4 + width * (i + 0.5)
            mean = cell.mean * report.scale
            xs.append(x)
            means.append(mean)
            top = max(top, mean)
            if not math.isnan(cell.std):
                errs_x.append(x)
                errs.append((mean, cell.std * report.scale))
                top = max(top, mean + cell.std * report.scale)
        label = row.method if row.covers_all_languages else f"{row.method} {DAGGER}"
        ax.bar(xs, means, width=width * 0.95, color=colors[i], label=label)
        if errs:
            ax.errorbar(
                errs_x, [m for m, _ in errs], yerr=[s for _, s in errs],
                fmt="none", ecolor="black", elinewidth=1.0, capsize=3,
            )
    labels = [
        f"{AVG}{DAGGER}" if col == AVG and any(not r.covers_all_languages for r in report.rows) else col
        for col in groups
    ]
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(labels, rotation=45 if len(groups) > 8 else 0, ha="right" if len(groups) > 8 else "center")
    if len(groups) > 1:
        ax.axvline(len(groups) - 1.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0, top * 1.08 if top > 0 else 1.0)
    ax.set_ylabel(f"{report.metric} ({report.split}, %)")
    ax.set_xlabel("language")
    ax.set_title(
        f"{report.task or 'unknown task'} · {report.model or 'unknown model'} · {report.metric} "
        f"({report.split}, mean ± std over seeds)"
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(n_methods, 4), frameon=False,
        title=f"{DAGGER} avg over a subset of the languages"
        if any(not r.covers_all_languages for r in report.rows) else None,
    )
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
    return Path(path)


def plot_curves(report, out_dir: str | os.PathLike) -> list[Path]:
    """One PNG per method: a panel per language, a line per seed; validation score (left axis,
    solid, the best evaluation marked) and mean training loss (right axis, dashed) against
    optimizer steps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_method: dict[str, dict[str, list]] = {}
    for run in report.runs:
        history = learning_curve(run)
        if history:
            by_method.setdefault(run.method, {}).setdefault(run.language, []).append((run.seed, history))
    paths = []
    for method in sorted(by_method, key=method_sort_key):
        languages = sorted(by_method[method])
        columns = min(3, len(languages))
        rows = math.ceil(len(languages) / columns)
        fig = Figure(figsize=(4.4 * columns, 3.4 * rows))
        FigureCanvasAgg(fig)
        for index, language in enumerate(languages):
            ax = fig.add_subplot(rows, columns, index + 1)
            loss_ax = ax.twinx()
            for color, (seed, history) in enumerate(sorted(by_method[method][language], key=lambda x: x[0])):
                steps = [h.get("step", h.get("epoch")) for h in history]
                scores = [h.get("validation") for h in history]
                ax.plot(steps, scores, "-o", color=f"C{color % 10}", markersize=3, label=f"seed {seed}")
                best = max(range(len(scores)), key=lambda i: (scores[i] if scores[i] is not None else -math.inf, -i))
                ax.plot([steps[best]], [scores[best]], "*", color=f"C{color % 10}", markersize=10)
                loss_ax.plot(steps, [h.get("train_loss") for h in history], "--", color=f"C{color % 10}", alpha=0.6)
            ax.set_title(f"{method} · {language}")
            ax.set_xlabel("optimizer step" if "step" in history[0] else "epoch")
            ax.set_ylabel(f"validation {report.metric}")
            loss_ax.set_ylabel("train loss (dashed)")
            ax.grid(alpha=0.3)
            if index == 0:
                ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = Path(out_dir) / curve_file(method)
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        paths.append(path)
    return paths


def english_mt_chrf(run_dir: str | os.PathLike, split: str) -> dict[str, float]:
    """language -> chrF of the machine-translated English side of ``split`` (stage 2's quality
    table, ``translations/quality.json``); empty when the experiment used no MT into English."""
    from flare.translation.quality import QualityTable, quality_path

    path = quality_path(run_dir)
    if not path.is_file():
        return {}
    return {row["language"]: float(row["chrf"]) for row in QualityTable(path).rows
            if row.get("split") == split and row.get("tgt") != row.get("language")
            and isinstance(row.get("chrf"), (int, float)) and "language" in row}


def plot_score_vs_chrf(report, chrf: dict[str, float], path: str | os.PathLike) -> Path | None:
    """``score-vs-chrf.png``: per method, its mean score in each language against the chrF of that
    language's English MT (x), the languages joined in chrF order and labelled. None (nothing
    written) when fewer than two languages have both a chrF and a score."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    languages = sorted((lang for lang in report.languages if lang in chrf), key=lambda lang: chrf[lang])
    if len(languages) < 2:
        return None
    fig = Figure(figsize=(6.4, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, row in enumerate(report.rows):
        points = [(chrf[lang], row.cell(lang).mean * report.scale, lang) for lang in languages
                  if row.cell(lang) is not None]
        if not points:
            continue
        ax.plot([x for x, _, _ in points], [y for _, y, _ in points], "-o", color=f"C{i % 10}", label=row.method)
    for lang in languages:
        ax.axvline(chrf[lang], color="grey", linestyle=":", linewidth=0.8)
        ax.annotate(lang, (chrf[lang], 0), xycoords=("data", "axes fraction"), xytext=(2, 3),
                    textcoords="offset points", fontsize=8, color="grey")
    ax.set_xlabel(f"chrF of the English MT ({report.split})")
    ax.set_ylabel(f"{report.metric} ({report.split}, %, mean over seeds)")
    ax.set_title(f"{report.task or 'unknown task'} · {report.model or 'unknown model'}: score against MT quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    return Path(path)
