"""X-Mixup baseline on tiny random models (BERT classification, Llama causal LM, PEFT LoRA)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForQuestionAnswering

from flare.baselines.xmixup import (
    XMixupConfig,
    XMixupModel,
    find_transformer_blocks,
    gold_source_probability,
    pair_entropy,
)
from flare.errors import ConfigError, FlareError
from flare.testing.tiny_models import VOCAB, random_batch, tiny_model

PAD = 0


def padded(rows: list[list[int]], width: int | None = None, pad_value: int = PAD):
    width = width or max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


def tokens(seed: int, lengths: list[int]) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in lengths]


def cls_batch(seed: int = 0):
    """A target batch and its source (different lengths, padded) with shared class labels."""
    target_ids, target_mask = padded(tokens(seed, [9, 6]))
    source_ids, source_mask = padded(tokens(seed + 100, [5, 7]))
    return dict(input_ids=target_ids, attention_mask=target_mask, labels=torch.tensor([0, 2]),
                source_input_ids=source_ids, source_attention_mask=source_mask)


def lm_batch(seed: int = 0, extra_source_pad: int = 0, pad_fill: int | None = None):
    """Causal-LM pairs: target/source prompts of different lengths, the same 2-token answer."""
    answers = tokens(seed + 7, [2, 2])
    tgt = [p + a for p, a in zip(tokens(seed, [7, 5]), answers)]
    src = [p + a for p, a in zip(tokens(seed + 100, [4, 6]), answers)]
    t_ids, t_mask = padded(tgt)
    s_ids, s_mask = padded(src, max(map(len, src)) + extra_source_pad)
    if pad_fill is not None:
        g = torch.Generator().manual_seed(pad_fill)
        s_ids = torch.where(s_mask.bool(), s_ids, torch.randint(3, VOCAB, s_ids.shape, generator=g))

    def labels(ids, mask, prompt_lengths):
        out = ids.clone()
        out[mask == 0] = -100
        for i, n in enumerate(prompt_lengths):
            out[i, :n] = -100
        return out

    return dict(input_ids=t_ids, attention_mask=t_mask, labels=labels(t_ids, t_mask, [7, 5]),
                source_input_ids=s_ids, source_attention_mask=s_mask,
                source_labels=labels(s_ids, s_mask, [4, 6]))


def bert(seed: int = 0):
    return tiny_model("bert", seed=seed)


def llama(seed: int = 0):
    return tiny_model("llama", seed=seed)


# ----------------------------------------------------------------------------- structure / config
def test_finds_blocks_plain_and_peft():
    name, blocks = find_transformer_blocks(bert())
    assert name == "bert.encoder.layer" and len(blocks) == 3
    name, blocks = find_transformer_blocks(llama())
    assert name == "model.layers" and len(blocks) == 3
    lora = get_peft_model(bert(), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    name, blocks = find_transformer_blocks(lora)
    assert name == "bert.encoder.layer" and len(blocks) == 3


def test_config_validation_and_presets():
    with pytest.raises(ConfigError):
        XMixupConfig(lambda_0=1.5).validate()
    with pytest.raises(ConfigError):
        XMixupConfig(rep_pooling="max").validate()
    with pytest.raises(ConfigError):
        XMixupModel(bert(), XMixupConfig(mix_layer=3))
    assert XMixupModel(bert(), XMixupConfig(mix_layer=-1)).mix_index == 2
    assert XMixupConfig.paper_preset("qa").mix_layer == 15
    qa = XMixupConfig.paper_preset("qa", num_layers=3)
    assert qa.mix_layer == 2 and qa.kl_weight == 0.0 and qa.source_task_weight == 0.2
    assert XMixupConfig.paper_preset("classification", num_layers=32).mix_layer == 0
    assert XMixupConfig.from_dict(XMixupConfig().to_dict()) == XMixupConfig()
    assert gold_source_probability(0, 1000) == pytest.approx(1000 / 1001)
    assert gold_source_probability(20000, 1000) < gold_source_probability(5000, 1000) < 1


# ----------------------------------------------------------------------------- no source
@pytest.mark.parametrize("family", ["bert", "llama"])
def test_no_source_equals_wrapped_model(family):
    model = tiny_model(family)
    wrapped = XMixupModel(model, XMixupConfig(mix_layer=1))
    batch = cls_batch() if family == "bert" else lm_batch()
    target = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
    wrapped(**batch).loss.backward()  # a mixed step first: its hook state must not leak
    for mode in ("train", "eval"):
        getattr(wrapped, mode)()
        with torch.no_grad():
            expected = model(**target)
            got = wrapped(**target)
            direct = model(**target)  # the wrapped model called directly stays plain too
        assert type(got) is type(expected)
        assert torch.equal(got.logits, expected.logits) and torch.equal(got.loss, expected.loss)
        assert torch.equal(direct.logits, expected.logits)


def test_eval_without_mixing_ignores_source():
    model = bert()
    wrapped = XMixupModel(model, XMixupConfig(mix_layer=1, mix_at_eval=False)).eval()
    batch = cls_batch()
    with torch.no_grad():
        got = wrapped(**batch)
        expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    assert torch.equal(got.logits, expected.logits)


def test_eval_with_source_averages_logits():
    wrapped = XMixupModel(bert(), XMixupConfig(mix_layer=1)).eval()
    with torch.no_grad():
        out = wrapped(**cls_batch())
    assert torch.allclose(out.logits, (out.source_logits + out.target_logits) / 2)


# ----------------------------------------------------------------------------- mixing and losses
def test_mixing_formula_and_lambda_by_hand():
    """The mix block's output equals (1 - lam) h_T + lam * CrossAttn(h_T, h_S) with
    lam = lambda_0 * sigmoid(H), recomputed here from the unmixed states (identity-initialised
    projections, no-parameter layer norm on queries and keys)."""
    model = bert()
    blocks = model.bert.encoder.layer
    batch = cls_batch()
    seen = []
    handle = blocks[1].register_forward_hook(lambda m, a, out: seen.append(out.detach()))
    with torch.no_grad():
        model(input_ids=batch["source_input_ids"], attention_mask=batch["source_attention_mask"])
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    handle.remove()
    h_s, h_t = seen
    wrapped = XMixupModel(model, XMixupConfig(mix_layer=1, lambda_0=0.5))
    seen.clear()
    handle = blocks[1].register_forward_hook(lambda m, a, out: seen.append(out.detach()))  # runs after X-Mixup's
    with torch.no_grad():
        out = wrapped(**batch)
    handle.remove()
    assert torch.equal(seen[0], h_s)  # the source pass is not mixed
    mixed = seen[1]

    heads, dh = 4, 8
    s_mask, t_mask = batch["source_attention_mask"], batch["attention_mask"]

    def split(x):
        return x.view(x.shape[0], x.shape[1], heads, dh).transpose(1, 2)

    q, k = split(F.layer_norm(h_t, (32,))), split(F.layer_norm(h_s, (32,)))
    scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
    probs = scores.masked_fill(s_mask[:, None, None, :] == 0, -1e30).softmax(-1)
    cross = (probs @ split(h_s)).transpose(1, 2).reshape(h_t.shape)

    def entropy(sc, key_mask, query_mask):
        result = []
        for b in range(sc.shape[0]):
            kb, qb = key_mask[b].bool(), query_mask[b].bool()
            p = sc[b][:, qb][:, :, kb].softmax(-1)
            result.append(-(p * p.log()).sum(-1).mean())
        return torch.stack(result)

    h = entropy(scores, s_mask, t_mask) + entropy(scores.transpose(-1, -2), t_mask, s_mask)
    assert torch.allclose(pair_entropy(scores, s_mask, t_mask), h, atol=1e-5)
    lam = 0.5 * torch.sigmoid(h)
    assert torch.allclose(out.mixing_ratio, lam, atol=1e-5)
    expected = (1 - lam)[:, None, None] * h_t + lam[:, None, None] * cross
    assert torch.allclose(mixed, expected, atol=1e-5)
    assert torch.allclose(wrapped.mixing_attention, probs, atol=1e-6)


def test_loss_terms_match_hand_computation():
    model = bert()
    config = XMixupConfig(mix_layer=1, source_task_weight=0.4, kl_weight=0.7, mse_weight=1.3)
    wrapped = XMixupModel(model, config)
    batch = cls_batch()
    out = wrapped(**batch)
    with torch.no_grad():
        plain_source = model(input_ids=batch["source_input_ids"], attention_mask=batch["source_attention_mask"],
                             labels=batch["labels"], output_hidden_states=True)
        plain_target = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    # the source pass is the plain model on the source (shared weights, no mixing)
    assert torch.allclose(out.source_task_loss, plain_source.loss, atol=1e-6)
    assert torch.allclose(out.source_logits, plain_source.logits, atol=1e-6)
    assert torch.allclose(out.source_representation, plain_source.hidden_states[-1][:, 0], atol=1e-6)
    assert not torch.allclose(out.target_logits, plain_target.logits, atol=1e-4)  # mixing acts

    p_s, p_t = out.source_logits.softmax(-1), out.target_logits.softmax(-1)
    kl = (p_s * (p_s.log() - p_t.log())).sum(-1).mean()
    mse = ((out.target_representation - out.source_representation) ** 2).mean()
    ce_t = F.cross_entropy(out.target_logits, batch["labels"])
    assert torch.allclose(out.kl_loss, kl, atol=1e-6)
    assert torch.allclose(out.mse_loss, mse, atol=1e-6)
    assert torch.allclose(out.target_task_loss, ce_t, atol=1e-6)
    total = 0.4 * plain_source.loss + 0.6 * ce_t + 0.7 * kl + 1.3 * mse
    assert torch.allclose(out.loss, total, atol=1e-5)
    assert torch.allclose(out.task_loss, 0.4 * plain_source.loss + 0.6 * ce_t, atol=1e-6)


def test_extractive_qa_routes_source_positions():
    """QA (the authors' setting): source span labels come as source_start/end_positions, no KL
    (span distributions of two languages do not correspond), MSE on mean-pooled states."""
    torch.manual_seed(0)
    qa_model = BertForQuestionAnswering(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3,
                                                   num_attention_heads=4, intermediate_size=64,
                                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    wrapped = XMixupModel(qa_model, XMixupConfig.paper_preset("qa", num_layers=3))
    batch = cls_batch()
    del batch["labels"]
    batch.update(start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4]),
                 source_start_positions=torch.tensor([0, 1]), source_end_positions=torch.tensor([2, 5]))
    out = wrapped(**batch)
    assert out.kl_loss is None and out.start_logits is not None and out.logits is None
    expected_rep = (out.target_representation - out.source_representation).pow(2).mean()
    assert torch.allclose(out.mse_loss, expected_rep, atol=1e-6)
    assert torch.allclose(out.loss, 0.2 * out.source_task_loss + 0.8 * out.target_task_loss + out.mse_loss,
                          atol=1e-6)


def test_lm_kl_pairs_supervised_tokens():
    wrapped = XMixupModel(llama(), XMixupConfig(mix_layer=1))
    batch = lm_batch()
    out = wrapped(**batch)
    s_keep, t_keep = batch["source_labels"][:, 1:] != -100, batch["labels"][:, 1:] != -100
    p_s = out.source_logits[:, :-1][s_keep].softmax(-1)
    p_t = out.target_logits[:, :-1][t_keep].softmax(-1)
    kl = (p_s * (p_s.log() - p_t.log())).sum(-1).mean()
    assert torch.allclose(out.kl_loss, kl, atol=1e-5)
    assert out.source_task_loss is not None and out.mse_loss is not None


# ----------------------------------------------------------------------------- padding
def test_source_padding_changes_nothing_bert():
    wrapped = XMixupModel(bert(), XMixupConfig(mix_layer=1))
    batch = cls_batch()
    other = dict(batch)
    ids, mask = batch["source_input_ids"], batch["source_attention_mask"]
    ids = torch.cat([ids, torch.full((2, 3), PAD)], 1)
    mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], 1)
    other["source_input_ids"] = torch.where(mask.bool(), ids, torch.randint(3, VOCAB, ids.shape))
    other["source_attention_mask"] = mask
    with torch.no_grad():
        a, b = wrapped(**batch), wrapped(**other)
    for field in ("loss", "logits", "source_logits", "mixing_ratio", "kl_loss", "mse_loss"):
        assert torch.allclose(a[field], b[field], atol=1e-5), field


def test_source_padding_changes_nothing_llama():
    wrapped = XMixupModel(llama(), XMixupConfig(mix_layer=1))
    with torch.no_grad():
        a = wrapped(**lm_batch())
        b = wrapped(**lm_batch(extra_source_pad=3, pad_fill=5))
    for field in ("loss", "logits", "mixing_ratio", "kl_loss", "mse_loss", "source_task_loss"):
        assert torch.allclose(a[field], b[field], atol=1e-5), field


# ----------------------------------------------------------------------------- gradients / training
def test_gradients_reach_mixing_parameters():
    wrapped = XMixupModel(bert(), XMixupConfig(mix_layer=1))
    wrapped(**cls_batch()).loss.backward()
    for name, param in wrapped.mixer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def _train(wrapped, batch, steps=8, lr=3e-3):
    optimizer = torch.optim.Adam(wrapped.trainable_parameters().values(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = wrapped(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_training_reduces_loss(family):
    torch.manual_seed(0)
    wrapped = XMixupModel(tiny_model(family), XMixupConfig(mix_layer=1))
    batch = cls_batch() if family == "bert" else lm_batch()
    losses = _train(wrapped, batch)
    assert losses[-1] < 0.8 * losses[0], losses


def test_peft_lora_model():
    lora = get_peft_model(bert(), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                             modules_to_save=["classifier"]))
    wrapped = XMixupModel(lora, XMixupConfig(mix_layer=1))
    names = list(wrapped.trainable_parameters())
    assert any("lora_A" in n for n in names) and any(n.startswith("mixer.") for n in names)
    assert not any("base_layer" in n or "word_embeddings" in n for n in names)
    batch = cls_batch()
    wrapped(**batch).loss.backward()
    grads = {n: p.grad for n, p in wrapped.trainable_parameters().items()}
    assert all(grads[n] is not None for n in names if "lora_B" in n or n.startswith("mixer."))
    assert any(grads[n].abs().sum() > 0 for n in names if "lora_B" in n)
    wrapped.zero_grad()
    losses = _train(wrapped, batch, lr=1e-2)
    assert losses[-1] < 0.8 * losses[0], losses


def test_gradient_checkpointing_gives_same_gradients():
    results = []
    for checkpointing in (False, True):
        wrapped = XMixupModel(bert(), XMixupConfig(mix_layer=1))
        if checkpointing:
            wrapped.gradient_checkpointing_enable()
        loss = wrapped(**cls_batch()).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in wrapped.named_parameters()
                                        if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-5), name


# ----------------------------------------------------------------------------- generation / persistence
def test_generate_mixes_like_forward():
    wrapped = XMixupModel(llama(), XMixupConfig(mix_layer=1)).eval()
    target_ids, target_mask = padded(tokens(1, [6, 6]))
    source_ids, source_mask = padded(tokens(2, [4, 7]))
    with torch.no_grad():
        out = wrapped(input_ids=target_ids, attention_mask=target_mask,
                      source_input_ids=source_ids, source_attention_mask=source_mask)
        generated = wrapped.generate(input_ids=target_ids, attention_mask=target_mask,
                                     source_input_ids=source_ids, source_attention_mask=source_mask,
                                     max_new_tokens=3, do_sample=False, pad_token_id=PAD)
    assert generated.shape == (2, 9)
    assert torch.equal(generated[:, 6], out.target_logits[:, -1].argmax(-1))


def test_source_batch_mismatch_is_an_error():
    batch = cls_batch()
    batch["source_input_ids"] = batch["source_input_ids"][:1]
    batch["source_attention_mask"] = batch["source_attention_mask"][:1]
    with pytest.raises(FlareError):
        XMixupModel(bert(), XMixupConfig(mix_layer=1))(**batch)


def test_save_and_load_roundtrip(tmp_path):
    wrapped = XMixupModel(bert(), XMixupConfig(mix_layer=1, kl_weight=0.5))
    _train(wrapped, cls_batch(), steps=2)
    wrapped.eval()
    wrapped.save_pretrained(tmp_path)
    restored = XMixupModel.from_pretrained(bert(), tmp_path).eval()
    # every parameter of the plain model is trainable, so all of them were saved and restored
    assert restored.xmixup_config.kl_weight == 0.5
    with torch.no_grad():
        assert torch.allclose(wrapped(**cls_batch()).loss, restored(**cls_batch()).loss, atol=1e-6)


class _CheckpointWholeCall(torch.nn.Module):
    """Checkpoints a block's whole __call__ (hooks included), as older wrappers did."""

    def __init__(self, block, reentrant):
        super().__init__()
        self.block, self.reentrant = block, reentrant

    def forward(self, hidden_states, *args, **kwargs):
        return torch.utils.checkpoint.checkpoint(lambda h: self.block(h, *args, **kwargs), hidden_states,
                                                 use_reentrant=self.reentrant)


def test_recomputed_mix_block_is_mixed_again():
    reentrant = False
    grads = []
    for checkpointing in (False, True):
        model = bert()
        encoder = model.bert.encoder
        encoder.blocks = torch.nn.ModuleList(list(encoder.layer))  # where X-Mixup hooks
        if checkpointing:
            encoder.layer = torch.nn.ModuleList(_CheckpointWholeCall(b, reentrant) for b in encoder.blocks)
        wrapped = XMixupModel(model, XMixupConfig(mix_layer=1, blocks_path="bert.encoder.blocks"))
        wrapped(**cls_batch()).loss.backward()
        grads.append({n: p.grad.clone() for n, p in wrapped.mixer.named_parameters()}
                     | {"query": encoder.blocks[0].attention.self.query.weight.grad.clone()})
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5), name


@pytest.mark.parametrize("family", ["xlm-roberta", "gemma2", "qwen2", "mt5"])
def test_other_families_mix_and_train(family):
    wrapped = XMixupModel(tiny_model(family), XMixupConfig(mix_layer=1))
    target, source = random_batch(family, length=8, seed=1), random_batch(family, length=6, seed=2)
    extra = {} if family == "xlm-roberta" else {"source_labels": target["labels"] if family == "mt5"
                                                else source["labels"]}
    out = wrapped(**target, source_input_ids=source["input_ids"],
                  source_attention_mask=source["attention_mask"], **extra)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.source_task_loss is not None
    assert wrapped.mixer.q_proj.weight.grad.abs().sum() > 0
