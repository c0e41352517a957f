"""Text post-correction of ASR words, keeping every word's time. Each step can be switched off.

  fillers      drop filler and non-speech tokens (<sil>, [noise], (laughs), uh, um, ...);
  glossary     the user's names and terms (see `read_glossary`), applied before spelling so they are never
               "corrected" away;
  spelling     an unknown word becomes the dictionary word one edit away (two for words of 8+ letters), from
               symspellpy's English frequency dictionary; words of 3 letters or fewer are left alone;
  numbers      spelled-out English numbers of 10 and above become digits ("twenty one" -> "21"); one to nine
               stay words, as subtitle style guides ask;
  sentences    a pause of `sentence_pause_s` or the end of the text ends a sentence: it gets a full stop unless it
               has end punctuation, and the next word a capital letter; "i" becomes "I".
Removing words the VAD marked as non-speech is the pipeline's job (it knows the segments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError
from .layout import Word

FILLERS = {"uh", "um", "uhm", "erm", "er", "ah", "hmm", "mm", "mhm", "eh"}
_NON_SPEECH = re.compile(r"^(<[^>]*>|\[[^\]]*\]|\([^)]*\)|\+\+.*\+\+)$")
_EDGE = re.compile(r"^(\W*)(.*?)(\W*)$", re.UNICODE)

UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                    "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


@dataclass
class GlossaryEntry:
    source: tuple[str, ...]  # tokens to find
    target: str  # what replaces them
    case_sensitive: bool


@dataclass
class CorrectionOptions:
    fillers: bool = True
    spelling: bool = True
    numbers: bool = True
    sentences: bool = True
    sentence_pause_s: float = 0.6
    glossary: list[GlossaryEntry] = field(default_factory=list)


def read_glossary(path: str | Path) -> list[GlossaryEntry]:
    """A glossary file, one entry per line (blank lines and # comments are skipped):
         Feature Distillation      a term: found in any case, written exactly like this
         colour -> color           exact replacement (case-sensitive, whole words)
         new york ~> New York      replacement found in any case
    A line that cannot be read is an error naming its number."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"glossary not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"glossary {path} is not UTF-8 text") from None
    entries = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        arrows = [a for a in ("->", "~>") if a in line]
        if sum(line.count(a) for a in ("->", "~>")) > 1:
            raise ConfigError(f"glossary {path} line {number}: more than one arrow in {raw!r}")
        if arrows:
            source, target = (part.strip() for part in line.split(arrows[0]))
            if not source or not target:
                raise ConfigError(f"glossary {path} line {number}: {raw!r} needs text on both sides of "
                                  f"{arrows[0]!r}")
            entries.append(GlossaryEntry(tuple(source.split()), target, arrows[0] == "->"))
        else:
            entries.append(GlossaryEntry(tuple(line.split()), line, False))
    return entries


def _split_edges(text: str) -> tuple[str, str, str]:
    m = _EDGE.match(text)
    return (m.group(1), m.group(2), m.group(3)) if m else ("", text, "")


def drop_fillers(words: list[Word]) -> list[Word]:
    kept = []
    for w in words:
        core = _split_edges(w.text)[1]
        if core and core.lower() not in FILLERS and not _NON_SPEECH.match(w.text):
            kept.append(w)
    return kept


def apply_glossary(words: list[Word], entries: list[GlossaryEntry]) -> tuple[list[Word], set[int]]:
    """Words with glossary matches replaced (a multi-word match becomes one Word spanning its time), and the
    indices of the replaced words in the result (protected from spelling correction)."""
    out: list[Word] = []
    protected: set[int] = set()
    i = 0
    while i < len(words):
        for e in sorted(entries, key=lambda e: -len(e.source)):  # longest match first
            n = len(e.source)
            window = words[i: i + n]
            if len(window) < n:
                continue
            cores = [_split_edges(w.text)[1] for w in window]
            same = (cores == list(e.source) if e.case_sensitive
                    else [c.lower() for c in cores] == [s.lower() for s in e.source])
            if same:
                lead, trail = _split_edges(window[0].text)[0], _split_edges(window[-1].text)[2]
                protected.add(len(out))
                out.append(Word(f"{lead}{e.target}{trail}", window[0].start, window[-1].end))
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out, protected


@lru_cache(maxsize=1)
def _symspell():
    try:
        from importlib import resources

        from symspellpy import SymSpell
    except ImportError:
        raise ConfigError("spelling correction needs symspellpy: pip install 'fdvad[subtitle]' (or turn it off)") \
            from None
    speller = SymSpell(max_dictionary_edit_distance=2)
    speller.load_dictionary(str(resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"), 0, 1)
    return speller


def correct_spelling(words: list[Word], protected: set[int] = frozenset()) -> list[Word]:
    from symspellpy import Verbosity

    speller = _symspell()
    out = []
    for i, w in enumerate(words):
        lead, core, trail = _split_edges(w.text)
        lower = core.lower()
        if i in protected or len(core) <= 3 or not core.isalpha() or lower in speller.words:
            out.append(w)
            continue
        allowed = 2 if len(core) >= 8 else 1
        suggestions = speller.lookup(lower, Verbosity.CLOSEST, max_edit_distance=allowed)
        if not suggestions or suggestions[0].distance == 0:
            out.append(w)
            continue
        best = suggestions[0].term
        best = best.capitalize() if core[0].isupper() else best
        out.append(Word(f"{lead}{best}{trail}", w.start, w.end))
    return out


def _number_value(tokens: list[str], prefix: bool = False) -> int | None:
    """The value of spelled-out number tokens ("one hundred and five" -> 105); None if they do not form one number
    ("twelve thirteen", "ten and two"). With `prefix`, only whether they can start one (0 or None)."""
    # what may follow what: a unit after a tens word ("twenty one"), "and" only after a scale word
    follows = {"unit": (None, "tens", "hundred", "scale", "and"), "teen": (None, "hundred", "scale", "and"),
               "tens": (None, "hundred", "scale", "and"), "hundred": ("unit", "teen"),
               "scale": ("unit", "teen", "tens", "hundred"), "and": ("hundred", "scale")}
    total, current, last = 0, 0, None
    for t in tokens:
        kind = ("unit" if UNITS.get(t, 99) < 10 else "teen" if t in UNITS else "tens" if t in TENS
                else "hundred" if t == "hundred" else "scale" if t in SCALES else "and" if t == "and" else None)
        if kind is None or last not in follows[kind]:
            return None
        if kind in ("unit", "teen"):
            current += UNITS[t]
        elif kind == "tens":
            current += TENS[t]
        elif kind == "hundred":
            current *= 100
        elif kind == "scale":
            total += current * SCALES[t]
            current = 0
        last = kind
    if prefix:
        return 0
    if last in (None, "and"):
        return None
    return total + current


def format_numbers(words: list[Word]) -> list[Word]:
    numeric = set(UNITS) | set(TENS) | set(SCALES)
    out: list[Word] = []
    i = 0
    while i < len(words):
        j = i
        parts: list[str] = []
        while j < len(words):
            lead, core, trail = _split_edges(words[j].text)
            pieces = core.lower().split("-")
            ok = all(p in numeric for p in pieces) or (core.lower() == "and" and parts and j + 1 < len(words))
            ok = ok and _number_value(parts + pieces, prefix=True) is not None  # still one number
            if not ok or (j > i and lead):
                break
            parts += pieces
            j += 1
            if trail:  # punctuation ends the number
                break
        while parts and parts[-1] == "and":  # "... and" at the end belongs to the sentence
            parts.pop()
            j -= 1
        value = _number_value(parts) if parts else None
        if value is not None and value >= 10 and j > i:
            lead = _split_edges(words[i].text)[0]
            trail = _split_edges(words[j - 1].text)[2]
            out.append(Word(f"{lead}{value}{trail}", words[i].start, words[j - 1].end))
            i = j
        else:
            out.append(words[i])
            i += 1
    return out


def fix_sentences(words: list[Word], pause_s: float = 0.6) -> list[Word]:
    out = []
    start_of_sentence = True
    for i, w in enumerate(words):
        lead, core, trail = _split_edges(w.text)
        if core.lower() == "i" or re.match(r"^i'(m|ve|ll|d)$", core.lower()):
            core = "I" + core[1:]
        if start_of_sentence and core:
            core = core[0].upper() + core[1:]
        last = i + 1 == len(words) or words[i + 1].start - w.end >= pause_s
        if last and not re.search(r"[.?!…]$", trail):
            trail = trail.rstrip(",;:") + "."
        out.append(Word(f"{lead}{core}{trail}", w.start, w.end))
        start_of_sentence = bool(re.search(r"[.?!…]$", trail))
    return out


def correct(words: list[Word], options: CorrectionOptions | None = None) -> list[Word]:
    """All enabled steps in order: fillers, glossary, spelling, numbers, sentences."""
    o = options or CorrectionOptions()
    if o.fillers:
        words = drop_fillers(words)
    protected: set[int] = set()
    if o.glossary:
        words, protected = apply_glossary(words, o.glossary)
    if o.spelling:
        words = correct_spelling(words, protected)
    if o.numbers:
        words = format_numbers(words)
    if o.sentences:
        words = fix_sentences(words, o.sentence_pause_s)
    return words
