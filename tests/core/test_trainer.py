"""FLARE in a plain transformers.Trainer: FlareDataCollator + FlareTrainer train a tiny model,
save the adapter folder only, and the folder reloads by path to identical predictions."""

import pytest
import torch
from transformers import BertForSequenceClassification, TrainingArguments

from flare.core.config import FlareConfig
from flare.core.model import FlareModel, get_flare_model
from flare.sources.cache import add_source_states
from flare.testing.tiny_models import VOCAB, tiny_model
from flare.trainer import FlareDataCollator, FlareTrainer


def features(n=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        label = i % 3
        length = 5 + i % 4
        target = (torch.randint(3, VOCAB, (length,), generator=generator)).tolist()
        english = [10 + label] * 3 + torch.randint(3, VOCAB, (length - 2,), generator=generator).tolist()
        rows.append({"input_ids": target, "labels": label, "source_input_ids": english})
    return rows


@pytest.mark.parametrize("cached", [False, True])
def test_trainer_round_trip(tmp_path, cached):
    tiny_model("bert").save_pretrained(tmp_path / "base")
    model = get_flare_model(BertForSequenceClassification.from_pretrained(tmp_path / "base"), FlareConfig(init_seed=0))
    train = features()
    if cached:
        add_source_states(model, train, pad_id=0, log=lambda message: None)
        assert "source_states" in train[0]
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=4, per_device_train_batch_size=8,
                             learning_rate=5e-2, report_to=[], use_cpu=True, save_strategy="no", logging_steps=100)
    before = {n: p.detach().clone() for n, p in model.trainable_parameters().items()}
    FlareTrainer(model=model, args=args, train_dataset=train, data_collator=FlareDataCollator(0)).train()
    assert any(not torch.equal(p, before[n]) for n, p in model.trainable_parameters().items())

    trainer = FlareTrainer(model=model, args=args, data_collator=FlareDataCollator(0))
    trainer.save_model(str(tmp_path / "out"))
    files = {p.name: p.stat().st_size for p in (tmp_path / "out").iterdir()}
    assert "flare_adapter.safetensors" in files and "model.safetensors" not in files
    base_size = (tmp_path / "base" / "model.safetensors").stat().st_size
    assert files["flare_adapter.safetensors"] < base_size / 2

    loaded = FlareModel.from_pretrained(str(tmp_path / "out")).eval()
    model.eval()
    batch = FlareDataCollator(0)(features(6, seed=9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)
    assert torch.equal(loaded(**batch).logits.argmax(-1), model(**batch).logits.argmax(-1))


def test_collator_passes_prompt_lengths_for_label_sequences():
    batch = FlareDataCollator(0)([{"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8], "source_input_ids": [9, 9]},
                                  {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "source_input_ids": [9]}])
    assert batch["target_lengths"].tolist() == [2, 1]
    assert batch["source_attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert "ids" not in batch


def test_trainer_trims_the_heap_as_it_trains(tmp_path, monkeypatch):
    from flare import heap

    calls = []
    monkeypatch.setattr(heap, "malloc_trim", lambda: calls.append)
    monkeypatch.setattr(heap, "EVERY_SECONDS", 0.0)
    model = get_flare_model(tiny_model("bert"), FlareConfig(init_seed=0))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=8, report_to=[],
                             use_cpu=True, save_strategy="no", logging_steps=100)
    FlareTrainer(model=model, args=args, train_dataset=features(), data_collator=FlareDataCollator(0)).train()
    assert len(calls) == 3  # one per optimizer step
