import json

from typer.testing import CliRunner

from flare.cli.main import app


def test_bench_runs_every_method_on_a_tiny_model(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--model", "tiny", "--batch-size", "2", "--length", "8",
                                      "--steps", "1", "--warmup", "0", "--threads", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    methods = [row["method"] for row in data["rows"]]
    assert methods == ["peft-lora", "lora", "flare-live", "flare-cached", "flare-mt", "input-fusion", "xmixup"]
    peft = data["rows"][0]
    assert peft["step_ratio"] == 1.0 and all(row["step_seconds"] > 0 for row in data["rows"])
    assert "flare-cached" in result.output and "written:" in result.output
    # our LoRA trains exactly PEFT's parameters; FLARE adds none (add_relu)
    trainable = {row["method"]: row["trainable_parameters"] for row in data["rows"]}
    assert trainable["lora"] == trainable["peft-lora"] == trainable["flare-live"] == trainable["flare-cached"]
    assert trainable["flare-mt"] > trainable["lora"] and trainable["xmixup"] > trainable["lora"]


def test_bench_rejects_unknown_methods():
    result = CliRunner().invoke(app, ["bench", "--model", "tiny", "--methods", "lora,fancy"])
    assert result.exit_code == 2 and "unknown bench methods" in result.output


def test_bench_profile_counts_python_time_in_flare_code_only(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--model", "tiny", "--batch-size", "2", "--length", "8", "--steps", "2",
                                      "--warmup", "0", "--threads", "1", "--methods", "peft-lora,flare-cached",
                                      "--profile", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads(out.read_text())["rows"]}
    # PEFT's LoRA never enters flare's code; cached FLARE does (hooks, collation), for a fraction of the step
    assert rows["peft-lora"]["flare_python_seconds_per_step"] == 0
    assert 0 < rows["flare-cached"]["flare_python_share"] < 1
    assert "flare ms" in result.output
    # the table fits an 80-column terminal: method names are not cut
    assert "flare-cached " in result.output and "…" not in result.output


def test_bench_measures_the_flare_rows_once_per_fusion_function(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--model", "tiny", "--batch-size", "2", "--length", "8", "--steps", "1",
                                      "--warmup", "0", "--threads", "1", "--methods", "peft-lora,flare-cached,lora",
                                      "--fusions", "add_relu,cross_attention", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads(out.read_text())["rows"]}
    # methods without fusion run once; the default fusion keeps the plain name
    assert list(rows) == ["peft-lora", "flare-cached", "flare-cached-cross_attention", "lora"]
    assert rows["flare-cached"]["fusion"] == "add_relu" and rows["lora"]["fusion"] is None
    assert "cross_attention" in rows["flare-cached-cross_attention"]["note"]
    # cross-attention brings its own projections; add_relu trains exactly LoRA's parameters
    assert rows["flare-cached-cross_attention"]["trainable_parameters"] > rows["flare-cached"]["trainable_parameters"]
    assert rows["flare-cached"]["trainable_parameters"] == rows["peft-lora"]["trainable_parameters"]


def test_bench_rejects_unknown_fusion_functions():
    result = CliRunner().invoke(app, ["bench", "--model", "tiny", "--fusions", "add,concat"])
    assert result.exit_code == 2 and "unknown fusion functions" in result.output
