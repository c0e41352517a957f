"""VADs on the real audio we have: labelled real speech and held-out real non-speech recordings.

    python bench/real_audio.py [--models default,runs/corpus_model/model.safetensors] [--no-silero]
                               [--no-webrtc] [--max-source-s 30] [--json results.json]

Three sets, each scored on 10 ms frames after each system's own default post-processing:
  1. pyannote.audio's sample (a 30 s two-speaker phone call with an RTTM; see bench/real_sample.py):
     miss, false alarm (both over the speech time, as pyannote's detection error rate) and their sum;
  2. real spoken words from Debian packages (ALSA's and the freedesktop theme's channel names, ~1.4 s each,
     clean): speech = 10 ms frames within 40 dB of the clip's loudest (`tts.speech_frames`, gaps < 150 ms
     filled); each clip is scored between 1 s of silence on both sides; miss and false alarm;
  3. real non-speech: every recorded sound and music piece of `fdvad.data.sources` that `fdvad data synth`
     keeps out of its train split (validation and test noise sources), at its recorded level, at most
     --max-source-s seconds of each: the fraction of their time called speech, and how many of them get any
     speech segment at all, for sound effects and for music.
No system here was trained on set 3 (fdvad's default model saw no recordings at all; a model trained on a
synth corpus saw only train-split sources). Sources that Silero calls speech in over 45 % of frames were
left out of the pools when they were built (docs/sources.md), which favours Silero a little in set 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_sample import fetch_sample, frame_mask  # noqa: E402

SR = 16000


def _systems(args):
    import torch

    import fdvad
    from fdvad.vad.segment import Segment

    torch.set_num_threads(1)
    systems = {}
    for spec in filter(None, args.models.split(",")):
        vad = fdvad.load_vad(spec, mode="fast")
        name = f"fdvad {spec}"
        systems[name] = lambda audio, v=vad: frame_mask(v(audio, SR), len(audio) // 160)
        for t in args.thresholds:  # the same model at other onsets (offset = onset - 0.15)
            systems[f"{name} @ {t:g}"] = lambda audio, v=vad, t=t: frame_mask(v(audio, SR, threshold=t),
                                                                           len(audio) // 160)
    if not args.no_silero:
        from silero_vad import get_speech_timestamps, load_silero_vad

        model = load_silero_vad(onnx=True)

        def silero(audio):
            stamps = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=SR, return_seconds=True)
            return frame_mask([Segment(t["start"], t["end"]) for t in stamps], len(audio) // 160)
        systems["silero ONNX"] = silero
    if not args.no_webrtc:
        import webrtcvad

        detector = webrtcvad.Vad(1)

        def webrtc(audio):
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            mask = np.zeros(len(audio) // 160, bool)
            for k in range(len(pcm) // 480):  # 30 ms frames, no smoothing (mode 1)
                if detector.is_speech(pcm[k * 480:(k + 1) * 480].tobytes(), SR):
                    mask[3 * k:3 * k + 3] = True
            return mask
        systems["webrtc mode 1"] = webrtc
    return systems


def real_speech_clips():
    """(name, audio with 1 s of silence either side, 10 ms speech mask) of the spoken channel names."""
    from fdvad.data import sources as src
    from fdvad.data.tts import speech_frames

    excluded: list[tuple[str, str]] = []
    src.list_sources(["real"], excluded=excluded)
    clips = []
    for path, reason in excluded:
        if "channel names" not in reason:
            continue
        audio = src.decode_source_file(path, SR)
        audio = audio[: len(audio) // 160 * 160]
        frames = speech_frames(audio, SR)
        pad = np.zeros(SR, np.float32)
        clips.append((Path(path).name, np.concatenate([pad, audio, pad]),
                      np.concatenate([np.zeros(100, bool), frames, np.zeros(100, bool)])))
    return clips


def held_out_non_speech(max_s: float):
    """(source, audio) of every recorded non-speech source outside the synth train split."""
    from fdvad.audio import iter_audio
    from fdvad.data import sources as src
    from fdvad.data.synth import noise_split
    from fdvad.errors import FdvadError

    out = []
    for s in src.list_sources(["real", "music"]):
        if noise_split(s) == "train":
            continue
        try:
            if s.name.startswith("midi:") or s.path is None or Path(s.path).is_dir():
                # rendered MIDI and keyboard-typing folders: an excerpt at -20 dBFS RMS
                audio = 0.1 * src.load_excerpt(s, int(max_s * SR), np.random.default_rng(0), SR)
            elif (s.duration_s or 0) > max_s and src.MEMBER_SEP not in s.path:
                try:  # long tracks: decode only the first max_s seconds
                    audio = next(iter_audio(s.path, SR, chunk_seconds=max_s))
                except FdvadError:  # a few OGG files only libsndfile reads
                    audio = src.decode_source_file(s.path, SR)[: int(max_s * SR)]
            else:
                audio = src.decode_source_file(s.path, SR)[: int(max_s * SR)]
        except Exception as e:  # noqa: BLE001 - a file no decoder reads is left out, and said so
            print(f"skipped {s.name}: {e}", file=sys.stderr)
            continue
        if len(audio) >= SR // 2:
            out.append((s, audio.astype(np.float32)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="default", help="comma-separated fdvad models (names or .safetensors)")
    ap.add_argument("--thresholds", type=lambda v: [float(x) for x in v.split(",") if x], default=[],
                    help="also score each fdvad model at these onsets, e.g. 0.5,0.7")
    ap.add_argument("--no-silero", action="store_true")
    ap.add_argument("--no-webrtc", action="store_true")
    ap.add_argument("--max-source-s", type=float, default=30.0)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "fdvad" / "pyannote-sample"))
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args(argv)

    from fdvad.audio import load_audio
    from fdvad.vad.formats import read_rttm

    systems = _systems(args)
    results: dict = {name: {} for name in systems}

    wav, rttm = fetch_sample(Path(args.cache).expanduser())
    audio = load_audio(wav)
    truth = frame_mask([s for segs in read_rttm(rttm).values() for s in segs], len(audio) // 160)
    clips = real_speech_clips()
    t0 = time.time()
    sources = held_out_non_speech(args.max_source_s)
    print(f"# sets: pyannote sample {len(audio) / SR:.0f} s; {len(clips)} spoken words; {len(sources)} held-out "
          f"non-speech recordings, {sum(len(a) for _, a in sources) / SR / 60:.1f} min "
          f"(loaded in {time.time() - t0:.0f} s)")

    for name, run in systems.items():
        r = results[name]
        pred = run(audio)
        r["pyannote_sample"] = {"miss": float((truth & ~pred).sum() / truth.sum()),
                                "false_alarm": float((~truth & pred).sum() / truth.sum())}
        speech = detected = fa = silence = 0
        for _, x, lab in clips:
            p = run(x)[: len(lab)]
            speech += int(lab.sum()); detected += int((lab & p).sum())
            fa += int((~lab & p).sum()); silence += int((~lab).sum())
        r["spoken_words"] = {"miss": 1 - detected / max(speech, 1), "false_alarm_of_non_speech": fa / max(silence, 1)}
        for group in ("effects", "music"):
            chosen = [(s, x) for s, x in sources if (s.kind == "music") == (group == "music")]
            masks = [run(x) for _, x in chosen]
            total = sum(len(m) for m in masks)
            r[f"non_speech_{group}"] = {
                "recordings": len(chosen), "minutes": round(total / 6000, 1),
                "speech_fraction": float(sum(m.sum() for m in masks) / max(total, 1)),
                "recordings_with_speech": int(sum(m.any() for m in masks))}

    print(f"\n{'system':<28} {'phone call':>22} {'spoken words':>13} {'effects: speech':>16} "
          f"{'with speech':>12} {'music: speech':>14} {'with speech':>12}")
    print(f"{'':<28} {'miss':>6} {'FA':>6} {'DetER':>8} {'miss':>13} {'% of time':>16} {'':>12} {'% of time':>14}")
    for name, r in results.items():
        ps, sw, fx, mu = r["pyannote_sample"], r["spoken_words"], r["non_speech_effects"], r["non_speech_music"]
        print(f"{name:<28} {ps['miss']:>6.3f} {ps['false_alarm']:>6.3f} {ps['miss'] + ps['false_alarm']:>8.3f} "
              f"{sw['miss']:>13.3f} {100 * fx['speech_fraction']:>15.1f}% "
              f"{fx['recordings_with_speech']:>5}/{fx['recordings']:<6} {100 * mu['speech_fraction']:>13.1f}% "
              f"{mu['recordings_with_speech']:>5}/{mu['recordings']:<6}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
