"""The `flare` command: one entry point, a subcommand per stage.

Every experiment command takes a YAML config and KEY=VALUE overrides that win over it:
    flare run configs/nusax-e5-small.yaml seeds=[1,2,3] train.epochs=2
"""

from __future__ import annotations

import sys
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
    import warnings

    from transformers.utils import logging

    logging.set_verbosity_error()
    # PEFT still reads transformers' deprecated `is_gradient_checkpointing` on every model it wraps:
    # a FutureWarning in every run that the user can do nothing about
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


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


def _print_report(run_dir: Path, split: str = "test", select_on: str | None = None,
                  per_language: bool = False) -> None:
    from flare.results.render import selection_markdown
    from flare.results.report import build_report

    report = build_report(run_dir, split=split, select_on=select_on, per_language=per_language)
    folder = "" if split == "test" else split
    if select_on is not None:  # beside the plain report, not over it
        folder = "-".join(part for part in (folder, "select-on", select_on) if part)
    paths = report.write(run_dir / "report" / folder)
    Console().print(Markdown(report.table_markdown() + selection_markdown(report)))
    _print_training_summary(report)
    from flare.translation.quality import quality_markdown  # stage 2's MT against the human translation

    if quality := quality_markdown(run_dir):
        Console().print(Markdown("**Translation quality (stage 2)**\n\n" + quality))
    console.print("written: " + ", ".join(str(p) for p in paths))


def _print_training_summary(report) -> None:
    """The majority-class / chance scores, the budget table and, loudly, models that learned nothing."""
    from flare.results import training as report_training

    reference = report_training.reference_markdown(report)
    Console().print(Markdown((reference + "\n" if reference else "") + "**Budget**\n\n"
                             + report_training.budget_markdown(report, compact=True)))
    for warning in report_training.learning_warnings(report):
        console.print(f"[bold red]WARNING:[/] {escape(warning)}")


@app.command()
def run(config: ConfigArg, overrides: Overrides = None, resume: Resume = False) -> None:
    """The whole experiment: stage 1, the tuning of methods with a `search:` grid (on validation),
    every method x language x seed at its settings, then the report with the budget table."""
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
    """Stage 2: machine-translate every split (translation.model: a seq2seq model or a causal LM),
    cached for later runs; prints chrF/BLEU against the human translation where there is one."""
    try:
        experiment = _experiment(config, overrides)
        if experiment.config.translation.model is None:
            _fail(FlareError("translation.model is not set: the English side is the human translation, "
                             "nothing to translate (set translation.model=facebook/nllb-200-distilled-600M "
                             "or translation.model=gemma3-270m)"))
        experiment.translate_all()
        from flare.translation.quality import quality_markdown, quality_path

        table = quality_markdown(experiment.output_dir)
        if table:
            Console().print(Markdown(table))
            console.print(f"written: {quality_path(experiment.output_dir)}")
        else:
            console.print("no human reference for these translations: quality not measured")
    except FlareError as err:
        _fail(err)


@app.command()
def train(config: ConfigArg, overrides: Overrides = None,
          method: Annotated[Optional[str], typer.Option(help="Only this method (its name in the config).")] = None,
          language: Annotated[Optional[str], typer.Option(help="Only this language.")] = None,
          seed: Annotated[Optional[int], typer.Option(help="Only this seed.")] = None,
          resume: Resume = False) -> None:
    """Stage 3 runs (all of the config's, or the one selected), results written as JSON; a method with a
    `search:` grid and no selection yet is tuned on validation first (see `flare tune`)."""
    try:
        experiment = _experiment(config, overrides, resume)
        experiment.run(method=method, language=language, seed=seed)
    except FlareError as err:
        _fail(err)


@app.command()
def tune(config: ConfigArg, overrides: Overrides = None,
         method: Annotated[Optional[str], typer.Option(help="Only this method (its name in the config).")] = None,
         resume: Resume = False) -> None:
    """Choose each method's training settings on validation (the config's `search:` grid): every
    grid point trained on search.languages x search.seeds, the choice and the whole grid written to
    tuning/<method>/selection.json. `flare run` does this first by itself; the test split is never read."""
    from flare.pipeline.tune import tune as run_tune

    try:
        experiment = _experiment(config, overrides, resume)
        methods = [experiment.method(method)] if method else None
        experiment.stage1()
        selections = run_tune(experiment, methods)
        if not selections:
            _fail(FlareError("no method has a search grid: set search.grid (e.g. search.grid="
                             "'{learning_rate: [1e-4, 3e-4, 1e-3]}') or a method's own search:"))
        for name, selection in selections.items():
            console.print(f"{name}: {selection['chosen']} (validation {selection['metric']} "
                          f"{selection['chosen_mean']:.2f}); {selection['path']}")
    except FlareError as err:
        _fail(err)


@app.command()
def status(config: ConfigArg, overrides: Overrides = None,
           all_runs: Annotated[bool, typer.Option("--all", help="List the finished runs too.")] = False) -> None:
    """Where an experiment stands: every run of the config (stage 1, tuning trials, final runs) done,
    running (in another process), interrupted or to do, the hours taken and an estimate of the
    hours left; reads files only and shows no score, so a study can be followed without seeing its
    results early."""
    from flare.pipeline.status import experiment_status, status_markdown

    try:
        experiment = _experiment(config, overrides)
        text = status_markdown(experiment_status(experiment), show_done=all_runs)
        if sys.stdout.isatty():
            Console().print(Markdown(text))
        else:  # into a file or a pipe: the Markdown itself
            typer.echo(text)
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
def predict(config: ConfigArg,
            inputs: Annotated[str, typer.Option("--input", help="CSV / TSV / JSONL file, a text file (one text a "
                                                               "line), or - for standard input.")] = "-",
            overrides: Overrides = None,
            method: Annotated[str, typer.Option(help="The method whose saved adapter to run.")] = "flare",
            language: Annotated[str, typer.Option(help="The language the adapter was trained for.")] = ...,
            seed: Annotated[int, typer.Option(help="Its seed.")] = 1,
            text_column: Annotated[Optional[list[str]], typer.Option(
                help="Text column(s), in the task's field order (XNLI: premise, hypothesis).")] = None,
            english_column: Annotated[Optional[list[str]], typer.Option(
                help="Column(s) holding the English translation of the text.")] = None,
            english: Annotated[Optional[str], typer.Option(
                help="column (default with --english-column), translate (the config's translation.model), or "
                     "none (FLARE without its source: its plain-LoRA path).")] = None,
            id_column: Annotated[Optional[str], typer.Option(help="Column with row ids (default: row numbers).")] = None,
            out: Annotated[Optional[Path], typer.Option(help="Write here (.jsonl or .csv); default: stdout, JSONL.")] = None,
            ) -> None:
    """Run a saved adapter on new raw text: the predicted label and every label's probability per row."""
    from flare.pipeline.predict import predict_rows, read_inputs, write_predictions

    try:
        experiment = _experiment(config, overrides)
        columns = text_column or ["text"]
        rows = read_inputs(inputs, columns, english_column, id_column)
        source = english or ("column" if english_column else "none")
        predictions = predict_rows(experiment, method, language, seed, rows, source, log=console.print)
        write_predictions(predictions, out)
        if out is not None:
            console.print(f"{len(predictions)} predictions written to {out}")
    except FlareError as err:
        _fail(err)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="An experiment's output_dir.")],
           split: Annotated[str, typer.Option(help="test, or validation (written to report/validation/): "
                                                   "choose settings there, not on the test set.")] = "test",
           select_on: Annotated[Optional[str], typer.Option(
               help="validation: of every method run under several names (flare-add, flare-mul, ...), report "
                    "the one with the best mean validation score under the base name, with the candidates "
                    "(written to report/select-on-validation/).")] = None,
           per_language: Annotated[bool, typer.Option(
               "--per-language", help="With --select-on: choose the variant per language.")] = False) -> None:
    """Rebuild the tables and the plot of an experiment from its result JSON files."""
    try:
        if per_language and select_on is None:
            raise FlareError("--per-language chooses variants, so it needs --select-on validation")
        _print_report(run_dir, split, select_on, per_language)
    except FlareError as err:
        _fail(err)


@app.command()
def compare(run_dir: Annotated[Path, typer.Argument(help="An experiment's output_dir.")],
            method_a: Annotated[str, typer.Argument(help="The method tested for being better, e.g. flare.")],
            method_b: Annotated[list[str], typer.Argument(
                help="The method(s) it is compared with, e.g. lora (several: A against each).")],
            metric: Annotated[Optional[str], typer.Option(help="Metric (default: the runs' primary metric).")] = None,
            resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
            pair: Annotated[Optional[list[str]], typer.Option(
                help="Another pair A:B in the same family (repeatable), e.g. --pair flare-mt:lora.")] = None,
            correction: Annotated[str, typer.Option(
                help="holm (Holm-Bonferroni), bh (Benjamini-Hochberg) or none, over every language of every "
                     "pair compared in this call.")] = "holm",
            resample_seeds: Annotated[bool, typer.Option(
                "--resample-seeds", help="Resample the seeds (with replacement) as well as the test examples.")]
            = False,
            select_on: Annotated[Optional[str], typer.Option(
                help="validation: a base method's name (flare) stands for its variant chosen on validation, "
                     "as in flare report --select-on validation.")] = None,
            per_language: Annotated[bool, typer.Option(
                "--per-language", help="With --select-on: the variant chosen per language.")] = False,
            data_dir: Annotated[Optional[Path], typer.Option(
                help="The task data the gold is read from (default: the runs' data_dir, else $FLARE_DATA, "
                     "../shared/data or the download folder).")] = None) -> None:
    """Paired bootstrap test of METHOD_A against each METHOD_B per language, from stored predictions
    (the gold read from the task data by example id), with the p-values corrected over the family of
    every language of every pair compared."""
    from flare.results.compare import compare_family, format_family, write_family

    try:
        pairs = [(method_a, b) for b in method_b]
        for text in pair or []:
            a, sep, b = text.partition(":")
            if not (sep and a and b):
                raise FlareError(f"--pair {text!r}: write the pair as A:B, e.g. --pair flare-mt:lora")
            pairs.append((a, b))
        if per_language and select_on is None:
            raise FlareError("--per-language chooses variants, so it needs --select-on validation")
        family = compare_family(run_dir, pairs, metric, resamples, resample_seeds=resample_seeds,
                                correction=correction, select_on=select_on, per_language=per_language,
                                data_dir=data_dir)
        Console().print(Markdown(format_family(family)))
        console.print("written: " + ", ".join(str(p) for p in write_family(run_dir, family)))
    except FlareError as err:
        _fail(err)


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
          precisions: Annotated[str, typer.Option(help="Comma-separated precisions: every row once per precision "
                                                        "(no = float32, bf16, fp16: CPU autocast, as the config's "
                                                        "precision).")] = "no",
          profile: Annotated[bool, typer.Option("--profile", help="Also report the Python time spent in flare's "
                                                                  "hooks and collation (cProfile).")] = False,
          out: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("bench.json")) -> None:
    """Training-step time, peak memory and evaluation throughput of every method, as ratios to PEFT LoRA."""
    from flare.bench import METHODS, PRECISIONS, format_table, run_bench, write_bench
    from flare.core.fusion import FUSIONS

    chosen = tuple(m.strip() for m in methods.split(",")) if methods else METHODS
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        _fail(FlareError(f"unknown bench methods {unknown}; valid: {', '.join(METHODS)}"))
    chosen_fusions = tuple(f.strip() for f in fusions.split(","))
    unknown = [f for f in chosen_fusions if f not in FUSIONS]
    if unknown:
        _fail(FlareError(f"unknown fusion functions {unknown}; valid: {', '.join(sorted(FUSIONS))}"))
    chosen_precisions = tuple(p.strip() for p in precisions.split(","))
    unknown = [p for p in chosen_precisions if p not in PRECISIONS]
    if unknown:
        _fail(FlareError(f"unknown precisions {unknown}; valid: {', '.join(PRECISIONS)}"))
    result = run_bench(model, batch_size, length, steps, warmup, threads, chosen,
                       log=lambda m: console.print(escape(m)), profile=profile, fusions=chosen_fusions,
                       precisions=chosen_precisions)
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


def _task_help() -> str:
    """The tasks `flare data fetch` can download, from the registry: "nusax, xnli, tydiqa or xquad."."""
    from flare.tasks.registry import fetchable_tasks

    names = fetchable_tasks()
    return (", ".join(names[:-1]) + " or " + names[-1] + ".") if len(names) > 1 else "".join(names) + "."


TASK_HELP = _task_help()
TaskArg = Annotated[str, typer.Argument(help=TASK_HELP)]


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
    task: Annotated[str, typer.Argument(help=TASK_HELP)],
    to: Annotated[Optional[Path], typer.Option("--to", help="Data root to write into "
                                               "(default: $FLARE_CACHE/data, else ~/.cache/flare/data).")] = None,
    language: Annotated[Optional[list[str]], typer.Option(
        "--language", "-l", help="Fetch only this language (repeat for more); English always comes too.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if the files are there.")] = False,
) -> None:
    """Download a task's data from its public home and lay it out as the loaders expect.

    docs/data.md lists the URLs and licenses.  Prints the data root on stdout."""
    from flare.tasks.data_root import download_root
    from flare.tasks.fetch import fetch_task_data

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
