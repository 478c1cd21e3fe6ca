"""Which source states each block gets, and how source and target positions pair up."""

import copy

import pytest
import torch

from flare.core.alignment import Alignment
from flare.core.config import FlareConfig
from flare.core.fusion import FUSIONS
from flare.core.model import FINAL, get_flare_model
from flare.errors import ConfigError
from flare.testing.tiny_models import random_batch, tiny_model


def expected_module_inputs(family, reference, source):
    """What each block's query projection sees in the frozen model, and the final state."""
    with torch.no_grad():
        if family == "bert":
            hidden = reference.bert(**source, output_hidden_states=True).hidden_states
            return list(hidden[:-1]), hidden[-1]
        hidden = reference.model(**source, output_hidden_states=True).hidden_states
        seen = [layer.input_layernorm(h) for layer, h in zip(reference.model.layers, hidden[:-1])]
        return seen, hidden[-1]  # the last entry is already normalised


@pytest.mark.parametrize("family", ["bert", "llama"])
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_block_i_gets_source_of_block_i_plus_k(family, offset):
    base = tiny_model(family)
    reference = copy.deepcopy(base).eval()
    model = get_flare_model(base, FlareConfig(source_layer_offset=offset))
    source = random_batch(family, length=6, seed=2, labels=False)
    states = model.compute_source_states(source["input_ids"], source["attention_mask"])
    per_block, final = expected_module_inputs(family, reference, source)
    blocks = len(per_block)
    for name in model.fuse_names:
        block = int(name.split("layers.")[-1].split(".")[0] if "layers." in name else name.split("layer.")[1].split(".")[0])
        key = model.source_key[name]
        if block + offset < blocks:
            assert f".{block + offset}." in key
            torch.testing.assert_close(states.states[key], per_block[block + offset])
        else:
            assert key == FINAL
            torch.testing.assert_close(states.states[key], final)


def test_modules_wider_than_hidden_fall_back_to_the_last_block():
    model = get_flare_model(tiny_model("llama"), FlareConfig(target_modules=["q_proj", "down_proj"],
                                                            fuse_modules=["down_proj"], source_layer_offset=1))
    assert model.source_key["model.layers.2.mlp.down_proj"] == "model.layers.2.mlp.down_proj"
    assert model.source_key["model.layers.0.mlp.down_proj"] == "model.layers.1.mlp.down_proj"


def test_offset_out_of_range_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"source_layer_offset=3 is out of range: the model has 3 blocks \(use 0 to 2\)"):
        get_flare_model(tiny_model("bert"), FlareConfig(source_layer_offset=3))


def test_alignment_pairs_real_tokens_whatever_the_padding_side():
    source_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 0, 0, 0]])  # left- and right-padded sources
    target_mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
    index, valid = Alignment.build(source_mask, target_mask).index(4)
    assert valid.tolist() == [[True, True, True, False], [False, True, True, False]]
    assert index[0, :3].tolist() == [2, 3, 4]
    assert index[1, 1:3].tolist() == [0, 1]
    # generation: one new position at offset 4 has no source partner
    index, valid = Alignment.build(source_mask, target_mask).index(1, offset=4)
    assert not valid.any()


def test_end_alignment_pairs_the_last_prompt_token_with_the_last_source_token():
    source_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    target_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    # row 0: a 4-token prompt and 2 answer tokens; row 1: a prompt shorter than the source
    # (left-padded); row 2: a prompt longer than the source (right-padded)
    alignment = Alignment.build(source_mask, target_mask, at_end=True, target_lengths=torch.tensor([4, 4, 5]))
    index, valid = alignment.index(6)
    assert valid.tolist() == [[False, True, True, True, False, False],
                              [False, False, True, True, True, True],
                              [False, False, False, True, True, False]]
    assert index[0, 1:4].tolist() == [2, 3, 4]  # prompt end (position 3) meets the source's last token
    assert index[1, 2:].tolist() == [1, 2, 3, 4]  # the first source token has no partner
    assert index[2, 3:5].tolist() == [0, 1]
    # without target_lengths every real token is the prompt
    index, valid = Alignment.build(source_mask, target_mask, at_end=True).index(6)
    assert valid[0].tolist() == [False, False, False, True, True, True] and index[0, 3:].tolist() == [2, 3, 4]
    # generation: positions after the prompt have no partner
    _, valid = alignment.index(2, offset=6)
    assert not valid.any()


def test_end_alignment_prompt_logits_do_not_depend_on_the_answer_after_it():
    """A causal decoder's prompt positions are the same with or without the answer tokens when
    the forward pass is told where the prompt ends (training) and when it is not (prediction)."""
    model = get_flare_model(tiny_model("llama"), FlareConfig(fusion="add", alignment="end", init_seed=1))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.5)
    prompt, answer = torch.randint(3, 128, (2, 5)), torch.randint(3, 128, (2, 2))
    source = torch.randint(3, 128, (2, 7))
    full = torch.cat([prompt, answer], 1)
    with torch.no_grad():
        alone = model(input_ids=prompt, source_input_ids=source).logits
        told = model(input_ids=full, source_input_ids=source, target_lengths=torch.tensor([5, 5])).logits
        untold = model(input_ids=full, source_input_ids=source).logits
    torch.testing.assert_close(told[:, :5], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(untold[:, :5], alone, atol=1e-3)  # the pairing shifted by the answer


def test_unknown_alignment_is_a_config_error():
    with pytest.raises(ConfigError, match="alignment must be one of"):
        FlareConfig(alignment="middle")


@pytest.mark.parametrize("family", ["bert", "llama", "mt5"])
@pytest.mark.parametrize("fusion", sorted(FUSIONS))  # every registered function
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_source_padding_content_changes_nothing(family, fusion, padding_side):
    model = get_flare_model(tiny_model(family), FlareConfig(fusion=fusion, init_seed=1))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.5)
    batch = random_batch(family, length=7)
    source_ids = torch.randint(3, 128, (2, 9))
    mask = torch.ones_like(source_ids)
    if padding_side == "right":
        mask[0, 6:] = 0
        mask[1, 4:] = 0
    else:
        mask[0, :3] = 0
        mask[1, :5] = 0
    first = model(**batch, source_input_ids=source_ids, source_attention_mask=mask).logits
    changed = torch.where(mask.bool(), source_ids, torch.randint(3, 128, source_ids.shape))
    second = model(**batch, source_input_ids=changed, source_attention_mask=mask).logits
    without = model(**batch).logits
    torch.testing.assert_close(first, second, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(first, without)  # the source does matter
