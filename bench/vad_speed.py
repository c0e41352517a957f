"""How long each VAD takes to turn 10 minutes of 16 kHz samples into speech segments, on ONE CPU thread.

    python bench/vad_speed.py                        # the shipped model, 600 s, best of 3
    python bench/vad_speed.py --model run.safetensors --seconds 60 --json speed.json

Every system gets the same generated recording (held-out espeak-ng voices over noise) as float32 samples in
memory, and is timed on the whole call a user makes to get segments:

  fdvad fast / exact   `vad(audio, 16000)` (features, network, post-processing)
  silero ONNX / JIT    `get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=16000)`
  webrtcvad            float -> int16 bytes, `is_speech` on every 30 ms frame in a Python loop (that is how
                       it is used), runs of speech frames -> segments

Each system is warmed up once on the first few seconds, then timed best of `--repeats` (one run for systems
slower than 20 s). torch, its inter-op pool and the onnxruntime session all use one thread.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

SAMPLE_RATE = 16000
WARMUP_S = 5.0
SLOW_RUN_S = 20.0  # systems slower than this per run are timed once
WEBRTC_FRAME_MS = 30


@dataclass
class Result:
    system: str
    seconds: float | None  # best wall time of the full call; None when skipped
    runs: int
    segments: int | None
    note: str = ""


# -- systems: each a factory returning `segments = run(audio)` -----------------------------------------------

def fdvad_system(model: str, mode: str) -> Callable[[np.ndarray], list]:
    import fdvad

    vad = fdvad.load_vad(model, mode=mode)
    return lambda audio: vad(audio, SAMPLE_RATE)


def silero_system(onnx: bool) -> tuple[Callable[[np.ndarray], list], str]:
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    model = load_silero_vad(onnx=onnx)
    note = ""
    if onnx:  # silero's OnnxWrapper asks for 1 intra- and 1 inter-op thread; check, and force it if not
        import onnxruntime as ort

        opts = model.session.get_session_options()
        if opts.intra_op_num_threads != 1 or opts.inter_op_num_threads != 1:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            from importlib import resources

            path = str(resources.files("silero_vad.data") / "silero_vad.onnx")
            model.session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        note = (f"ort intra/inter op threads {opts.intra_op_num_threads}/{opts.inter_op_num_threads}, "
                f"{model.session.get_providers()[0]}")

    def run(audio: np.ndarray) -> list:
        return get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=SAMPLE_RATE)

    return run, note


def webrtc_system(mode: int) -> tuple[Callable[[np.ndarray], list], str]:
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    frame = SAMPLE_RATE * WEBRTC_FRAME_MS // 1000
    frame_s = WEBRTC_FRAME_MS / 1000

    def run(audio: np.ndarray) -> list[tuple[float, float]]:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        nbytes = 2 * frame
        segments: list[tuple[float, float]] = []
        start = None
        k = -1
        for k in range(len(pcm) // nbytes):  # the trailing partial frame is dropped, as users do
            if vad.is_speech(pcm[k * nbytes: (k + 1) * nbytes], SAMPLE_RATE):
                if start is None:
                    start = k
            elif start is not None:
                segments.append((start * frame_s, k * frame_s))
                start = None
        if start is not None:
            segments.append((start * frame_s, (k + 1) * frame_s))
        return segments

    return run, f"mode {mode}, {WEBRTC_FRAME_MS} ms frames, raw frame decisions (no smoothing)"


def time_system(run: Callable[[np.ndarray], list], audio: np.ndarray, repeats: int) -> tuple[float, int, int]:
    """(best seconds, runs, segment count) after one warm-up on the first WARMUP_S seconds."""
    run(audio[: int(WARMUP_S * SAMPLE_RATE)])
    best, runs, n_segments = float("inf"), 0, 0
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        segments = run(audio)
        elapsed = time.perf_counter() - t0
        best, runs, n_segments = min(best, elapsed), runs + 1, len(segments)
        if elapsed > SLOW_RUN_S:
            break
    return best, runs, n_segments


# -- fdvad fast: where the time goes ------------------------------------------------------------------------

def profile_fast(model: str, audio: np.ndarray, repeats: int) -> dict[str, float]:
    """Best-of seconds for fdvad fast's stages: the front end over the whole file, front end + network + window
    pooling (`speech_probs`; network = that minus the front end), post-processing on its own, and the full
    call (which can differ a little from the sum: each stage is timed separately)."""
    import torch

    import fdvad
    from fdvad.vad.postprocess import postprocess

    vad = fdvad.load_vad(model, mode="fast")
    wave = torch.from_numpy(audio)

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(max(3, repeats)):  # cheap: always at least 3
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    with torch.inference_mode():
        features = best(lambda: vad.features(wave))
    probs_s = best(lambda: vad.speech_probs(audio, SAMPLE_RATE))
    probs, duration_s = vad.probs_and_duration(audio, SAMPLE_RATE)
    post = best(lambda: postprocess(probs, vad.hop_s, vad.postprocess, duration_s=duration_s))
    full = best(lambda: vad(audio, SAMPLE_RATE))
    return {"features": features, "network_and_pooling": max(probs_s - features, 0.0), "postprocess": post,
            "total": full}


# -- reporting ----------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "onnxruntime", "silero-vad", "webrtcvad-wheels", "fdvad"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def format_table(results: list[Result], duration_s: float, fast_s: float | None) -> str:
    header = f"{'system':<14} {'seconds':>9} {'x real time':>12} {'fast speedup':>13} {'runs':>5} {'segments':>9}  note"
    lines = [header, "-" * len(header)]
    for r in results:
        if r.seconds is None:
            lines.append(f"{r.system:<14} {'-':>9} {'-':>12} {'-':>13} {'-':>5} {'-':>9}  {r.note}")
            continue
        ratio = f"{r.seconds / fast_s:.2f}" if fast_s else "-"
        lines.append(f"{r.system:<14} {r.seconds:>9.3f} {duration_s / r.seconds:>12.0f} {ratio:>13} "
                     f"{r.runs:>5} {r.segments:>9}  {r.note}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default",
                   help="'default' or a .safetensors/.nemo checkpoint (default: default)")
    p.add_argument("--seconds", type=float, default=600.0, help="length of the generated recording (default: 600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated recording (default: 0)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per system, best kept (default: 3)")
    p.add_argument("--webrtc-mode", type=int, default=2, choices=[0, 1, 2, 3],
                   help="webrtcvad aggressiveness (default: 2)")
    p.add_argument("--no-jit", action="store_true", help="skip silero's TorchScript model")
    p.add_argument("--no-profile", action="store_true", help="skip the fdvad fast stage breakdown")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "bench/vad_speed.py", *(sys.argv[1:] if argv is None else argv)])

    import torch

    from fdvad.data.scenes import make_test_recording
    from fdvad.errors import FdvadError

    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only possible before the first parallel work in this process (e.g. under pytest)
        pass
    try:
        # the generator stops at about the target length; ask for a little more and cut it exactly
        rec = make_test_recording(seed=args.seed, target_duration_s=args.seconds + 30.0)
        audio = rec.audio[: int(args.seconds * SAMPLE_RATE)].astype(np.float32)
        duration_s = len(audio) / SAMPLE_RATE

        systems: list[tuple[str, Callable[[], tuple[Callable, str]]]] = [
            ("fdvad fast", lambda: (fdvad_system(args.model, "fast"), "")),
            ("fdvad exact", lambda: (fdvad_system(args.model, "exact"), "")),
            ("silero ONNX", lambda: silero_system(onnx=True)),
        ]
        if not args.no_jit:
            systems.append(("silero JIT", lambda: silero_system(onnx=False)))
        systems.append(("webrtcvad", lambda: webrtc_system(args.webrtc_mode)))

        results: list[Result] = []
        for name, factory in systems:
            try:
                run, note = factory()
            except ImportError as e:
                results.append(Result(name, None, 0, None, f"skipped: {e.name or e} is not installed"))
                continue
            except FdvadError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            seconds, runs, n_segments = time_system(run, audio, args.repeats)
            results.append(Result(name, seconds, runs, n_segments, note))

        profile = None if args.no_profile else profile_fast(args.model, audio, args.repeats)
    finally:
        torch.set_num_threads(threads_before)

    timed = {r.system: r.seconds for r in results if r.seconds is not None}
    fast_s = timed.get("fdvad fast")
    silero_s = [s for name, s in timed.items() if name.startswith("silero")]
    info = versions()
    print(f"# VAD speed: {duration_s:.1f} s of 16 kHz audio (make_test_recording seed {args.seed}), one thread, "
          f"best of {args.repeats}")
    print(f"# machine: {cpu_model()}, {os.cpu_count()} logical CPUs; torch {info['torch']} "
          f"(intra-op threads {threads_before} -> 1, inter-op {torch.get_num_interop_threads()}), "
          f"onnxruntime {info['onnxruntime']}, silero-vad {info['silero-vad']}, "
          f"webrtcvad-wheels {info['webrtcvad-wheels']}, numpy {info['numpy']}, python {info['python']}")
    print(f"# model: {args.model}")
    print(f"# command: {command}")
    print("# fast speedup = system seconds / fdvad fast seconds (> 1: fdvad fast is faster)")
    print(format_table(results, duration_s, fast_s))
    if profile:
        parts = ", ".join(f"{k.replace('_', ' ')} {v:.3f} s ({100 * v / profile['total']:.0f}%)"
                          for k, v in profile.items() if k != "total")
        print(f"# fdvad fast stages (each timed on its own): {parts}; full call {profile['total']:.3f} s")
    fast_ok = fast_s is not None and duration_s / fast_s >= 1000
    silero_ok = fast_s is not None and bool(silero_s) and fast_s < min(silero_s)
    print(f"CHECK fast >= 1000x real time: {'PASS' if fast_ok else 'FAIL'}"
          + (f" ({duration_s / fast_s:.0f}x)" if fast_s else ""))
    print(f"CHECK fast faster than silero: {'PASS' if silero_ok else 'FAIL'}"
          + (f" ({min(silero_s) / fast_s:.2f}x the fastest silero)" if fast_s and silero_s else
             " (silero not measured)" if not silero_s else ""))

    if args.json:
        payload = {
            "command": command, "audio_seconds": duration_s, "seed": args.seed, "repeats": args.repeats,
            "model": args.model, "threads": 1, "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "versions": info,
            "results": [{**asdict(r), "x_real_time": (duration_s / r.seconds if r.seconds else None),
                         "fast_speedup": (r.seconds / fast_s if r.seconds and fast_s else None)} for r in results],
            "fast_profile_s": profile,
            "checks": {"fast_ge_1000x_real_time": fast_ok, "fast_faster_than_silero": silero_ok},
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
