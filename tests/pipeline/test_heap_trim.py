"""The training and evaluation loops (flare's own and FlareTrainer) trim the C heap as they go."""

from flare import heap
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment

SETTINGS = ["methods=[flare]", "languages=[jav]", "seeds=[1]", "stage1.epochs=1", "stage1.max_train_examples=16",
            "train.epochs=2", "train.max_train_examples=32", "train.batch_size=8", "train.max_length=32",
            "train.max_eval_examples=16", "train.eval_batch_size=8"]


def test_an_experiment_trims_every_training_step_and_evaluation_batch(tmp_path, tiny_checkpoints, monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "malloc_trim", lambda: calls.append)
    monkeypatch.setattr(heap, "EVERY_SECONDS", 0.0)
    model = tiny_checkpoints["bert"]
    config = load_config(None, [f"model={model}", f"output_dir={tmp_path}", *SETTINGS])
    Experiment(config, log=lambda m: None).run()
    result = tmp_path / "results" / "flare" / "jav" / "seed-1.json"
    assert result.is_file()
    # stage 1 (2 steps) and flare (2 epochs x 4 steps) train; each evaluation reads 2 batches
    assert len(calls) >= 2 + 8 + 2 * 2, len(calls)
