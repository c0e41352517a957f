"""`fdvad eval-asr`: the whole subtitle pipeline once per VAD choice on episodes with reference transcripts.

For each VAD choice (fdvad models, silero, webrtc, none = fixed 30 s windows), optionally with each speech
enhancement (`enhancements`: none, spectral, rnnoise; it changes what both the VAD and the ASR hear), and each
item of the manifest
(NeMo ASR style: audio_filepath and text; speech times from `turns` or `rttm_filepath` when present):
  CER and WER   jiwer over all items together, on normalised text (lower case, punctuation removed);
  speech recall the share of reference speech time inside the audio given to the ASR;
  ASR audio     minutes of audio the ASR had to decode;
  ASR time      seconds spent in the ASR; total time: the whole pipeline, audio decoding included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from ..errors import ConfigError

DEFAULT_VADS = ("default", "silero", "webrtc", "none")


def normalize(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def read_asr_manifest(path: str | Path) -> list[dict]:
    """Items with 'audio_filepath' and 'text'; relative audio paths are relative to the manifest."""
    from ..vad.formats import _read_lines, read_manifest

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest not found: {path}")
    entries = read_manifest(path)
    # read_manifest skips blank lines only, so entry i is on the i-th non-blank line
    line_of = [n for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    for entry, number in zip(entries, line_of):
        if "text" not in entry:
            raise ConfigError(f"{path} line {number}: needs audio_filepath and text")
        audio = Path(entry["audio_filepath"])
        entry["audio_filepath"] = str(audio if audio.is_absolute() else path.parent / audio)
    if not entries:
        raise ConfigError(f"{path} has no items")
    return entries


def _speech_spans(entry: dict) -> list[tuple[float, float]]:
    """Reference speech of an item: its `turns`, else the SPEAKER lines of its `rttm_filepath` (overlaps merged)."""
    from ..vad.formats import read_rttm

    if entry.get("turns"):
        return [(float(t[0]), float(t[1])) for t in entry["turns"]]
    rttm = entry.get("rttm_filepath")
    if rttm and Path(rttm).is_file():
        return [(s.start, s.end) for segments in read_rttm(rttm).values() for s in segments]
    return []


def _covered(spans: list[tuple[float, float]], chunks) -> float:
    """Seconds of `spans` inside any chunk."""
    total = 0.0
    for s, e in spans:
        for c in chunks:
            total += max(0.0, min(e, c.end) - max(s, c.start))
    return total


def evaluate_asr(manifest: str | Path, vads: list[str], asr: str = "pocketsphinx", asr_model: str | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 enhancements: tuple[str, ...] = ("none",)) -> dict:
    """One pipeline run per (VAD, enhancement) pair; a pair is named by its VAD, plus " + METHOD" when
    enhanced."""
    import jiwer

    from .pipeline import Pipeline, SubtitleOptions

    items = read_asr_manifest(manifest)
    results = {}
    for vad, method in [(v, m) for v in vads for m in enhancements]:
        name = vad if method == "none" else f"{vad} + {method}"
        pipeline = Pipeline(SubtitleOptions(vad=vad, asr=asr, asr_model=asr_model, enhance=method))
        refs, hyps, per_item = [], [], []
        speech_total = speech_heard = asr_audio = asr_s = total_s = audio_s = 0.0
        for k, entry in enumerate(items):
            if progress:
                progress(name, k, len(items))
            result = pipeline(entry["audio_filepath"])
            ref, hyp = normalize(entry["text"]), normalize(" ".join(w.text for w in result.words))
            refs.append(ref)
            hyps.append(hyp)
            spans = _speech_spans(entry)
            speech_total += sum(e - s for s, e in spans)
            speech_heard += _covered(spans, result.chunks)
            asr_audio += sum(c.duration for c in result.chunks)
            asr_s += result.seconds.get("asr", 0.0)
            total_s += sum(result.seconds.values())
            audio_s += result.duration_s
            per_item.append({"audio": entry["audio_filepath"], "wer": jiwer.wer(ref, hyp) if ref else None,
                             "cer": jiwer.cer(ref, hyp) if ref else None, "hypothesis": hyp})
        if progress:
            progress(name, len(items), len(items))
        results[name] = {"cer": float(jiwer.cer(refs, hyps)), "wer": float(jiwer.wer(refs, hyps)),
                        "speech_recall": speech_heard / speech_total if speech_total else None,
                        "asr_audio_min": asr_audio / 60, "asr_s": asr_s, "total_s": total_s,
                        "audio_min": audio_s / 60, "items": per_item}
    return {"manifest": str(manifest), "asr": asr, "items": len(items), "systems": results}


def table(report: dict) -> str:
    """The results as a Markdown table."""
    rows = ["| VAD | CER | WER | speech recall | audio to ASR (min) | ASR time (s) | total time (s) |",
            "|---|---|---|---|---|---|---|"]
    for vad, r in report["systems"].items():
        recall = "-" if r["speech_recall"] is None else f"{100 * r['speech_recall']:.1f} %"
        rows.append(f"| {vad} | {100 * r['cer']:.1f} % | {100 * r['wer']:.1f} % | {recall} | "
                    f"{r['asr_audio_min']:.1f} of {r['audio_min']:.1f} | {r['asr_s']:.0f} | {r['total_s']:.0f} |")
    return "\n".join(rows)

