"""`fdvad subtitle INPUT... [-o OUT]`: video or audio files to subtitle files, offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError, FdvadError, OutputExistsError


def _target(inp: str, output: Optional[str], fmt: str, many: bool) -> Path:
    """Where the subtitles of `inp` go: beside it (NAME.srt), the -o file, or -o DIR/NAME.srt."""
    from .formats import FORMATS

    ext = FORMATS[fmt]
    if output is None:
        return Path(inp).with_suffix(ext)
    out = Path(output)
    if many or out.is_dir() or output.endswith(os.sep):
        if not out.is_dir():
            raise ConfigError(f"output directory {output} does not exist (with several inputs, -o must be a directory)")
        return out / (Path(inp).stem + ext)
    return out


def subtitle_command(
    inputs: List[str] = typer.Argument(..., metavar="INPUT...", help="Video or audio files (any format FFmpeg reads)."),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Output file (one input) or directory. Default: beside each input."),
    fmt: Optional[str] = typer.Option(None, "-f", "--format", help="srt | vtt | ass | json (default: from -o's "
                                                                   "extension, else srt)."),
    vad: str = typer.Option("default", "--vad", help="default, an fdvad .safetensors / NeMo .nemo, silero, webrtc, "
                                                     "or none (fixed 30 s windows)."),
    vad_threshold: Optional[float] = typer.Option(None, "--vad-threshold",
                                                  help="fdvad VADs: speech onset instead of the model's own."),
    asr: str = typer.Option("pocketsphinx", "--asr", help="pocketsphinx (offline, English, bundled), faster-whisper, "
                                                          "whisper or vosk (these need --asr-model)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="A local ASR model path."),
    language: Optional[str] = typer.Option(None, "--language", help="Spoken language, e.g. en (engines that take it)."),
    enhance: str = typer.Option("none", "--enhance", help="none, spectral (noisereduce) or rnnoise."),
    glossary: Optional[str] = typer.Option(None, "--glossary", help="Names and terms to fix: a text file "
                                                                    "(docs/subtitles.md)."),
    max_chunk: float = typer.Option(30.0, "--max-chunk", help="Longest piece of audio given to the ASR (s)."),
    max_chars: int = typer.Option(42, "--max-chars", help="Characters per line."),
    max_lines: int = typer.Option(2, "--max-lines", help="Lines per cue."),
    max_cps: float = typer.Option(20.0, "--max-cps", help="Characters per second."),
    min_duration: float = typer.Option(0.83, "--min-duration", help="Shortest cue (s)."),
    max_duration: float = typer.Option(7.0, "--max-duration", help="Longest cue (s)."),
    no_spelling: bool = typer.Option(False, "--no-spelling", help="No spelling correction."),
    no_numbers: bool = typer.Option(False, "--no-numbers", help="Keep numbers as the ASR spelled them."),
    no_fillers: bool = typer.Option(False, "--no-fillers", help="Keep filler words and noise tokens."),
    no_sentences: bool = typer.Option(False, "--no-sentences", help="No sentence casing or full stops."),
    keep_intermediate: Optional[str] = typer.Option(None, "--keep-intermediate", metavar="DIR",
                                                    help="Keep the extracted audio, VAD segments (RTTM) and raw ASR "
                                                         "words there."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing subtitle files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Subtitles for video or audio files: speech enhancement, VAD, ASR, text correction and cue layout."""
    from .correct import CorrectionOptions, read_glossary
    from .formats import FORMATS, guess_format, write_cues
    from .layout import LayoutRules, check_layout
    from .pipeline import Pipeline, SubtitleOptions

    try:
        if fmt is None:
            fmt = guess_format(output) if output and len(inputs) == 1 and Path(output).suffix \
                and not Path(output).is_dir() else "srt"
        if fmt not in FORMATS:
            raise ConfigError(f"unknown subtitle format {fmt!r}; choose one of {', '.join(FORMATS)}")
        rules = LayoutRules(max_chars_per_line=max_chars, max_lines=max_lines, max_cps=max_cps,
                            min_duration_s=min_duration, max_duration_s=max_duration)
        correction = CorrectionOptions(fillers=not no_fillers, spelling=not no_spelling, numbers=not no_numbers,
                                       sentences=not no_sentences, glossary=read_glossary(glossary) if glossary else [])
        options = SubtitleOptions(vad=vad, vad_threshold=vad_threshold, asr=asr, asr_model=asr_model,
                                  language=language, enhance=enhance, max_chunk_s=max_chunk, correction=correction,
                                  layout=rules).validate()
        targets = [_target(inp, output, fmt, len(inputs) > 1) for inp in inputs]
        for inp, target in zip(inputs, targets):  # fail before any work, not after an hour of ASR
            if target.exists() and not overwrite:
                raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it")
            if not target.parent.is_dir():
                raise ConfigError(f"output directory {target.parent} does not exist")
            if not os.access(target.parent, os.W_OK):
                raise ConfigError(f"cannot write to {target.parent} (permission denied)")
        pipeline = Pipeline(options)
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)

    failed = 0
    for inp, target in zip(inputs, targets):
        bar = None
        try:
            progress = None
            if not quiet and sys.stderr.isatty():
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

                bar = Progress(TextColumn(f"{Path(inp).name[:30]}: {{task.description}}"), BarColumn(),
                               TimeElapsedColumn(), transient=True)
                bar.start()
                task = bar.add_task("audio", total=1.0)
                progress = (lambda stage, done, total, b=bar, t=task:
                            b.update(t, description=stage, completed=done / total if total else 0))
            result = pipeline(inp, progress, keep_intermediate)
            write_cues(result.cues, target, fmt, overwrite=overwrite)
            if not quiet:
                speech = sum(s.duration for s in result.segments)
                problems = check_layout(result.cues, rules)
                typer.echo(f"{inp}: {len(result.cues)} cues, {len(result.words)} words, {speech:.1f} s of speech in "
                           f"{result.duration_s:.1f} s, {sum(result.seconds.values()):.1f} s -> {target}"
                           + (f" ({len(problems)} layout rules could not be met, e.g. {problems[0]})"
                              if problems else ""), err=True)
        except FdvadError as e:
            failed += 1
            typer.echo(f"error: {e}", err=True)
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130)
        finally:
            if bar is not None:
                bar.stop()
    if failed:
        raise typer.Exit(1)


def eval_asr_command(
    manifest: str = typer.Argument(..., metavar="MANIFEST", help="JSON lines with audio_filepath and text (e.g. "
                                                                 "from `fdvad data episodes`)."),
    vads: str = typer.Option("default,silero,webrtc,none", "--vads",
                             help="Comma-separated VAD choices: default, a model path, silero, webrtc, none."),
    enhance: str = typer.Option("none", "--enhance", help="Comma-separated enhancements to run each VAD with: "
                                                          "none, spectral, rnnoise."),
    asr: str = typer.Option("pocketsphinx", "--asr", help="ASR engine (see fdvad subtitle --help)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="A local ASR model path."),
    out: str = typer.Option("fdvad_eval_asr", "--out", help="Folder for eval_asr.json and eval_asr.md."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing result files."),
) -> None:
    """CER/WER, speech recall and time of the whole subtitle pipeline, once per VAD choice."""
    from ..eval.commands import _prepare_out
    from ..fileio import atomic_write_text
    from .evaluate import evaluate_asr, table

    try:
        from .enhance import METHODS

        choices = [v.strip() for v in vads.split(",") if v.strip()]
        if not choices:
            raise ConfigError("--vads: give at least one VAD choice")
        methods = tuple(m.strip() for m in enhance.split(",") if m.strip()) or ("none",)
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"--enhance: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        folder = _prepare_out(out, ("eval_asr.json", "eval_asr.md"), overwrite)

        def progress(vad: str, done: int, total: int) -> None:
            if sys.stderr.isatty():
                typer.echo(f"\r{vad}: {done}/{total} items", nl=done == total, err=True)

        report = evaluate_asr(manifest, choices, asr, asr_model, progress, methods)
        text = table(report)
        typer.echo(text)
        import json

        atomic_write_text(folder / "eval_asr.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                          overwrite=overwrite)
        atomic_write_text(folder / "eval_asr.md", text + "\n", overwrite=overwrite)
        typer.echo(f"results -> {folder / 'eval_asr.json'}, {folder / 'eval_asr.md'}", err=True)
    except FdvadError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)
