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
