"""Generation fuses exactly as teacher-forced training does."""

import pytest
import torch

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.testing.tiny_models import tiny_model


def make_model(family, fusion, alignment="start"):
    model = get_flare_model(tiny_model(family), FlareConfig(fusion=fusion, alignment=alignment, init_seed=0))
    with torch.no_grad():
        for name, param in model.trainable_parameters().items():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return model.eval()


@pytest.mark.parametrize("family", ["llama", "gemma3", "qwen2"])
@pytest.mark.parametrize("fusion, alignment", [("add_relu", "start"), ("add_relu", "end"), ("cross_attention", "start")])
def test_generated_step_logits_equal_teacher_forced_logits(family, fusion, alignment):
    model = make_model(family, fusion, alignment)
    torch.manual_seed(0)
    prompt = torch.randint(3, 128, (2, 6))
    prompt_mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])  # left padding, as for batched generation
    source = torch.randint(3, 128, (2, 8))
    source_mask = torch.tensor([[1] * 8, [0, 0, 0, 1, 1, 1, 1, 1]])
    new_tokens = 4
    out = model.generate(input_ids=prompt, attention_mask=prompt_mask, source_input_ids=source,
                         source_attention_mask=source_mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    sequence = out.sequences
    mask = torch.cat([prompt_mask, torch.ones(2, new_tokens, dtype=torch.long)], dim=1)
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        # the teacher-forced pass says where its prompt ends, as the training loop does
        forced = model(input_ids=sequence, attention_mask=mask, position_ids=position_ids,
                       source_input_ids=source, source_attention_mask=source_mask,
                       target_lengths=prompt_mask.sum(1)).logits
    for step, step_logits in enumerate(out.logits):
        torch.testing.assert_close(step_logits, forced[:, prompt.shape[1] - 1 + step], rtol=1e-4, atol=1e-4)
    # and the source mattered
    plain = model.generate(input_ids=prompt, attention_mask=prompt_mask, max_new_tokens=1, do_sample=False,
                           output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    assert not torch.allclose(plain.logits[0], out.logits[0])


def test_beam_search_expands_the_source():
    model = make_model("llama", "add")
    prompt = torch.randint(3, 128, (2, 5))
    source = torch.randint(3, 128, (2, 7))
    out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), source_input_ids=source,
                         source_attention_mask=torch.ones_like(source), max_new_tokens=3, num_beams=3,
                         num_return_sequences=2, do_sample=False, pad_token_id=0)
    assert out.shape == (4, 8)


def test_encoder_decoder_generation_with_source():
    model = make_model("mt5", "add_relu")
    ids = torch.randint(3, 128, (2, 6))
    source = torch.randint(3, 128, (2, 5))
    fused = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), source_input_ids=source,
                           source_attention_mask=torch.ones_like(source), max_new_tokens=4, do_sample=False,
                           output_logits=True, return_dict_in_generate=True)
    plain = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                           output_logits=True, return_dict_in_generate=True)
    assert not torch.allclose(fused.logits[0], plain.logits[0])
