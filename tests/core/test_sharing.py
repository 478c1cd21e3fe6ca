"""A saved FLARE adapter loads from its folder alone (base + stage 1 + adapter), carries a model
card naming the real base model, and uploads to a hub repository (huggingface_hub mocked)."""

import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from flare.core.config import FlareConfig
from flare.core.model import FlareModel, get_flare_model
from flare.errors import FlareError
from flare.testing.tiny_models import random_batch, tiny_model


@pytest.fixture
def saved(tmp_path):
    """A user's base model folder, a trained-looking stage-1 adapter and FLARE adapter on it."""
    tiny_model("bert").save_pretrained(tmp_path / "base")
    import transformers

    base = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "base")
    stage1 = get_peft_model(base, LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"]))
    with torch.no_grad():
        for name, param in stage1.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(2)) * 0.3)
    config = FlareConfig(fusion="add_relu", init_seed=0,
                         card={"task": "nusax", "method": "flare", "languages": ["jv", "en"], "metrics": {"macro_f1": 81.5}})
    model = get_flare_model(stage1, config)
    with torch.no_grad():
        for param in model.trainable_parameters().values():
            param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(3)) * 0.3)
    model.save_pretrained(tmp_path / "adapter")
    return model.eval(), tmp_path


def test_loads_from_the_folder_alone_with_identical_outputs(saved):
    model, root = saved
    loaded = FlareModel.from_pretrained(str(root / "adapter")).eval()
    batch = random_batch("bert", labels=False)
    source = random_batch("bert", length=5, seed=4, labels=False)
    kwargs = dict(source_input_ids=source["input_ids"], source_attention_mask=source["attention_mask"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch, **kwargs).logits, model(**batch, **kwargs).logits, rtol=0, atol=0)
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)
    # the stage-1 folder is an ordinary PEFT adapter: the English task model
    import transformers

    english = PeftModel.from_pretrained(transformers.BertForSequenceClassification.from_pretrained(root / "base"),
                                        str(root / "adapter" / "stage1")).eval()
    assert english(**batch).logits.shape == (2, 3)


def test_the_card_names_the_real_base_model(saved):
    _, root = saved
    card = (root / "adapter" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: flare\n")
    assert f"base_model: {root / 'base'}" in card and "- jv" in card and "macro_f1" in card and "81.50" in card
    config = json.loads((root / "adapter" / "flare_config.json").read_text())
    assert config["base_model_class"] == "BertForSequenceClassification"
    assert set(config["environment"]) >= {"torch", "transformers", "peft"}
    stage1 = json.loads((root / "adapter" / "stage1" / "adapter_config.json").read_text())
    assert stage1["base_model_name_or_path"] == str(root / "base")


def test_another_base_is_refused(saved, tmp_path):
    _, root = saved
    tiny_model("bert", seed=5).save_pretrained(tmp_path / "other")
    with pytest.raises(FlareError, match="different base model"):
        FlareModel.from_pretrained(str(root / "adapter"), base_model=str(tmp_path / "other"))


def test_push_to_hub_uploads_the_folder(saved, monkeypatch):
    import huggingface_hub

    model, _ = saved
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["repo"] = (repo_id, kwargs)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        from pathlib import Path

        calls["files"] = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        return type("Info", (), {"commit_url": f"https://hub.example/{repo_id}/commit/1"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    url = model.push_to_hub("someone/flare-nusax-jav", private=True)
    assert url.endswith("someone/flare-nusax-jav/commit/1")
    assert calls["repo"] == ("someone/flare-nusax-jav", {"private": True, "exist_ok": True})
    assert set(calls["files"]) >= {"README.md", "base_config.json", "flare_adapter.safetensors", "flare_config.json",
                                   "stage1/adapter_config.json", "stage1/adapter_model.safetensors"}


def test_the_card_names_the_hub_id_of_an_alias_not_its_cache_path():
    from flare.core.sharing import model_card

    config = FlareConfig(card={"base_model": "intfloat/multilingual-e5-small", "languages": ["jav", "eng"]})
    config.base_model_name_or_path = "/cache/flare/models/e5-small"
    card = model_card(config)
    assert "base_model: intfloat/multilingual-e5-small\n" in card
    assert "| loaded from | /cache/flare/models/e5-small |" in card
