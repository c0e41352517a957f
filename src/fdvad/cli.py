"""The `fdvad` command. Subcommands stay thin: they parse options and call library functions.

User mistakes (FdvadError) are printed as one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import ConfigError, FdvadError, OutputExistsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Voice activity detection improved by Feature Distillation.")


def _error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fdvad {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


def _output_path(inp: str, out: Optional[str], fmt: str, many: bool) -> Optional[Path]:
    """Where the segments of `inp` go: None = stdout; a file; or DIR/<input name><ext>."""
    from .vad.formats import EXTENSIONS

    if out is None:
        return None
    out_path = Path(out)
    if many or out_path.is_dir() or out.endswith(os.sep):
        if not out_path.is_dir():
            raise ConfigError(f"output directory {out} does not exist (with several inputs, -o must be a directory)")
        return out_path / (Path(inp).name + EXTENSIONS[fmt])
    return out_path


@app.command("vad")
def vad_command(
    inputs: List[str] = typer.Argument(..., metavar="INPUT...", help="Audio or video files (any format FFmpeg reads)."),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Output file (one input) or directory (one file per input). "
                                              "Default: print to stdout."),
    fmt: Optional[str] = typer.Option(None, "-f", "--format",
                                      help="json | rttm | csv | audacity | manifest (default: from -o's "
                                           "extension, else json)."),
    mode: str = typer.Option("fast", "--mode", help="fast (one encoder pass) or exact (every window alone, as NeMo)."),
    model: str = typer.Option("default", "--model", "-m", help="'default' or another shipped model's name, an fdvad .safetensors or a NeMo .nemo file."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Onset: speech starts above this probability."),
    neg_threshold: Optional[float] = typer.Option(None, "--neg-threshold",
                                                  help="Offset: speech ends below this (default threshold - 0.15)."),
    min_speech: Optional[float] = typer.Option(None, "--min-speech", help="Drop speech shorter than this (s)."),
    min_silence: Optional[float] = typer.Option(None, "--min-silence", help="Fill silences shorter than this (s)."),
    pad: Optional[float] = typer.Option(None, "--pad", help="Widen each segment by this much at both ends (s)."),
    max_speech: Optional[float] = typer.Option(None, "--max-speech", help="Split segments longer than this (s)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for the model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Find the speech in audio or video files; print or write the segments."""
    import torch

    from .vad.detector import load_vad
    from .vad.formats import FORMATS, format_segments, guess_format, write_segments
    from .vad.postprocess import postprocess

    try:
        if fmt is None:
            fmt = guess_format(output) if output and not Path(output).is_dir() and len(inputs) == 1 \
                and Path(output).suffix else "json"
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if threads < 1:
            raise ConfigError("--threads must be at least 1")
        options = {k: v for k, v in {"onset": threshold, "offset": neg_threshold, "min_duration_on": min_speech,
                                     "min_duration_off": min_silence, "pad_onset": pad, "pad_offset": pad,
                                     "max_speech_duration_s": max_speech}.items() if v is not None}
        torch.set_num_threads(threads)
        detector = load_vad(model, mode=mode)
        config = detector.postprocess.replace(**options) if options else detector.postprocess
        targets = [_output_path(inp, output, fmt, len(inputs) > 1) for inp in inputs]
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)

    failed = 0
    stdout_json: dict = {}
    show_progress = not quiet and sys.stderr.isatty()
    for inp, target in zip(inputs, targets):
        try:
            if target is not None and target.exists() and not overwrite:
                raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it")
            probs, duration_s = _probs_with_progress(detector, inp, show_progress)
            segments = postprocess(probs, detector.hop_s, config, duration_s=duration_s)
            if target is None:
                if fmt == "json" and len(inputs) > 1:
                    stdout_json[inp] = [s.to_dict() for s in segments]
                else:
                    typer.echo(format_segments(segments, fmt, inp), nl=False)
            else:
                write_segments(target, segments, fmt, inp, overwrite=overwrite)
                if not quiet:
                    typer.echo(f"{inp}: {len(segments)} speech segments, "
                               f"{sum(s.duration for s in segments):.1f} s of {duration_s:.1f} s -> {target}", err=True)
        except FdvadError as e:
            failed += 1
            _error(str(e))
        except KeyboardInterrupt:
            _error("interrupted")
            raise typer.Exit(130)
    if stdout_json:
        typer.echo(json.dumps(stdout_json, indent=1, ensure_ascii=False))
    if failed:
        raise typer.Exit(1)


def _probs_with_progress(detector, inp: str, show: bool):
    if not show:
        return detector.probs_and_duration(inp, None, None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .audio import audio_info

    total = audio_info(inp).duration_s or None
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(Path(inp).name[:40], total=total)
        return detector.probs_and_duration(inp, None, lambda done: bar.update(task, completed=done))


def _register_eval_commands() -> None:
    from .eval.commands import compare_command, eval_command, tune_command

    app.command("eval")(eval_command)
    app.command("compare")(compare_command)
    app.command("tune")(tune_command)
    from .train.commands import train_command

    app.command("train")(train_command)
    from .distill.commands import distill_command, finetune_command

    app.command("distill")(distill_command)
    app.command("finetune")(finetune_command)
    from .analysis.commands import analyze_command

    app.command("analyze")(analyze_command)
    from .subtitles.commands import eval_asr_command, subtitle_command

    app.command("subtitle")(subtitle_command)
    app.command("eval-asr")(eval_asr_command)


_register_eval_commands()

data_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       help="Labelled corpora: make and describe them.")
app.add_typer(data_app, name="data")


@data_app.command("stats")
def data_stats_command(
    corpus: str = typer.Argument(..., metavar="MANIFEST_OR_FOLDER",
                                 help="A NeMo manifest, an AVA-Speech CSV, a LibriParty JSON or a folder of "
                                      "audio + RTTM files."),
    audio_dir: Optional[str] = typer.Option(None, "--audio-dir",
                                            help="Where AVA / LibriParty audio is (default: beside the labels)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Save speech-ratio and duration histograms here (PNG)."),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON instead of a table."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Leave out items whose audio file is missing."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing plot file."),
) -> None:
    """Print hours, speech ratio and items per language / voice / noise / SNR band / codec of a corpus."""
    from .data.corpora import read_corpus
    from .data.stats import corpus_stats, save_histogram

    try:
        if plot is not None and Path(plot).exists() and not overwrite:
            raise OutputExistsError(f"{plot} already exists; pass --overwrite to replace it")
        items = read_corpus(corpus, audio_dir, skip_missing=skip_missing)
        stats = corpus_stats(items)
        if as_json:
            typer.echo(json.dumps({k: v for k, v in stats.items() if k != "per_item"}, indent=1, ensure_ascii=False))
        else:
            _print_stats(corpus, stats)
        if plot is not None:
            save_histogram(stats, plot, title=f"{Path(corpus).name}: {stats['items']} items, "
                                              f"{stats['hours']:.3f} h, {100 * stats['speech_ratio']:.0f}% speech",
                           overwrite=overwrite)
            typer.echo(f"histogram -> {plot}", err=True)
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


@data_app.command("synth")
def data_synth_command(
    out: str = typer.Option(..., "--out", help="Corpus folder (created; its parent must exist). Re-running "
                                               "with the same settings completes an interrupted corpus."),
    hours: Optional[float] = typer.Option(None, "--hours", help="Hours of audio to make (about 12 s per item)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same corpus, byte for byte."),
    jobs: int = typer.Option(1, "--jobs", help="Worker processes."),
    items: Optional[int] = typer.Option(None, "--items", help="Number of items instead of --hours."),
    engines: Optional[str] = typer.Option(None, "--engines", help="Comma-separated TTS engines "
                                                                  "(espeak, flite, festival; default: all installed)."),
    voice_names: Optional[str] = typer.Option(None, "--voices", help="Comma-separated base voices to use only "
                                                                     "(e.g. espeak:de+f3,flite:slt)."),
    effects: Optional[str] = typer.Option(None, "--effects", help="Effect probabilities NAME=P,... (reverb, "
                                                                  "bandlimit, resample8k, codec, gain, clip)."),
    noise_kinds: Optional[str] = typer.Option(None, "--noise-kinds",
                                              help="Comma-separated non-speech kinds to use only (real, music, "
                                                   "generated, human, babble; default: all)."),
    window_labels: str = typer.Option("centre", "--window-labels",
                                      help="Label rule of the 0.63 s windows in each split's windows.json: centre "
                                           "(the middle 80 ms) or majority (more than half the window)."),
) -> None:
    """Make a labelled, multilingual, noisy VAD corpus: WAV + RTTM per item and a NeMo manifest per split."""
    from .data.synth import DEFAULT_EFFECTS, SynthConfig, synthesize_corpus

    try:
        if items is None and hours is None:
            raise ConfigError("give --hours H (or --items N)")
        if hours is not None and not hours > 0:
            raise ConfigError(f"--hours must be > 0, got {hours}")
        probs = dict(DEFAULT_EFFECTS)
        for part in filter(None, (effects or "").split(",")):
            name, eq, value = part.partition("=")
            try:
                probs[name.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"--effects wants NAME=PROBABILITY, got {part!r}") from None
            if not eq:
                raise ConfigError(f"--effects wants NAME=PROBABILITY, got {part!r}")
        config = SynthConfig(
            effects=probs,
            engines=tuple(e.strip() for e in engines.split(",") if e.strip()) if engines else None,
            voice_names=tuple(v.strip() for v in voice_names.split(",") if v.strip()) if voice_names else None,
            noise_kinds=tuple(k.strip() for k in noise_kinds.split(",") if k.strip()) if noise_kinds else None)
        result = synthesize_corpus(out, hours=hours, seed=seed, jobs=jobs, items=items,
                                   config=config, window_labels=window_labels)
        rate = result["made_hours"] / (result["seconds"] / 60) if result["seconds"] > 0 else 0.0
        typer.echo(f"{result['items']} items, {result['hours']:.3f} h of audio in {out} "
                   f"({result['made']} made now in {result['seconds']:.1f} s: {rate:.4f} h of audio per minute, "
                   f"{jobs} job{'s' if jobs != 1 else ''})")
        for split, path in result["manifests"].items():
            typer.echo(f"  {split}: {path}")
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


@data_app.command("windows")
def data_windows_command(
    corpus: str = typer.Argument(..., metavar="MANIFEST_OR_FOLDER",
                                 help="A NeMo manifest, an AVA-Speech CSV, a LibriParty JSON or a folder of "
                                      "audio + RTTM files."),
    out: str = typer.Option(..., "--out", help="The window manifest to write (NeMo JSON lines)."),
    label_rule: str = typer.Option("centre", "--rule", help="centre (the middle 80 ms decides) or majority "
                                                            "(speech over more than half the window)."),
    window_s: float = typer.Option(0.63, "--window", help="Window length in seconds."),
    shift_s: float = typer.Option(0.08, "--shift", help="Window hop in seconds."),
    audio_dir: Optional[str] = typer.Option(None, "--audio-dir",
                                            help="Where AVA / LibriParty audio is (default: beside the labels)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Write a corpus's 0.63 s window labels as a NeMo segment-VAD manifest (speech / background per window)."""
    from .data.corpora import read_corpus, write_window_manifest

    try:
        if Path(out).exists() and not overwrite:
            raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it")
        if not Path(out).parent.is_dir():
            raise ConfigError(f"the folder of --out ({Path(out).parent}) does not exist")
        n = write_window_manifest(read_corpus(corpus, audio_dir), out, label_rule=label_rule, window_s=window_s,
                                  shift_s=shift_s, overwrite=overwrite)
        typer.echo(f"{n} windows -> {out}")
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


@data_app.command("pseudo-label")
def data_pseudo_label_command(
    inputs: List[str] = typer.Argument(..., metavar="INPUT...", help="Audio or video files, or folders of them."),
    out: str = typer.Option(..., "--out", help="Folder for NAME.wav (16 kHz) + rttm/NAME.rttm per input."),
    labeller: str = typer.Option("silero", "--labeller",
                                 help="silero (the packaged Silero VAD), default, or an fdvad / .nemo model file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files of the same names in --out."),
) -> None:
    """Label your own recordings with another VAD: a real dev set for `fdvad tune` and `train.select`."""
    from .data.pseudo import pseudo_label

    try:
        def progress(done: int, total: int, name: str) -> None:
            typer.echo(f"labelled {done}/{total}: {name}", err=True)

        result = pseudo_label(inputs, out, labeller, overwrite=overwrite, progress=progress)
        share = result["speech_seconds"] / result["seconds"] if result["seconds"] else 0.0
        typer.echo(f"{result['files']} files, {result['seconds']:.1f} s of audio, {share:.0%} speech by "
                   f"{labeller} -> {result['out']}")
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


@data_app.command("episodes")
def data_episodes_command(
    out: str = typer.Option(..., "--out", help="Folder for the episodes (WAV + RTTM + manifest.json)."),
    count: int = typer.Option(5, "--count", min=1, help="How many episodes."),
    minutes: float = typer.Option(3.0, "--minutes", help="Length of each episode."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first episode (episode k uses seed + k)."),
) -> None:
    """Generated dialogue episodes with reference transcripts, for `fdvad eval-asr` (docs/subtitles.md)."""
    from .subtitles.episodes import write_episodes

    try:
        if not minutes > 0:
            raise ConfigError(f"--minutes must be > 0, got {minutes}")

        def progress(done: int, total: int) -> None:
            typer.echo(f"episode {done}/{total}", err=True)

        manifest = write_episodes(out, count, minutes, seed, progress)
        typer.echo(f"{count} episodes -> {manifest}")
    except FdvadError as e:
        _error(str(e))
        raise typer.Exit(e.exit_code)


def _print_stats(name: str, stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=name, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row("items", str(stats["items"]))
    table.add_row("hours", f"{stats['hours']:.3f}")
    table.add_row("speech hours", f"{stats['speech_hours']:.3f}")
    table.add_row("speech ratio", f"{stats['speech_ratio']:.3f}")
    console.print(table)
    for category, counts in stats["counts"].items():
        table = Table()
        table.add_column(f"{category.replace('_', ' ')} ({len(counts)})")
        table.add_column("items", justify="right")
        for value, count in counts.items():
            table.add_row(value, str(count))
        console.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
