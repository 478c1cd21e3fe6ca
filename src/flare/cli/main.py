"""The `flare` command: one entry point, a subcommand per stage.

Every experiment command takes a YAML config and KEY=VALUE overrides that win over it:
    flare run configs/nusax-e5-small.yaml seeds=[1,2,3] train.epochs=2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from typer.core import TyperGroup

from flare.cli.models import models_fetch, models_list
from flare.errors import FlareError


def _quiet_libraries() -> None:
    """Our own messages say what matters; transformers' load reports would bury them."""
    from transformers.utils import logging

    logging.set_verbosity_error()


app = typer.Typer(callback=_quiet_libraries, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, help="FLARE: language fusion for parameter-efficient cross-lingual transfer.")
models_app = typer.Typer(no_args_is_help=True, help="Built-in model aliases and the local cache.")
models_app.command("list")(models_list)
models_app.command("fetch")(models_fetch)
app.add_typer(models_app, name="models")

console = Console(stderr=True)
ConfigArg = Annotated[Path, typer.Argument(help="Experiment config (YAML).")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="KEY=VALUE settings that override the file.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue interrupted runs from their last checkpoint.")]


def _experiment(config: Path, overrides: list[str] | None, resume: bool = False):
    from flare.pipeline.config import load_config
    from flare.pipeline.runner import Experiment

    settings = load_config(config, overrides or [])
    settings.resume = settings.resume or resume
    return Experiment(settings, log=lambda m: console.print(escape(m)))


def _fail(err: Exception) -> None:
    console.print(f"[red]error:[/] {escape(str(err))}")
    raise typer.Exit(code=2)


def _print_report(run_dir: Path, split: str = "test") -> None:
    from flare.pipeline.report import build_report

    report = build_report(run_dir, split=split)
    paths = report.write(run_dir / "report" / ("" if split == "test" else split))
    Console().print(Markdown(report.table_markdown()))
    console.print("written: " + ", ".join(str(p) for p in paths))


@app.command()
def run(config: ConfigArg, overrides: Overrides = None, resume: Resume = False) -> None:
    """The whole experiment: stage 1, every method x language x seed, then the report."""
    try:
        experiment = _experiment(config, overrides, resume)
        experiment.run()
        if experiment.accelerator.is_main_process:
            _print_report(experiment.output_dir)
    except FlareError as err:
        _fail(err)


@app.command()
def finetune(config: ConfigArg, overrides: Overrides = None, resume: Resume = False) -> None:
    """Stage 1: plain LoRA and the task head on English task data."""
    try:
        experiment = _experiment(config, overrides, resume)
        console.print(f"stage-1 adapter: {experiment.stage1()}")
    except FlareError as err:
        _fail(err)


@app.command()
def translate(config: ConfigArg, overrides: Overrides = None) -> None:
    """Stage 2: machine-translate every split (translation.model), cached for later runs."""
    try:
        experiment = _experiment(config, overrides)
        if experiment.config.translation.model is None:
            _fail(FlareError("translation.model is not set: the English side is the human translation, "
                             "nothing to translate (set translation.model=facebook/nllb-200-distilled-600M)"))
        experiment.translate_all()
    except FlareError as err:
        _fail(err)


@app.command()
def train(config: ConfigArg, overrides: Overrides = None,
          method: Annotated[Optional[str], typer.Option(help="Only this method (its name in the config).")] = None,
          language: Annotated[Optional[str], typer.Option(help="Only this language.")] = None,
          seed: Annotated[Optional[int], typer.Option(help="Only this seed.")] = None,
          resume: Resume = False) -> None:
    """Stage 3 runs (all of the config's, or the one selected), results written as JSON."""
    try:
        experiment = _experiment(config, overrides, resume)
        experiment.run(method=method, language=language, seed=seed)
    except FlareError as err:
        _fail(err)


@app.command()
def evaluate(config: ConfigArg, overrides: Overrides = None,
             method: Annotated[str, typer.Option(help="The method whose saved adapter to evaluate.")] = "flare",
             language: Annotated[str, typer.Option(help="The language the adapter was trained for.")] = ...,
             seed: Annotated[int, typer.Option(help="Its seed.")] = 1,
             on: Annotated[Optional[str], typer.Option(help="Evaluate on this language instead.")] = None) -> None:
    """Evaluate a saved stage-3 adapter on a language's test set and print its metrics."""
    try:
        experiment = _experiment(config, overrides)
        scores = experiment.evaluate_saved(method, language, seed, on or language)
        Console().print(scores)
    except FlareError as err:
        _fail(err)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="An experiment's output_dir.")],
           split: Annotated[str, typer.Option(help="test, or validation (written to report/validation/): "
                                                   "choose settings there, not on the test set.")] = "test") -> None:
    """Rebuild the tables and the plot of an experiment from its result JSON files."""
    try:
        _print_report(run_dir, split)
    except FlareError as err:
        _fail(err)


@app.command()
def compare(run_dir: Annotated[Path, typer.Argument(help="An experiment's output_dir.")],
            method_a: Annotated[str, typer.Argument(help="The method tested for being better, e.g. flare.")],
            method_b: Annotated[str, typer.Argument(help="The method it is compared with, e.g. lora.")],
            metric: Annotated[Optional[str], typer.Option(help="Metric (default: the runs' primary metric).")] = None,
            resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000) -> None:
    """Paired bootstrap test of METHOD_A against METHOD_B per language, from stored predictions."""
    from flare.pipeline.compare import compare as run_compare
    from flare.pipeline.compare import format_comparisons, write_comparisons

    try:
        comparisons = run_compare(run_dir, method_a, method_b, metric, resamples)
    except FlareError as err:
        _fail(err)
    Console().print(Markdown(format_comparisons(method_a, method_b, comparisons)))
    console.print("written: " + ", ".join(str(p) for p in write_comparisons(run_dir, method_a, method_b,
                                                                             comparisons)))


@app.command()
def bench(model: Annotated[str, typer.Option(help="A model alias or path; 'tiny' for a quick run; 'random-base' or "
                                                  "'random-large' for BERT-base/-large shapes.")] = "e5-small",
          batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 16,
          length: Annotated[int, typer.Option(help="Sequence length (target and source).")] = 128,
          steps: Annotated[int, typer.Option(help="Measured steps per method (median).")] = 5,
          warmup: Annotated[int, typer.Option(help="Unmeasured steps first.")] = 2,
          threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
          methods: Annotated[Optional[str], typer.Option(help="Comma-separated subset of the methods.")] = None,
          fusions: Annotated[str, typer.Option(help="Comma-separated fusion functions: the FLARE rows are measured "
                                                    "once per function (add, mul, add_relu, cross_attention).")]
          = "add_relu",
          profile: Annotated[bool, typer.Option("--profile", help="Also report the Python time spent in flare's "
                                                                  "hooks and collation (cProfile).")] = False,
          out: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("bench.json")) -> None:
    """Training-step time, peak memory and evaluation throughput of every method, as ratios to PEFT LoRA."""
    from flare.bench import METHODS, format_table, run_bench, write_bench
    from flare.core.fusion import FUSIONS

    chosen = tuple(m.strip() for m in methods.split(",")) if methods else METHODS
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        _fail(FlareError(f"unknown bench methods {unknown}; valid: {', '.join(METHODS)}"))
    chosen_fusions = tuple(f.strip() for f in fusions.split(","))
    unknown = [f for f in chosen_fusions if f not in FUSIONS]
    if unknown:
        _fail(FlareError(f"unknown fusion functions {unknown}; valid: {', '.join(sorted(FUSIONS))}"))
    result = run_bench(model, batch_size, length, steps, warmup, threads, chosen,
                       log=lambda m: console.print(escape(m)), profile=profile, fusions=chosen_fusions)
    write_bench(result, out)
    Console().print(Markdown(format_table(result)))
    console.print(f"written: {out}")


class _DataGroup(TyperGroup):
    """`flare data TASK` and a bare `flare data` still mean `flare data show ...`."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


data_app = typer.Typer(cls=_DataGroup, no_args_is_help=False,
                       help="Task data: where it was found (show, the default) and downloading it (fetch).")
app.add_typer(data_app, name="data")
TaskArg = Annotated[str, typer.Argument(help="nusax, xnli, tydiqa or xquad.")]


@data_app.command("show")
def data_show(task: TaskArg = "nusax",
              data_dir: Annotated[Optional[Path], typer.Option(help="Folder holding the task folders.")] = None) -> None:
    """Show where the task data was found and how many examples each split has."""
    from rich.table import Table

    from flare.errors import DataError
    from flare.tasks import describe, get_task
    from flare.tasks.data_root import find_data_root

    counts: dict[str, dict[str, int] | None] = {}
    try:
        task_obj = get_task(task)
        root = find_data_root(data_dir, needs=getattr(task_obj, "folder", None) or None)
        console.print(f"data root: {root}")
        for language in task_obj.languages:
            try:
                counts.update(describe(task_obj, root.path, [language]))
            except DataError as err:
                if err.path is None or Path(err.path).exists():
                    raise
                counts[language] = None  # its files are not in this root (e.g. a partial fetch)
    except FlareError as err:
        _fail(err)
    missing = [language for language, splits in counts.items() if splits is None]
    caption = (f"missing here: {', '.join(missing)} (flare data fetch {task} --language LANG)" if missing else None)
    table = Table(title=f"{task}: examples per split", caption=caption)
    for column in ("language", "train", "validation", "test"):
        table.add_column(column)
    for language, splits in counts.items():
        if splits is None:
            table.add_row(language, "missing", "missing", "missing")
        else:
            table.add_row(language, *(str(splits.get(s, "-")) for s in ("train", "validation", "test")))
    Console().print(table)


@data_app.command("fetch")
def data_fetch(
    task: Annotated[str, typer.Argument(help="nusax, xnli, tydiqa or xquad.")],
    to: Annotated[Optional[Path], typer.Option("--to", help="Data root to write into "
                                               "(default: $FLARE_CACHE/data, else ~/.cache/flare/data).")] = None,
    language: Annotated[Optional[list[str]], typer.Option(
        "--language", "-l", help="Fetch only this language (repeat for more); English always comes too.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if the files are there.")] = False,
) -> None:
    """Download a task's data from its public home and lay it out as the loaders expect.

    docs/data.md lists the URLs and licenses.  Prints the data root on stdout."""
    from flare.tasks.data_root import download_root
    from flare.tasks.download import fetch_task_data

    try:
        root = fetch_task_data(task, to, language or None, force=force, log=lambda m: console.print(escape(m)))
    except FlareError as err:
        _fail(err)
    if root.resolve() == download_root().resolve():
        console.print(f"data root: {root} (searched by default, after ../shared/data)")
    else:
        console.print(f"data root: {root} (not searched by default: pass --data-dir {root} or set FLARE_DATA)")
    print(root)  # plain stdout, so scripts can capture the path


if __name__ == "__main__":
    app()
