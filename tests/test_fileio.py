import pytest

from fdvad.errors import ConfigError, OutputExistsError
from fdvad.fileio import atomic_write, atomic_write_text


def test_writes_and_leaves_no_temp(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "hello")
    assert path.read_text() == "hello"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_temp_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    seen = []
    atomic_write(tmp_path / "plot.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"x")))
    assert seen == [".png"]


def test_failure_keeps_the_original_and_removes_the_temp(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("original")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(ConfigError, match="cannot write .*No space left"):
        atomic_write(path, broken)
    assert path.read_text() == "original"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_overwrite_protection_and_bad_targets(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        atomic_write_text(path, "new", overwrite=False)
    assert path.read_text() == "mine"
    with pytest.raises(ConfigError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "a.txt", "x")
    with pytest.raises(ConfigError, match="directory"):
        atomic_write_text(tmp_path, "x")
