"""fdvad data pseudo-label: another VAD's segments as labels of unlabelled recordings, written as an RTTM
corpus that read_corpus, fdvad tune and train.select read."""

import numpy as np
import pytest
import soundfile as sf

from fdvad.cli import app
from fdvad.data.corpora import frame_labels, read_corpus
from fdvad.data.pseudo import pseudo_label
from fdvad.errors import ConfigError, OutputExistsError


def _write(path, recording):
    sf.write(path, recording.audio, 16000)
    return path


@pytest.mark.parametrize("labeller", ["silero", "default"])
def test_pseudo_labels_follow_the_speech_and_read_back_as_a_corpus(speech_recording, tmp_path, labeller):
    if labeller == "silero":
        pytest.importorskip("silero_vad")
    source = _write(tmp_path / "talk.wav", speech_recording)
    sf.write(tmp_path / "quiet.wav", np.zeros(16000 * 3, np.float32), 16000)
    result = pseudo_label([str(source), str(tmp_path / "quiet.wav")], tmp_path / "dev", labeller)
    assert result["files"] == 2 and result["speech_seconds"] > 0
    items = {item.audio_filepath.rsplit("/", 1)[-1]: item for item in read_corpus(tmp_path / "dev")}
    assert set(items) == {"talk.wav", "quiet.wav"} and items["quiet.wav"].speech == []
    truth = speech_recording.frames
    pseudo = frame_labels(items["talk.wav"], 0.01, len(speech_recording.audio) / 16000)[: len(truth)]
    assert (truth[: len(pseudo)] == pseudo).mean() > 0.85  # another VAD's opinion, close to the truth here


def test_nothing_is_written_when_an_input_is_bad_or_an_output_exists(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "b.wav").write_bytes(b"not audio at all")
    with pytest.raises(Exception, match="b.wav"):
        pseudo_label([str(tmp_path / "a.wav"), str(tmp_path / "b.wav")], tmp_path / "dev", "default")
    assert not (tmp_path / "dev").exists()  # the good file was not written either
    pseudo_label([str(tmp_path / "a.wav")], tmp_path / "dev", "default")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        pseudo_label([str(tmp_path / "a.wav")], tmp_path / "dev", "default")
    pseudo_label([str(tmp_path / "a.wav")], tmp_path / "dev", "default", overwrite=True)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "a.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(ConfigError, match="two inputs are named 'a'"):
        pseudo_label([str(tmp_path / "a.wav"), str(tmp_path / "sub")], tmp_path / "dev2", "default")
    with pytest.raises(ConfigError, match="does not exist"):
        pseudo_label([str(tmp_path / "missing.wav")], tmp_path / "dev3", "default")


def test_cli_gives_one_line_errors(tmp_path):
    from typer.testing import CliRunner

    runner = CliRunner()
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    ok = runner.invoke(app, ["data", "pseudo-label", str(tmp_path / "a.wav"), "--out", str(tmp_path / "dev"),
                             "--labeller", "default"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["data", "pseudo-label", str(tmp_path / "a.wav"), "--out", str(tmp_path / "dev"),
                                "--labeller", "default"])
    assert again.exit_code != 0 and "error:" in again.output and "Traceback" not in again.output
    missing = runner.invoke(app, ["data", "pseudo-label", str(tmp_path / "nope.wav"), "--out", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
