from pathlib import Path

from flare.environment import environment_record, portable_path


def test_result_files_do_not_carry_the_home_folder(monkeypatch, tmp_path):
    home = tmp_path / "someone"
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    assert portable_path(str(home / ".cache" / "flare" / "models" / "e5-small")) == "~/.cache/flare/models/e5-small"
    assert portable_path(str(home)) == "~"
    assert portable_path(str(tmp_path / "someone-else" / "model")) == str(tmp_path / "someone-else" / "model")
    assert portable_path("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"  # a hub id
    record = environment_record("e5-small", str(home / "m"), None, "cpu")
    assert record["model_resolved"] == "~/m" and record["model"] == "e5-small"


def test_the_cpu_record_names_the_instructions_that_change_bf16_arithmetic(monkeypatch):
    import torch

    from flare.environment import ARITHMETIC_FLAGS, cpu_record

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    cpu_record.cache_clear()
    try:
        record = cpu_record()
        assert environment_record("e5-small", "m", None, "cpu")["cpu"] == record  # in every result file
    finally:
        cpu_record.cache_clear()  # the cap set here must not stay in the cached record
    assert record["onednn_max_cpu_isa"] == "AVX512_CORE"
    assert record["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    if Path("/proc/cpuinfo").is_file():
        assert record["flags"] is not None and set(record["flags"]) <= set(ARITHMETIC_FLAGS)
