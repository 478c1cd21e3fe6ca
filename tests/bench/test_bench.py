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


def test_bench_measures_every_row_once_per_precision_under_autocast(tmp_path, monkeypatch):
    """--precisions no,bf16: each method twice, side by side, the bf16 row's forward passes under
    torch's CPU autocast (its linear layers compute in bfloat16), every ratio to float32 PEFT LoRA."""
    import torch

    from flare import bench

    seen = {}

    def record(module, args, output):
        if isinstance(module, torch.nn.Linear):
            seen.setdefault(precision, set()).add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        for precision in ("no", "bf16"):
            row = bench.measure("flare-live", "tiny", 2, 8, 1, 0, 1, precision=precision)
            assert row["method"] == ("flare-live" if precision == "no" else "flare-live-bf16")
    finally:
        handle.remove()
    assert seen == {"no": {torch.float32}, "bf16": {torch.bfloat16}}
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--model", "tiny", "--batch-size", "2", "--length", "8", "--steps", "1",
                                      "--warmup", "0", "--threads", "1", "--methods", "peft-lora,lora",
                                      "--precisions", "no,bf16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["rows"]] == ["peft-lora", "peft-lora-bf16", "lora", "lora-bf16"]
    assert data["rows"][0]["step_ratio"] == 1.0 and data["precisions"] == ["no", "bf16"]
    assert [r["precision"] for r in data["rows"]] == ["no", "bf16", "no", "bf16"]
    bad = CliRunner().invoke(app, ["bench", "--model", "tiny", "--precisions", "no,int4"])
    assert bad.exit_code == 2 and "unknown precisions" in bad.output
