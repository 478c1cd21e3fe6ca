"""Label-word training loss and scoring of decoder heads: the loss with the LM head at the answer
positions only equals the model's own loss; the LM head at the scored positions only gives the
scores that full logits of each unpadded prompt + word give, with and without a source, whichever
way source and prompt positions pair up."""

import pytest
import torch

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.pipeline.data import Collator, build_features, source_kwargs
from flare.heads import create_head
from flare.heads.base import BaseHead
from flare.tasks import get_task


def brute_force(model, head, batch, **source):
    """Every (row, word): one unpadded forward with full logits, word log-probability summed."""
    rows = []
    real = batch["attention_mask"].bool()
    for row, (ids, m, labels) in enumerate(zip(batch["input_ids"], real, batch["labels"])):
        prompt = ids[m][: int((labels[m] == -100).sum())]
        row_source = {k: (v[row:row + 1] if torch.is_tensor(v) else v) for k, v in source.items()}
        scores = []
        for word in head.label_ids:
            full = torch.cat([prompt, torch.tensor(word)])[None]
            mask = torch.ones_like(full)
            if "source_attention_mask" in row_source:  # keep the row's source unpadded as well
                keep = row_source["source_attention_mask"][0].bool()
                row_source = {"source_input_ids": row_source["source_input_ids"][:, keep],
                              "source_attention_mask": row_source["source_attention_mask"][:, keep]}
            told = {"target_lengths": torch.tensor([len(prompt)])} if row_source else {}  # the prompt ends here
            logits = model(input_ids=full, attention_mask=mask, **row_source, **told).logits
            logp = torch.log_softmax(logits[0].float(), -1)
            scores.append(sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(word)))
        rows.append(torch.stack(scores))
    return torch.stack(rows)


@pytest.mark.parametrize("multi_token", [False, True])
@pytest.mark.parametrize("method, alignment", [("lora", "start"), ("flare", "start"), ("flare", "end")])
def test_scoring_at_the_needed_positions_matches_full_logits(tiny_checkpoints, data_root, method, alignment,
                                                             multi_token):
    task = get_task("nusax")
    head = create_head(task, tiny_checkpoints["llama"], 64)
    if multi_token:  # words of one, two and three tokens take the per-word path
        head.label_ids = [[11], [12, 13], [14, 15, 16]]
    else:
        head.label_ids = [[11], [12], [13]]
    torch.manual_seed(0)
    model = get_flare_model(head.load_model(), FlareConfig(init_seed=0, target_modules=["q_proj", "v_proj"],
                                                           alignment=alignment))
    with torch.no_grad():  # a trained-looking adapter, so that the source changes the scores
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.5)
    model.eval()
    examples = task.load("jav", "test", data_root)[:12]
    batch = Collator(head.pad_id)(build_features(examples, head, method))
    source = source_kwargs(batch)
    scores = head.label_scores(model, batch, **source)
    assert scores.shape == (12, 3)
    torch.testing.assert_close(scores, brute_force(model, head, batch, **source), rtol=1e-4, atol=1e-4)
    assert torch.equal(head.predict(model, batch, **source), scores.argmax(1))


@pytest.mark.parametrize("method, alignment", [("lora", "start"), ("flare", "start"), ("flare", "end"),
                                               ("input-fusion", "start")])
@pytest.mark.parametrize("task_name", ["nusax", "xquad"])  # label words; generated answers
def test_answer_position_loss_equals_the_models_own_loss(request, task_name, method, alignment, monkeypatch):
    task = get_task(task_name)
    if task_name == "nusax":
        head = create_head(task, request.getfixturevalue("tiny_checkpoints")["llama"], 64)
        head.label_ids = [[11], [12, 13], [14, 15, 16]]  # answers of different lengths in one batch
        examples = task.load("jav", "train", request.getfixturevalue("data_root"))[:10]
    else:  # answers of different lengths after prompts of different lengths
        head = create_head(task, request.getfixturevalue("qa_checkpoints")["llama"], 40)
        examples = task.load("de", "train", request.getfixturevalue("qa_data_root"))[:10]
        assert len({len(e.answer_texts[0]) for e in examples}) > 1
    model = get_flare_model(head.load_model(), FlareConfig(init_seed=0, target_modules=["q_proj", "v_proj"],
                                                           alignment=alignment))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.5)
    batch = Collator(head.pad_id)(build_features(examples, head, method))
    source = source_kwargs(batch)
    with monkeypatch.context() as patch:  # the answer-position path, not the full-logits fall-back
        patch.setattr(BaseHead, "loss", lambda *a: pytest.fail("fell back to the model's own loss"))
        ours = head.loss(model, batch, source)
    if source:  # the model's own loss pass, told where each prompt ends
        prompt = batch["attention_mask"].bool() & (batch["labels"] == -100)
        source = {**source, "target_lengths": prompt.sum(1)}
    theirs = model(**head.model_inputs(batch), **source).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    ours.backward()
    grads = {n: p.grad.clone() for n, p in model.trainable_parameters().items()}
    model.zero_grad()
    theirs = model(**head.model_inputs(batch), **source).loss
    theirs.backward()
    for name, param in model.trainable_parameters().items():
        torch.testing.assert_close(grads[name], param.grad, rtol=1e-4, atol=1e-6)


def test_the_prompt_does_not_depend_on_the_gold_label(tiny_checkpoints):
    """Label words of different token lengths: a long text is cut to the same prompt whatever its
    label (the budget is set by the longest label word), at training and at test time alike."""
    head = create_head(get_task("nusax"), tiny_checkpoints["llama"], 16)
    head.label_ids = [[11], [12, 13], [14, 15, 16]]
    text = ("ini " * 40).strip()
    prompts = []
    for label in range(3):
        encoded = head.encode((text,), label)
        prompt_length = sum(1 for t in encoded.labels if t == -100)
        prompts.append(encoded.input_ids[:prompt_length])
        assert len(encoded.input_ids) <= 16
    assert prompts[0] == prompts[1] == prompts[2]
