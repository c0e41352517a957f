"""fdvad vs silero-vad on real labelled speech: pyannote.audio's sample (a 30 s two-speaker phone call with an
RTTM of who speaks when), taken from the pyannote.audio wheel on PyPI (no hub, no other dependency).

    python bench/real_sample.py [--model default] [--cache ~/.cache/fdvad/pyannote-sample]

Prints miss, false alarm and their sum (detection error rate) over 10 ms frames, after each system's default
post-processing, and fdvad's frame AUROC. A sanity check on real audio, not a benchmark: 30 s of one domain.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "pyannote.audio==4.0.7"
MEMBERS = ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm")


def fetch_sample(cache: Path) -> tuple[Path, Path]:
    """sample.wav and sample.rttm, unpacked from the pyannote.audio wheel (downloaded once with pip)."""
    wav, rttm = cache / "sample.wav", cache / "sample.rttm"
    if wav.is_file() and rttm.is_file():
        return wav, rttm
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", str(cache)], check=True)
    wheel = next(cache.glob("pyannote_audio-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for member, target in zip(MEMBERS, (wav, rttm)):
            target.write_bytes(z.read(member))
    wheel.unlink()
    return wav, rttm


def frame_mask(segments, n_frames: int) -> np.ndarray:
    mask = np.zeros(n_frames, bool)
    for s in segments:
        mask[int(round(s.start * 100)):int(round(s.end * 100))] = True
    return mask


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "fdvad" / "pyannote-sample"))
    args = ap.parse_args(argv)

    import torch

    import fdvad
    from fdvad.audio import load_audio
    from fdvad.eval.metrics import roc_auc
    from fdvad.vad.formats import read_rttm
    from fdvad.vad.segment import Segment

    torch.set_num_threads(1)
    wav, rttm = fetch_sample(Path(args.cache).expanduser())
    audio = load_audio(wav)
    n = len(audio) // 160
    truth = frame_mask([s for segs in read_rttm(rttm).values() for s in segs], n)

    def row(name: str, pred: np.ndarray, auroc: float | None = None) -> str:
        miss = (truth & ~pred).sum() / truth.sum()
        fa = (~truth & pred).sum() / truth.sum()
        return f"{name:<13} {miss:>6.3f} {fa:>12.3f} {miss + fa:>6.3f} " + (f"{auroc:>11.3f}" if auroc else f"{'-':>11}")

    lines = [f"# {wav} ({n / 100:.1f} s, {truth.mean():.1%} speech), 10 ms frames; command: "
             f"python bench/real_sample.py --model {args.model}",
             f"{'system':<13} {'miss':>6} {'false alarm':>12} {'DetER':>6} {'frame AUROC':>11}"]
    for mode in ("fast", "exact"):
        vad = fdvad.load_vad(args.model, mode=mode)
        probs, _ = vad.speech_probs(audio, 16000)
        per_frame = np.repeat(probs, int(round(vad.hop_s * 100)))[:n]
        lines.append(row(f"fdvad {mode}", frame_mask(vad(audio, 16000), n), roc_auc(per_frame, truth)))
    try:
        from silero_vad import get_speech_timestamps, load_silero_vad
    except ImportError:
        lines.append("silero ONNX   skipped: silero-vad is not installed")
    else:
        stamps = get_speech_timestamps(torch.from_numpy(audio), load_silero_vad(onnx=True), sampling_rate=16000,
                                       return_seconds=True)
        lines.append(row("silero ONNX", frame_mask([Segment(t["start"], t["end"]) for t in stamps], n)))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
