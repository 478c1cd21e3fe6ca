"""The LM head's input is made contiguous (flare.core.lm_head): the same logits and tokens, and
every place flare loads a causal LM has the guard. The speed and memory it saves are measured by
studies/bench/lm_head_input.py, not here."""

import torch

from flare.core.lm_head import _HOOKED as HOOKED
from flare.core.lm_head import contiguous_lm_head_input
from flare.testing.tiny_models import tiny_model


def frozen_bf16(family="gemma3"):
    model = tiny_model(family).to(torch.bfloat16).eval()
    return model.requires_grad_(False)


def seen_by_head(model) -> list[bool]:
    seen = []
    model.get_output_embeddings().register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous()))
    return seen


def test_the_head_gets_a_contiguous_input_and_gives_the_same_logits_and_tokens():
    plain, guarded = frozen_bf16(), frozen_bf16()
    contiguous_lm_head_input(guarded)
    plain_seen, guarded_seen = seen_by_head(plain), seen_by_head(guarded)
    torch.manual_seed(0)
    prompt = torch.randint(3, 128, (3, 12))
    mask = torch.ones_like(prompt)
    mask[1, :4] = 0  # left padding, as for batched generation
    outputs = [model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=5, min_new_tokens=5,
                              do_sample=False, output_logits=True, return_dict_in_generate=True, pad_token_id=0)
               for model in (plain, guarded)]
    assert torch.equal(outputs[0].sequences, outputs[1].sequences)
    for a, b in zip(outputs[0].logits, outputs[1].logits):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the prompt's last position is a strided slice without the guard; the head never sees one with it
    assert not plain_seen[0] and all(guarded_seen)
    with torch.no_grad():  # a teacher-forced pass at kept positions too
        a = plain(input_ids=prompt, attention_mask=mask, logits_to_keep=1).logits
        b = guarded(input_ids=prompt, attention_mask=mask, logits_to_keep=1).logits
    assert torch.equal(a, b)


def test_the_guard_is_added_once_and_skips_models_without_an_output_layer():
    model = frozen_bf16("llama")
    contiguous_lm_head_input(contiguous_lm_head_input(model))
    assert len(model.get_output_embeddings()._forward_pre_hooks) == 1
    encoder = tiny_model("bert")
    assert contiguous_lm_head_input(encoder) is encoder  # BERT's base model has no output layer: unchanged


def test_every_causal_lm_flare_loads_has_the_guard(tmp_path):
    """The decoder heads' model, and a saved adapter's base model; the translator: tests/translation."""
    from types import SimpleNamespace

    from flare.core.sharing import load_base
    from flare.heads.base import CausalLMHead

    class Loader(CausalLMHead):
        def __init__(self, path):
            self.model_path, self.load_options = path, {}

    path = str(tmp_path / "llama")
    tiny_model("llama").save_pretrained(path)
    assert getattr(Loader(path).load_model().get_output_embeddings(), HOOKED)
    saved = SimpleNamespace(base_model_name_or_path=path, base_model_class="LlamaForCausalLM",
                            base_model_revision=None)
    assert getattr(load_base(tmp_path, saved).get_output_embeddings(), HOOKED)
