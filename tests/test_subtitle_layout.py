import numpy as np
import pytest

from fdvad.errors import ConfigError, OutputExistsError
from fdvad.subtitles.formats import format_cues, write_cues
from fdvad.subtitles.layout import LayoutRules, Word, break_lines, check_layout, layout


def timed(text: str, start: float = 0.0, rate_cps: float = 14.0, pause_after: dict | None = None) -> list[Word]:
    """Words spoken at `rate_cps` characters per second from `start`; pause_after[i] adds silence after word i."""
    words, t = [], start
    for i, token in enumerate(text.split()):
        d = (len(token) + 1) / rate_cps
        words.append(Word(token, t, t + d))
        t += d + (pause_after or {}).get(i, 0.0)
    return words


STORY = ("The old lighthouse keeper climbed the stairs every evening, counting each step as he went. "
         "He had done it for forty years, and he knew that the sea would not wait for him. "
         "When the storm came in October, the lamp failed; nobody in the village slept that night. "
         "But by morning the light was burning again, steady and bright over the grey water.")


def test_a_long_text_obeys_every_rule():
    rules = LayoutRules()
    cues = layout(timed(STORY), rules)
    assert check_layout(cues, rules) == []
    assert " ".join(" ".join(c.lines) for c in cues) == STORY  # nothing lost, nothing reordered
    assert len(cues) > 4
    for c in cues:
        assert len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines)


def test_breaks_prefer_sentence_ends_then_clauses():
    cues = layout(timed(STORY))
    ends = [c.lines[-1][-1] for c in cues]
    # most cues end at punctuation (the text has 4 sentences and 6 clause marks)
    assert sum(e in ".,;" for e in ends) >= len(cues) - 1
    lines = break_lines(timed("He had done it for forty years, and he knew that the sea would not wait"), 42, 2)
    assert lines == ["He had done it for forty years,", "and he knew that the sea would not wait"]


def test_a_word_is_never_split_and_an_overlong_word_stands_alone():
    long_word = "Pneumonoultramicroscopicsilicovolcanoconiosis-like"
    cues = layout(timed(f"look at this {long_word} thing here"))
    tokens = [t for c in cues for line in c.lines for t in line.split()]
    assert tokens == ["look", "at", "this", long_word, "thing", "here"]
    assert any(line == long_word for c in cues for line in c.lines)


def test_pauses_end_cues_and_cues_do_not_linger_over_silence():
    words = timed("Hello there. How are you today?", pause_after={1: 5.0})
    cues = layout(words)
    assert [c.text for c in cues] == ["Hello there.", "How are you today?"]
    assert cues[0].end <= words[1].end + LayoutRules().extend_s + 1e-9  # stretched at most extend_s
    assert cues[1].start >= words[2].start - LayoutRules().extend_s - 1e-9


def test_short_cues_are_stretched_to_the_minimum_and_fast_ones_within_limits():
    cues = layout([Word("Yes.", 1.0, 1.3), Word("Now", 5.0, 5.2)])
    # "Yes." grows 0.265 s on each side to 0.83 s; "Now" can grow 0.3 s each side only: 0.8 s
    assert [(round(c.start, 3), round(c.end, 3)) for c in cues] == [(0.735, 1.565), (4.7, 5.5)]
    assert check_layout(cues) == ["cue 2: 0.80 s < 0.83 s"]  # reported, not hidden
    rules = LayoutRules(extend_s=1.0)
    assert check_layout(layout([Word("Yes.", 1.0, 1.3), Word("Now", 5.0, 5.2)], rules), rules) == []


def test_long_cues_are_split_by_duration_and_gaps_are_kept():
    words = [Word(f"w{i}", i * 0.9, i * 0.9 + 0.8) for i in range(12)]  # slow speech, short text
    rules = LayoutRules()
    cues = layout(words, rules)
    assert all(c.end - c.start <= rules.max_duration_s for c in cues) and len(cues) >= 2
    assert all(b.start - a.end >= rules.min_gap_s - 1e-9 for a, b in zip(cues, cues[1:]))


def test_rules_are_configurable_and_checked():
    rules = LayoutRules(max_chars_per_line=20, max_lines=1)
    cues = layout(timed(STORY), rules)
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 20 for c in cues)
    assert not [p for p in check_layout(cues, rules) if "characters >" in p or "lines >" in p]
    with pytest.raises(ConfigError):
        LayoutRules(min_duration_s=8.0).validate()
    with pytest.raises(ConfigError):
        layout([], LayoutRules(max_cps=0))


def test_srt_vtt_ass_json_round_trip(tmp_path):
    pysubs2 = pytest.importorskip("pysubs2")
    cues = layout(timed(STORY, start=3.0))
    for fmt in ("srt", "vtt", "ass"):
        path = write_cues(cues, tmp_path / f"out.{fmt}")
        back = pysubs2.load(str(path))
        assert len(back) == len(cues)
        for event, cue in zip(back, cues):
            step = 0.0051 if fmt == "ass" else 0.0011  # ASS keeps centiseconds, SRT and VTT milliseconds
            assert abs(event.start / 1000 - cue.start) < step and abs(event.end / 1000 - cue.end) < step
            assert event.plaintext.split("\n") == cue.lines
    assert format_cues(cues, "json").count('"words"') == len(cues)
    with pytest.raises(OutputExistsError):
        write_cues(cues, tmp_path / "out.srt")
    write_cues(cues[:1], tmp_path / "out.srt", overwrite=True)
    assert len(pysubs2.load(str(tmp_path / "out.srt"))) == 1
    with pytest.raises(ConfigError):
        write_cues(cues, tmp_path / "out.txt")


def test_random_word_streams_keep_the_line_rules(rng):
    vocabulary = ["a", "the", "light,", "keeper.", "and", "storm", "extraordinarily", "went;", "sea", "night?"]
    for trial in range(20):
        tokens = rng.choice(vocabulary, size=int(rng.integers(1, 80)))
        pauses = {int(i): float(rng.uniform(0, 2)) for i in rng.integers(0, len(tokens), size=3)}
        cues = layout(timed(" ".join(tokens), rate_cps=float(rng.uniform(8, 16)), pause_after=pauses))
        problems = [p for p in check_layout(cues) if "s <" not in p]  # durations may be short at pauses
        assert problems == [], (trial, problems)
        assert [t for c in cues for line in c.lines for t in line.split()] == list(tokens)
        assert np.all(np.diff([c.start for c in cues]) > 0)


def test_check_layout_finds_a_line_broken_inside_a_word():
    from fdvad.subtitles.layout import Cue

    words = [Word("Feature Distillation", 0.0, 1.0), Word("works.", 1.0, 1.5)]
    good = Cue(0.0, 1.5, ["Feature Distillation", "works."], words)
    bad = Cue(0.0, 1.5, ["Feature", "Distillation works."], words)
    assert check_layout([good]) == []
    assert check_layout([bad]) == ["cue 1: its lines do not break at word boundaries of its words"]
