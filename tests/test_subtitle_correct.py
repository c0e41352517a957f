import pytest

from fdvad.errors import ConfigError
from fdvad.subtitles.correct import (CorrectionOptions, apply_glossary, correct, drop_fillers, fix_sentences,
                                     format_numbers, read_glossary)
from fdvad.subtitles.layout import Word


def words_of(text: str, pauses: dict | None = None) -> list[Word]:
    out, t = [], 0.0
    for i, token in enumerate(text.split()):
        out.append(Word(token, t, t + 0.3))
        t += 0.35 + (pauses or {}).get(i, 0.0)
    return out


def texts(words):
    return [w.text for w in words]


def test_fillers_and_non_speech_tokens_go():
    assert texts(drop_fillers(words_of("<sil> well um [noise] I think (laughs) uh ++BREATH++ so"))) == \
        ["well", "I", "think", "so"]


def test_glossary_terms_exact_and_case_insensitive(tmp_path):
    g = tmp_path / "glossary.txt"
    g.write_text("# names\nFeature Distillation\ncolour -> color\nnew york ~> New York\n\nfdvad\n")
    entries = read_glossary(g)
    assert len(entries) == 4
    words, protected = apply_glossary(words_of("we use feature distillation in new YORK, the Colour and colour fdvad"),
                                      entries)
    assert texts(words) == ["we", "use", "Feature Distillation", "in", "New York,", "the", "Colour", "and", "color",
                            "fdvad"]
    fd = words[2]
    assert (fd.start, fd.end) == (pytest.approx(0.7), pytest.approx(1.35))  # spans both spoken words
    assert 2 in protected and 9 in protected


@pytest.mark.parametrize("line", ["-> x", "a ->", "a -> b -> c", "a ~> b -> c", "  ~> b"])
def test_a_bad_glossary_line_is_one_error_with_its_number(tmp_path, line):
    g = tmp_path / "g.txt"
    g.write_text(f"fine\n{line}\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_glossary(g)
    with pytest.raises(ConfigError, match="not found"):
        read_glossary(tmp_path / "missing.txt")


def test_spelling_fixes_unknown_words_but_not_names_or_short_words():
    pytest.importorskip("symspellpy")
    from fdvad.subtitles.correct import GlossaryEntry

    options = CorrectionOptions(numbers=False, sentences=False, glossary=[GlossaryEntry(("fdvad",), "fdvad", False)])
    out = correct(words_of("the lighthose keeper will recieve fdvad tomorow xyz"), options)
    assert texts(out) == ["the", "lighthouse", "keeper", "will", "receive", "fdvad", "tomorrow", "xyz"]


def test_numbers_ten_and_above_become_digits():
    assert texts(format_numbers(words_of("she is twenty one and he is nine"))) == ["she", "is", "21", "and", "he",
                                                                                  "is", "nine"]
    assert texts(format_numbers(words_of("one hundred and five people, two thousand twenty four."))) == \
        ["105", "people,", "2024."]
    assert texts(format_numbers(words_of("forty-two"))) == ["42"]
    assert texts(format_numbers(words_of("ten and two"))) == ["10", "and", "two"]  # not 12
    assert texts(format_numbers(words_of("twelve thirteen"))) == ["12", "13"]  # two numbers, not 25
    assert texts(format_numbers(words_of("nineteen hundred"))) == ["1900"]
    w = format_numbers(words_of("about twenty one"))[1]
    assert (w.start, w.end) == (pytest.approx(0.35), pytest.approx(1.0))


def test_sentences_get_capitals_and_full_stops_at_pauses():
    out = fix_sentences(words_of("i think so and i'm sure we can go now", pauses={2: 1.0}), pause_s=0.6)
    assert " ".join(texts(out)) == "I think so. And I'm sure we can go now."
    assert " ".join(texts(fix_sentences(words_of("is it? yes")))) == "Is it? Yes."


def test_every_step_can_be_switched_off():
    words = words_of("um twenty one i")
    off = CorrectionOptions(fillers=False, spelling=False, numbers=False, sentences=False)
    assert texts(correct(words, off)) == ["um", "twenty", "one", "i"]
    on = CorrectionOptions(spelling=False)
    assert texts(correct(words, on)) == ["21", "I."]
