"""Tasks: loaders for the task data, one example model, metrics.

Quick use::

    from flare.tasks import get_task
    task = get_task("nusax")
    train = task.load("jav", "train")            # list[ClassificationExample], English partner set
    scores = task.metric(predictions, train)     # {"accuracy": ..., "macro_f1": ...} in 0-100

Modules
    examples   ClassificationExample, QAExample, Answer (the data model)
    base       the Task protocol (name, kind, label_names, languages, english_language,
               splits(), load(), metric()) and its shared implementation
    nusax, xnli, tydiqa, xquad   the built-in tasks, each all in one module: loading, options,
               decoder prompt, primary metric, public source and fetch layout (each docstring:
               layout, languages, split protocol, counts)
    parallel   the user's own parallel classification data (CSV / TSV / JSONL, or datasets),
               one or several target languages, label-mismatch policies
    parallel_config   its options: DataFiles, ParallelConfig, parallel_configs, dataset_splits
    fetch      the download engine of `flare data fetch` (TaskSource, fetch_task_data)
    hf_data    Hugging Face datasets as tables (optional extra flare-xl[datasets])
    splits     the deterministic group-split rule
    metrics    accuracy, macro-F1, SQuAD exact match / F1
    readers, tables   file reading and checking (every problem is a DataError naming file and row)
    registry   TASKS, SOURCES, get_task, register_task, fetchable_tasks, describe (the one
               registry that the CLI, `flare data fetch` and the pipeline read)
    data_root  find_data_root (where the task data lives)
"""

from flare.tasks.base import BaseTask, Task
from flare.tasks.examples import Answer, ClassificationExample, Example, QAExample
from flare.tasks.parallel import (
    DataFiles, LabelMismatches, ParallelConfig, ParallelTask, dataset_splits, parallel_configs,
)
from flare.tasks.registry import TASKS, describe, fetchable_tasks, get_task, register_task
from flare.tasks.splits import SPLITS

__all__ = [
    "Answer",
    "BaseTask",
    "ClassificationExample",
    "DataFiles",
    "Example",
    "LabelMismatches",
    "ParallelConfig",
    "ParallelTask",
    "QAExample",
    "SPLITS",
    "TASKS",
    "Task",
    "dataset_splits",
    "describe",
    "fetchable_tasks",
    "get_task",
    "parallel_configs",
    "register_task",
]
