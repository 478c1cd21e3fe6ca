"""The e5 converter on small synthetic E5S1 files (offline, fast)."""

import json
import struct

import numpy as np
import pytest
import torch
from pretrained_fakes import PIECES, TINY, hf_key_map, make_e5_file, make_tokenizer_json
from safetensors.numpy import load_file

from flare.pretrained.e5 import convert_e5_bin, write_tokenizer
from flare.pretrained.e5_format import E5FormatError, dequantize_q4_0, parse_e5
from flare.pretrained.errors import ProvisioningError


def test_q4_0_block_by_hand():
    # d = 0.5; byte j holds j in its low nibble and 15 - j in its high nibble.
    d = np.float16(0.5)
    qs = bytes((15 - j) << 4 | j for j in range(16))
    values = dequantize_q4_0(d.tobytes() + qs, 32)
    low = [(j - 8) * 0.5 for j in range(16)]  # -4.0, -3.5, ..., 3.5
    high = [(15 - j - 8) * 0.5 for j in range(16)]  # 3.5, 3.0, ..., -4.0
    assert values.dtype == np.float32
    assert values.tolist() == low + high


def test_q4_0_two_blocks_keep_their_own_scale():
    raw = np.float16(1.0).tobytes() + bytes([0x8F] * 16) + np.float16(-0.25).tobytes() + bytes([0x08] * 16)
    values = dequantize_q4_0(raw, 64)
    # block 1: low nibble 15 -> 7, high nibble 8 -> 0; block 2: low 8 -> 0, high 0 -> -8 * -0.25 = 2
    assert values[:16].tolist() == [7.0] * 16 and values[16:32].tolist() == [0.0] * 16
    assert values[32:48].tolist() == [0.0] * 16 and values[48:].tolist() == [2.0] * 16


def test_q4_0_rejects_wrong_sizes():
    with pytest.raises(E5FormatError):
        dequantize_q4_0(b"\0" * 18, 31)
    with pytest.raises(E5FormatError):
        dequantize_q4_0(b"\0" * 17, 32)


def test_parse_header_vocab_and_directory(tmp_path):
    path = tmp_path / "tiny.bin"
    make_e5_file(path)
    e5 = parse_e5(path.read_bytes())
    h = e5.header
    assert (h.hidden, h.n_layers, h.n_heads, h.ffn, h.vocab, h.max_positions, h.type_vocab) == tuple(TINY.values())
    assert h.block_size == 32 and h.layer_norm_eps == pytest.approx(1e-12)
    assert e5.vocab.pieces == PIECES and (e5.vocab.bos, e5.vocab.eos, e5.vocab.pad, e5.vocab.unk) == (0, 2, 1, 3)
    assert e5.normalization == b"abc"
    assert e5.tensors["l0.q.w"].dtype == 1 and e5.tensors["l0.q.b"].dtype == 0


def test_converted_tensors_match_the_definition(tmp_path):
    path = tmp_path / "tiny.bin"
    expected = make_e5_file(path)
    convert_e5_bin(path, tmp_path / "out")
    state = load_file(str(tmp_path / "out" / "model.safetensors"))
    keys = hf_key_map(TINY["n_layers"])
    assert set(state) == set(keys.values())
    for name, key in keys.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], expected[name], err_msg=name)


def test_converted_folder_is_a_loadable_bert(tmp_path):
    from transformers import AutoModel, AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    path = tmp_path / "tiny.bin"
    expected = make_e5_file(path)
    out = tmp_path / "out"
    convert_e5_bin(path, out)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["pad_token_id"] == 1 and config["layer_norm_eps"] == 1e-12

    model = AutoModel.from_pretrained(out)
    assert type(model).__name__ == "BertModel"
    torch.testing.assert_close(model.encoder.layer[1].intermediate.dense.weight.detach(),
                               torch.from_numpy(expected["l1.fi.w"]))
    torch.testing.assert_close(model.embeddings.word_embeddings.weight.detach(), torch.from_numpy(expected["emb.word"]))
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([[0, 4, 5, 2]])).last_hidden_state
    assert hidden.shape == (1, 4, TINY["hidden"]) and torch.isfinite(hidden).all()

    classifier = AutoModelForSequenceClassification.from_pretrained(out, num_labels=3)
    torch.testing.assert_close(classifier.bert.encoder.layer[0].attention.self.query.weight.detach(),
                               torch.from_numpy(expected["l0.q.w"]))
    qa = AutoModelForQuestionAnswering.from_pretrained(out)
    torch.testing.assert_close(qa.bert.encoder.layer[0].output.dense.weight.detach(),
                               torch.from_numpy(expected["l0.fo.w"]))


def test_tokenizer_folder_gives_xlmr_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    make_e5_file(tmp_path / "tiny.bin")
    e5 = parse_e5((tmp_path / "tiny.bin").read_bytes())
    make_tokenizer_json(tmp_path / "tokenizer.json")
    out = tmp_path / "out"
    out.mkdir()
    write_tokenizer(tmp_path / "tokenizer.json", out, e5.vocab)
    tok = AutoTokenizer.from_pretrained(out)
    assert type(tok).__name__ in ("XLMRobertaTokenizer", "XLMRobertaTokenizerFast")
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "<s>", "</s>", "<pad>", "<unk>", "<mask>")
    ids = tok("a b")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2


def test_tokenizer_that_disagrees_with_the_weights_is_refused(tmp_path):
    make_e5_file(tmp_path / "tiny.bin")
    e5 = parse_e5((tmp_path / "tiny.bin").read_bytes())
    make_tokenizer_json(tmp_path / "tokenizer.json", pieces=PIECES[:4] + ["\u2581z"] + PIECES[5:])
    with pytest.raises(ProvisioningError, match="does not match"):
        write_tokenizer(tmp_path / "tokenizer.json", tmp_path, e5.vocab)


def test_malformed_files_are_reported(tmp_path):
    good = tmp_path / "tiny.bin"
    make_e5_file(good)
    data = good.read_bytes()

    bad_magic = tmp_path / "magic.bin"
    bad_magic.write_bytes(b"GGUF" + data[4:])
    with pytest.raises(ProvisioningError, match="magic"):
        convert_e5_bin(bad_magic, tmp_path / "o1")

    newer = tmp_path / "version.bin"
    newer.write_bytes(data[:4] + struct.pack("<I", 9) + data[8:])
    with pytest.raises(ProvisioningError, match="version 9"):
        convert_e5_bin(newer, tmp_path / "o2")

    truncated = tmp_path / "short.bin"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(ProvisioningError, match="past the end"):
        convert_e5_bin(truncated, tmp_path / "o3")
    assert not (tmp_path / "o3" / "model.safetensors").exists()
