"""Two processes on one experiment (`flare run` twice, side by side) share its runs: a final run or a
tuning trial another process is training is skipped (a trial is come back to, and waited for, after
the others), and a stage-1 model another process is training is waited for by the runs on it. The
lock is a file lock per run, so a lock held in this process on another open file stands in for the
other process; the last test starts two real `flare run` processes."""

import json
import os
import re
import subprocess
import sys
import threading

from flare.io import folder_lock
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment
from flare.pipeline.status import FINAL, RUNNING, TO_DO, experiment_status
from flare.pipeline.tune import tune

SETTINGS = ["methods=[zero-shot, lora]", "languages=[jav]", "seeds=[1, 2]", "stage1_seeds=[1, 2]",
            "stage1.epochs=1", "stage1.max_train_examples=16", "stage1.max_eval_examples=16", "stage1.batch_size=8",
            "stage1.max_length=32", "train.epochs=1", "train.max_train_examples=16", "train.batch_size=8",
            "train.max_length=32", "train.max_eval_examples=16"]


def experiment_with_log(tmp_path, tiny_checkpoints, *extra):
    log = []
    overrides = [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path / 'run'}", *SETTINGS, *extra]
    return Experiment(load_config(None, overrides), log=log.append), log


def held_until(lock_of, release_when):
    """Hold `lock_of`'s lock in a thread (another process, for flock) until `release_when` is set;
    returns the thread, once the lock is held."""
    held = threading.Event()

    def hold():
        with folder_lock(lock_of):
            held.set()
            release_when.wait(timeout=120)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(timeout=30)
    return thread


def test_a_final_run_another_process_is_training_is_skipped_and_done_by_a_later_run(tmp_path, tiny_checkpoints):
    experiment, log = experiment_with_log(tmp_path, tiny_checkpoints)
    experiment.stage1()
    release = threading.Event()
    thread = held_until(experiment.checkpoint_dir(experiment.run_name("lora", "jav", 2)), release)
    try:
        held = next(u for u in experiment_status(experiment) if u.kind == FINAL and u.method == "lora" and u.seed == 2)
        assert held.state == RUNNING and held.detail == f"process {os.getpid()}"  # `flare status` sees it
        written = experiment.run()
    finally:
        release.set()
        thread.join()
    assert experiment.result_path("lora", "jav", 2) not in written
    assert not experiment.result_path("lora", "jav", 2).is_file()
    assert "skip lora jav seed 2: another process is training it" in log
    assert {experiment.result_path(m, "jav", s) for m in ("zero-shot", "lora") for s in (1, 2)} - set(written) == {
        experiment.result_path("lora", "jav", 2)}

    released = next(u for u in experiment_status(experiment) if u.kind == FINAL and u.method == "lora" and u.seed == 2)
    assert released.state == TO_DO
    assert experiment.run(method="lora") == [experiment.result_path("lora", "jav", 2)]  # the lock is free again


def test_a_trial_held_elsewhere_is_come_back_to_after_the_others_and_trained_when_its_process_left_nothing(
        tmp_path, tiny_checkpoints):
    grid = "search={grid: {learning_rate: [1.0e-4, 1.0e-3, 1.0e-2]}, languages: [jav], seeds: [1]}"
    experiment, log = experiment_with_log(tmp_path, tiny_checkpoints, grid)
    experiment.stage1()
    first = "tuning/lora/learning_rate=0.0001/jav/seed-1"
    deferred = threading.Event()
    original_log = experiment.log

    def log_and_release(message):  # the other process goes away (without a result) once we deferred its trial
        original_log(message)
        if "back to it after the others" in message:
            deferred.set()

    experiment.log = log_and_release
    thread = held_until(experiment.checkpoint_dir(first), deferred)
    try:
        selection = tune(experiment)["lora"]
    finally:
        deferred.set()
        thread.join()
    trained = [m for m in log if m.startswith("tuning lora learning_rate=")]
    assert [m.split()[2] for m in trained] == ["learning_rate=0.001", "learning_rate=0.01", "learning_rate=0.0001"]
    assert [p["key"] for p in selection["points"]] == ["learning_rate=0.0001", "learning_rate=0.001",
                                                         "learning_rate=0.01"]
    assert (experiment.output_dir / f"{first}.json").is_file()
    on_disk = json.loads((experiment.output_dir / "tuning" / "lora" / "selection.json").read_text())
    assert on_disk["chosen_key"] == selection["chosen_key"]


def test_a_method_whose_trial_is_held_elsewhere_waits_until_the_other_methods_finals_are_done(
        tmp_path, tiny_checkpoints):
    """`flare run` does not sit idle on another process's last trial: zero-shot's finals first."""
    grid = "search={grid: {learning_rate: [1.0e-4, 1.0e-3]}, languages: [jav], seeds: [1]}"
    experiment, log = experiment_with_log(tmp_path, tiny_checkpoints, grid)
    experiment.stage1()
    waiting = threading.Event()
    original_log = experiment.log

    def log_and_release(message):  # the other process leaves (without a record) once we wait for it
        original_log(message)
        if "waiting for it" in message:
            waiting.set()

    experiment.log = log_and_release
    thread = held_until(experiment.checkpoint_dir("tuning/lora/learning_rate=0.001/jav/seed-1"), waiting)
    try:
        written = experiment.run()
    finally:
        waiting.set()
        thread.join()
    order = [m for m in log if "other runs first" in m or "waiting for it" in m
             or re.match(r"\s*(zero-shot|lora)\s+jav seed \d: ", m)]
    assert "other runs first" in order[0]
    assert [m.split()[0] for m in order[1:3]] == ["zero-shot", "zero-shot"]
    assert "waiting for it" in order[3]
    assert [m.split()[0] for m in order[4:]] == ["lora", "lora"]
    assert len(written) == 4 and (experiment.output_dir / "tuning" / "lora" / "selection.json").is_file()


def test_a_stage1_model_another_process_is_training_is_waited_for(tmp_path, tiny_checkpoints):
    experiment, log = experiment_with_log(tmp_path, tiny_checkpoints)
    waiting = threading.Event()
    original_log = experiment.log

    def log_and_release(message):
        original_log(message)
        if "waiting for it" in message:
            waiting.set()

    experiment.log = log_and_release
    thread = held_until(experiment.checkpoint_dir(experiment.stage1_run_name(1)), waiting)
    try:
        folder = experiment.stage1(1)
    finally:
        waiting.set()
        thread.join()
    assert "stage1/seed-1: another process is training it; waiting for it" in log
    assert (folder / "stage1.json").is_file()


def test_stage1_of_every_seed_leaves_a_model_another_process_is_training_to_it(tmp_path, tiny_checkpoints):
    experiment, log = experiment_with_log(tmp_path, tiny_checkpoints)
    release = threading.Event()
    thread = held_until(experiment.checkpoint_dir(experiment.stage1_run_name(2)), release)
    try:
        experiment.stage1()  # `flare finetune`, and `flare run` before its runs: seed 2 is the other's
        assert (experiment.stage1_dir_for(1) / "stage1.json").is_file()
        assert not (experiment.stage1_dir_for(2) / "stage1.json").is_file()
        assert "stage1/seed-2: another process is training it; the runs built on it will wait for it" in log
        experiment.run(method="lora", seed=1)  # a run on seed 1 goes on meanwhile
        assert experiment.result_path("lora", "jav", 1).is_file()
    finally:
        release.set()
        thread.join()


def test_two_flare_run_processes_share_a_study_and_train_every_run_once(tmp_path, tiny_checkpoints):
    """The real thing: two `flare run` processes started side by side on one config."""
    (tmp_path / "none.yaml").write_text("{}\n")
    overrides = [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path / 'run'}", *SETTINGS, "threads=1",
                 "languages=[jav, sun]", "seeds=[1, 2, 3]", "stage1_seeds=[1, 2, 3]", "train.epochs=2",
                 "search={grid: {learning_rate: [1.0e-4, 1.0e-2]}, languages: [jav], seeds: [1]}"]
    command = [sys.executable, "-m", "flare.cli.main", "run", str(tmp_path / "none.yaml"), *overrides, "--resume"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "COLUMNS": "400"}) for _ in range(2)]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs

    def trained(output):  # the log lines a run writes only when this process trained it
        return [line.strip() for line in output.splitlines()
                if line.startswith("stage 1: English test") or re.match(r"tuning lora \S+ jav seed 1: validation", line)
                or re.match(r"\s*(zero-shot|lora)\s+(jav|sun) seed \d: ", line)]  # not the progress bars

    lines = trained(outputs[0]) + trained(outputs[1])
    finals = [line for line in lines if not line.startswith(("stage 1", "tuning"))]
    assert sum(line.startswith("stage 1") for line in lines) == 3  # each stage-1 model trained once
    assert sum(line.startswith("tuning") for line in lines) == 2  # each trial once
    assert len(finals) == len(set(finals)) == 2 * 2 * 3  # zero-shot and lora x 2 languages x 3 seeds, once each
    for method in ("zero-shot", "lora"):
        for language in ("jav", "sun"):
            for seed in (1, 2, 3):
                path = tmp_path / "run" / "results" / method / language / f"seed-{seed}.json"
                assert json.loads(path.read_text())["seed"] == seed
    assert all(trained(output) for output in outputs), "one process did all the work: nothing was shared"
