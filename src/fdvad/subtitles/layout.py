"""Subtitle layout: timed words -> cues a viewer can read. Separate from ASR chunking (as stable-ts keeps it).

Rules (all in `LayoutRules`, every one configurable; the defaults are the common broadcast / streaming ones):
  at most `max_chars_per_line` characters per line (42) and `max_lines` lines (2) per cue; at most `max_cps`
  characters per second (20, spaces included); cues last `min_duration_s` (0.83) to `max_duration_s` (7);
  consecutive cues are at least `min_gap_s` apart; a pause of `split_pause_s` or more between words always
  ends a cue, so a cue never lingers over silence.

How:
  1. words are grouped at long pauses;
  2. a group that does not fit one cue (too many characters for its lines, or too long) is split in two at
     its best word boundary, recursively: after a sentence end (. ? !) first, then after a clause mark
     (, ; : and dashes), then before a conjunction, then any word boundary; among equals, the one that balances
     the two halves best; a word is never split;
  3. a cue's text is broken into lines the same way (punctuation, then conjunctions, then balance);
  4. timing: a cue runs from its first word's start to its last word's end; a cue too short for
     `min_duration_s` or too fast for `max_cps` is stretched by half the shortfall on each side (a side without
     room gives it to the other), by at most `extend_s` per side and never closer than `min_gap_s` to its
     neighbours. What cannot be met that way is reported by
     `check_layout`, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
CLAUSE_END = (",", ";", ":", "—", "–", "-", "，", "；", "：")
CONJUNCTIONS = {"and", "but", "or", "so", "because", "that", "which", "who", "when", "while", "if", "then",
                "et", "mais", "ou", "und", "aber", "oder", "y", "pero", "e", "ma"}


@dataclass
class Word:
    text: str
    start: float
    end: float


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str] = field(default_factory=list)
    words: list[Word] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def chars(self) -> int:
        """Characters a viewer reads: the lines joined by one space (a line break counts as a space)."""
        return len(" ".join(self.lines))


@dataclass
class LayoutRules:
    max_chars_per_line: int = 42
    max_lines: int = 2
    max_cps: float = 20.0
    min_duration_s: float = 0.83
    max_duration_s: float = 7.0
    min_gap_s: float = 0.08
    split_pause_s: float = 0.6
    extend_s: float = 0.3

    def validate(self) -> LayoutRules:
        if self.max_chars_per_line < 8 or self.max_lines < 1:
            raise ConfigError("max_chars_per_line must be at least 8 and max_lines at least 1")
        if not self.max_cps > 0:
            raise ConfigError(f"max_cps must be > 0, got {self.max_cps}")
        if not 0 <= self.min_duration_s < self.max_duration_s:
            raise ConfigError(f"need 0 <= min_duration_s ({self.min_duration_s}) < max_duration_s "
                              f"({self.max_duration_s})")
        for name in ("min_gap_s", "split_pause_s", "extend_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        return self


def _break_priority(words: list[Word], i: int) -> int:
    """How good a break between words[i - 1] and words[i] is: 3 sentence end, 2 clause mark, 1 before a
    conjunction, 0 otherwise."""
    before = words[i - 1].text.rstrip("\"'”’)]")
    if before.endswith(SENTENCE_END):
        return 3
    if before.endswith(CLAUSE_END):
        return 2
    if words[i].text.lower().strip("\"'“‘([") in CONJUNCTIONS:
        return 1
    return 0


def _text(words: list[Word]) -> str:
    return " ".join(w.text for w in words)


def _best_split(words: list[Word], allowed=None) -> int | None:
    """The boundary i (1..n-1) of highest priority, ties to the most balanced character split; `allowed`
    filters candidates. None when no boundary is allowed."""
    total = len(_text(words))
    best, best_key = None, None
    for i in range(1, len(words)):
        if allowed is not None and not allowed(i):
            continue
        left = len(_text(words[:i]))
        key = (_break_priority(words, i), -abs(2 * left - total))
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


def break_lines(words: list[Word], max_chars: int, max_lines: int) -> list[str] | None:
    """The cue's words as at most `max_lines` lines of at most `max_chars` characters, breaking at the best
    boundary; None when they do not fit. A single word longer than a line stands alone on its line."""
    text = _text(words)
    if len(text) <= max_chars or len(words) == 1:
        return [text]
    if max_lines == 1:
        return None
    # first line must fit; the rest must fit in the remaining lines
    candidates = []
    for i in range(1, len(words)):
        if len(_text(words[:i])) <= max_chars:
            rest = break_lines(words[i:], max_chars, max_lines - 1)
            if rest is not None:
                candidates.append(i)
    if not candidates:
        return None
    i = _best_split(words, allowed=lambda k: k in candidates)
    return [_text(words[:i])] + break_lines(words[i:], max_chars, max_lines - 1)


def _fits(words: list[Word], rules: LayoutRules) -> bool:
    if len(words) == 1:
        return True
    if words[-1].end - words[0].start > rules.max_duration_s:
        return False
    return break_lines(words, rules.max_chars_per_line, rules.max_lines) is not None


def _split(words: list[Word], rules: LayoutRules) -> list[list[Word]]:
    if _fits(words, rules):
        return [words]
    i = _best_split(words)
    return _split(words[:i], rules) + _split(words[i:], rules)


def _groups(words: list[Word], pause_s: float) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for w in words:
        if groups and w.start - groups[-1][-1].end < pause_s:
            groups[-1].append(w)
        else:
            groups.append([w])
    return groups


def layout(words: list[Word], rules: LayoutRules | None = None) -> list[Cue]:
    """Cues from timed words (in time order; empty words are dropped)."""
    rules = (rules or LayoutRules()).validate()
    words = sorted((w for w in words if w.text.strip()), key=lambda w: w.start)
    words = [Word(w.text.strip(), float(w.start), float(max(w.end, w.start))) for w in words]
    cues = []
    for group in _groups(words, rules.split_pause_s):
        for part in _split(group, rules):
            lines = break_lines(part, rules.max_chars_per_line, rules.max_lines) or [_text(part)]
            cues.append(Cue(part[0].start, part[-1].end, lines, part))
    _time(cues, rules)
    return cues


def _time(cues: list[Cue], rules: LayoutRules) -> None:
    """Stretch short or fast cues within `extend_s` and the gaps to their neighbours (in place)."""
    for k, cue in enumerate(cues):
        words_start, words_end = cue.start, cue.end
        next_start = cues[k + 1].start if k + 1 < len(cues) else float("inf")
        prev_end = cues[k - 1].end if k > 0 else 0.0
        need = max(rules.min_duration_s, cue.chars / rules.max_cps)
        short = need - (cue.end - cue.start)
        if short > 0:
            # room on each side, then half the shortfall each way; a side with less room gives the rest to the other
            room_after = max(0.0, min(rules.extend_s, next_start - rules.min_gap_s - words_end))
            room_before = max(0.0, min(rules.extend_s, words_start - prev_end - rules.min_gap_s, words_start))
            after = min(room_after, max(short / 2, short - room_before))
            before = min(room_before, short - after)
            cue.start, cue.end = words_start - before, words_end + after
        cue.start = min(cue.start, words_start)
        cue.end = max(cue.end, cue.start)
        if cue.end > next_start - rules.min_gap_s:  # overlapping word timings from the ASR
            cue.end = max(cue.start, next_start - rules.min_gap_s)


def check_layout(cues: list[Cue], rules: LayoutRules | None = None, tolerance: float = 1e-6) -> list[str]:
    """Every rule a cue breaks, one line each ("cue 3: 24.1 characters per second > 20"); empty when all hold."""
    rules = rules or LayoutRules()
    problems = []
    for k, cue in enumerate(cues, 1):
        duration = cue.end - cue.start
        if len(cue.lines) > rules.max_lines:
            problems.append(f"cue {k}: {len(cue.lines)} lines > {rules.max_lines}")
        for line in cue.lines:
            if len(line) > rules.max_chars_per_line and " " in line:
                problems.append(f"cue {k}: a line of {len(line)} characters > {rules.max_chars_per_line}")
        if duration < rules.min_duration_s - tolerance:
            problems.append(f"cue {k}: {duration:.2f} s < {rules.min_duration_s} s")
        if duration > rules.max_duration_s + tolerance:
            problems.append(f"cue {k}: {duration:.2f} s > {rules.max_duration_s} s")
        if duration > 0 and cue.chars / duration > rules.max_cps + tolerance:
            problems.append(f"cue {k}: {cue.chars / duration:.1f} characters per second > {rules.max_cps}")
        if duration <= 0:
            problems.append(f"cue {k}: empty duration")
        if k < len(cues) and cues[k].start - cue.end < rules.min_gap_s - tolerance:
            problems.append(f"cue {k}: gap to the next cue {cues[k].start - cue.end:.3f} s < {rules.min_gap_s} s")
        if cue.words and not _lines_at_word_boundaries(cue.lines, [w.text for w in cue.words]):
            problems.append(f"cue {k}: its lines do not break at word boundaries of its words")
    return problems


def _lines_at_word_boundaries(lines: list[str], words: list[str]) -> bool:
    """Each line is a run of whole consecutive words (a word may hold spaces: a glossary phrase), in order."""
    i = 0
    for line in lines:
        run = []
        while i < len(words) and len(" ".join(run)) < len(line):
            run.append(words[i])
            i += 1
        if " ".join(run) != line:
            return False
    return i == len(words)
