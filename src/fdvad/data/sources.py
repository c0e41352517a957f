"""Non-speech sources for the corpus builder: real recordings from Debian packages, music rendered from
generated MIDI through real General MIDI soundfonts, generated noises, synthesised human non-speech
sounds (breaths, lip smacks, coughs, ...) and distant multi-talker babble.

Every source is a `NoiseSource` with a stable name, its kind and category, and the Debian package and
licence it comes from, so that manifests can record them and splits can keep a recording out of both
train and test. `list_sources()` finds what this machine has; `load_excerpt()` returns a random excerpt
of any source at unit RMS (the mixer alone sets the level).

Speech is kept out on purpose: files that contain a human voice saying words (spoken channel names,
choirs, game voice lines) are excluded by name patterns, chosen from the file names and package
documentation and checked by running Silero VAD over every file (see docs/sources.md, "Excluded").

Babble (many overlapping distant voices) is speech-like by nature. Whether it counts as speech is the
corpus builder's choice; the documented default (`BABBLE_DEFAULT`) is: babble used as a *background* at
least 15 dB below the foreground speech is labelled non-speech, as annotators of real recordings do for
a distant crowd or a TV in another room.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import load_audio, prepare_audio
from ..errors import AudioError, ConfigError, FdvadError
from ..fileio import atomic_write, atomic_write_text
from .noise import NOISE_KINDS, make_noise, unit_rms

SAMPLE_RATE = 16000
KINDS = ("real", "music", "generated", "human", "babble")
AUDIO_EXTENSIONS = (".ogg", ".oga", ".opus", ".wav", ".flac", ".mp3")
MIN_DURATION_S = 0.2
MEMBER_SEP = "::"  # "container::member" paths for sounds stored inside archives

# Default labelling of babble for the corpus builder: background babble at least this many dB below the
# foreground speech is labelled non-speech; louder babble is either dropped or labelled speech.
BABBLE_DEFAULT = {"label": "non-speech", "min_db_below_foreground": 15.0}


class SourceError(FdvadError):
    """A noise source cannot be used (missing package, unreadable file, failed render)."""


@dataclass(frozen=True)
class NoiseSource:
    name: str  # stable unique id, e.g. "oxygen-sounds:Oxygen-Sys-App-Error"
    kind: str  # "real" | "music" | "generated" | "human" | "babble"
    category: str  # "alarm", "vehicle", "instrument", "orchestral", "breath", "babble", "white", ...
    package: str  # Debian package, or "fdvad" for sounds generated here
    licence: str  # short licence name from /usr/share/doc/PKG/copyright
    path: str | None = None  # file (or "archive::member"); the render cache file for MIDI music; None if generated
    duration_s: float | None = None  # of the decoded file, None for generated sources


@dataclass(frozen=True)
class SourcePackage:
    name: str
    licence: str  # licence of its sounds; per-file DEP-5 stanzas override it where they name the file
    kind: str  # "real" | "music" | "soundfont"
    category: str  # default category of its files
    installed_mb: float
    tier: str  # "core": small, installed by the corpus builder; "large": optional
    description: str
    exclude: tuple[tuple[str, str], ...] = ()  # (regex on the file path, reason)
    categories: tuple[tuple[str, str], ...] = ()  # (regex on the file path, category), before the global rules


# Speech and vocals excluded everywhere (regex on the full path, reason).
GLOBAL_EXCLUDE: tuple[tuple[str, str], ...] = (
    (r"audio-channel-", "a human voice speaking channel names"),
    (r"/sounds/alsa/(Front|Rear|Side)_", "a human voice speaking channel names"),
    (r"(choir|vocal|voice|speech|spoken|singing|sing_|_sing|\bvox\b|voxy)", "voice or choir by its name"),
    (r"/silence\.(ogg|wav|flac)$", "digital silence"),
)

SOURCE_PACKAGES: dict[str, SourcePackage] = {p.name: p for p in (
    # --- General MIDI soundfonts, rendered through fluidsynth
    SourcePackage("fluid-soundfont-gm", "MIT", "soundfont", "midi", 141.8, "core",
                  "Fluid R3 General MIDI soundfont (sampled instruments)"),
    SourcePackage("timgm6mb-soundfont", "GPL-2", "soundfont", "midi", 5.9, "core",
                  "TimGM6mb General MIDI soundfont (small, sampled)"),
    SourcePackage("musescore-general-soundfont-small", "MIT", "soundfont", "midi", 38.2, "core",
                  "MuseScore General Lite soundfont (SF3, sampled)"),
    # --- instrument samples
    SourcePackage("freepats", "GPL-2+", "real", "instrument", 31.9, "core",
                  "Gravis UltraSound patches: recorded instrument and drum notes (read from .pat here)",
                  categories=((r"Drum_000", "percussion"), (r"Tone_000/12\d_", "effect"), (r"Tone_000", "instrument"))),
    SourcePackage("sonic-pi-samples", "CC0-1.0", "real", "instrument", 22.4, "core",
                  "Sonic Pi samples: drums, loops, ambient textures, vinyl, guitar, tabla",
                  exclude=((r"ambi_choir", "a choir"),
                           (r"bass_voxy", "vocal-like bass ('voxy')"),
                           (r"mehackit_robot|glitch_robot", "robot-voice syllables"),
                           (r"misc_burp", "a human vocal sound (kept out of the real-noise pool)")),
                  categories=((r"ambi_", "ambient"), (r"vinyl_", "vinyl"), (r"loop_", "percussion"),
                              (r"(bd_|sn_|drum_|perc_|tabla|elec_.*(snare|kick|tom|cymbal))", "percussion"),
                              (r"misc_crow", "animal"), (r"mehackit_phone", "bell"),
                              (r"(elec_|glitch_)", "electronic"))),
    SourcePackage("grandorgue-demo", "GPL-2+ or CC-BY-SA-2.5", "real", "organ", 20.2, "core",
                  "GrandOrgue demo sample set: recorded pipe-organ notes and blower motor (WavPack inside a zip)",
                  categories=((r"Motor", "machinery"),)),
    # --- desktop and application sound themes
    SourcePackage("oxygen-sounds", "LGPL-3.0-or-later", "real", "notification", 2.0, "core",
                  "KDE Oxygen desktop sounds"),
    SourcePackage("sound-theme-freedesktop", "GPL-2+", "real", "notification", 0.5, "core",
                  "freedesktop.org sound theme (bells, alarms, phone tones)",
                  exclude=((r"audio-channel-", "a human voice speaking channel names"),)),
    SourcePackage("deepin-sound-theme", "GPL-3+", "real", "notification", 4.7, "core",
                  "Deepin desktop sounds"),
    SourcePackage("lomiri-sounds", "CC-BY-SA-3.0", "real", "notification", 18.2, "core",
                  "Lomiri ringtones, notifications and camera sounds",
                  categories=((r"ringtones", "ringtone"), (r"camera", "click"))),
    SourcePackage("eiskaltdcpp-sounds", "GPL-2", "real", "notification", 0.3, "core",
                  "EiskaltDC++ notification sounds"),
    SourcePackage("sound-icons", "GPL-2+", "real", "notification", 0.7, "core",
                  "speech-dispatcher sound icons (instrument notes, animal and glass sounds)"),
    SourcePackage("bucklespring-data", "GPL-2+", "real", "keyboard", 4.8, "core",
                  "recorded IBM Model M key presses and releases; played as typing"),
    SourcePackage("alsa-utils", "GPL-2", "real", "noise", 2.4, "core",
                  "ALSA speaker-test files: only Noise.wav is non-speech",
                  exclude=((r"/sounds/alsa/(Front|Rear|Side)_", "a human voice speaking channel names"),)),
    # --- game sound effects
    SourcePackage("openttd-opensfx", "CC-BY-SA-3.0", "real", "machinery", 12.7, "core",
                  "OpenTTD sound set: vehicles, industry, crowds, animals (WAVs inside opensfx.cat)",
                  exclude=((r"::(Good_Year|Bad_Year|Oooh_sound)$", "crowd vocalisations (cheers, 'oooh')"),)),
    SourcePackage("colobot-common-sounds", "GPL-3+", "real", "effect", 60.9, "core",
                  "Colobot sounds (machines, robots, impacts) and music",
                  exclude=((r"/sound0(64|73)\.wav$", "voice-like: Silero speech in 67% of frames"),),
                  categories=((r"/music/", "game-music"),)),
    SourcePackage("tecnoballz-data", "GPL-3+", "real", "effect", 2.4, "core", "TecnoballZ sound effects"),
    SourcePackage("moon-lander-data", "BSD-2-Clause", "real", "effect", 1.7, "core", "Moon Lander sound effects",
                  exclude=((r"eagle_has_landed", "spoken words"),)),
    SourcePackage("lbreakout2-data", "GPL-2+", "real", "effect", 3.9, "core", "LBreakout2 sound effects",
                  exclude=((r"/(dammit|damn|excellent|verygood|wontgiveup)\.wav$", "spoken words"),)),
    SourcePackage("frozen-bubble-data", "GPL-2", "real", "effect", 23.7, "core",
                  "Frozen Bubble sound effects and music", categories=((r"/snd/(intro|main|frozen)", "game-music"),),
                  exclude=((r"/newroot\.ogg$", "voice-like: Silero speech in 47% of frames"),)),
    # --- recorded game music
    SourcePackage("wesnoth-1.16-music", "GPL-2+", "music", "orchestral", 147.8, "core",
                  "Battle for Wesnoth orchestral music",
                  exclude=((r"nunc_dimittis", "a sung canticle by its title (choir)"),)),
    SourcePackage("singularity-music", "CC-BY-SA-3.0", "music", "synth-music", 50.0, "core",
                  "Endgame: Singularity music (electronic)"),
    SourcePackage("planetblupi-music-ogg", "GPL-3+", "music", "game-music", 76.6, "core", "Planet Blupi music"),
    SourcePackage("hyperrogue-music", "CC-BY-SA-3.0", "music", "game-music", 63.0, "core",
                  "HyperRogue music and sound effects", categories=((r"/sounds/", "effect"),),
                  exclude=((r"/sounds/(seen|die|speak|dzia|heal|message)-|/sounds/hit-prince|/sounds/nervous",
                            "character voices (shouts, words, grunts)"),)),
    SourcePackage("warzone2100-music", "GPL-2+", "music", "game-music", 83.6, "core", "Warzone 2100 music (Opus)"),
    SourcePackage("asc-music", "GPL-2+", "music", "game-music", 10.1, "core", "Advanced Strategic Command music (MP3)"),
    # --- large, optional
    SourcePackage("supertuxkart-data", "GPL-3+", "real", "effect", 688.8, "large",
                  "SuperTuxKart music and sound effects (engines, weather, animals); 84 MB of audio in a "
                  "689 MB package (mostly graphics)",
                  exclude=((r"(sara_airport_pa|nolok_speech|WilhelmScream|/ugh\.ogg|/wee\.ogg)", "voice"),
                           (r"lenautile_restaurant", "restaurant chatter (Silero: 2.1 s of speech)")),
                  categories=((r"/music/|Battle_Theme|Gowns_Bow|beneath_the_rabbit|intro2\.ogg", "game-music"),)),
    SourcePackage("widelands-data", "GPL-2+", "real", "effect", 435.5, "large",
                  "Widelands music and recorded work sounds (sawing, hammering, smiths, mills), farm and "
                  "wild animals; 109 MB of audio in a 436 MB package",
                  categories=((r"/music/", "game-music"), (r"/animals/|/farm/.*(animal|horse|ox|sheep|donkey)"
                                                           r"|/critters/", "animal"),
                              (r"(saw|hammer|smith|cutting|stone|mill|weav|mortar|grind|furnace|scythe)",
                               "work"))),
)}

# Category from the file name (lower case, matched at the start of a word), after the package's own
# rules; the package default when nothing matches.
CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    (r"(alarm|siren|warning|alert|critical|whistle)", "alarm"),
    (r"(bell|chime|ring|phone|call)", "bell"),
    (r"(door|knock)", "door"),
    (r"(applause|crowd|cheer|audience)", "crowd"),
    (r"(engine|motor|car|truck|train|plane|aircraft|heli|ship|boat|bus|tram|jet|rocket|vehicle|horn"
     r"|spaceship|locomotive|steam)", "vehicle"),
    (r"(explo|bomb|blast|boom|crash|impact|hit|bang|shot|gun|laser)", "impact"),
    (r"(water|splash|rain|bubble|ocean|drip|sea|river|waterfall)", "water"),
    (r"(wind(?!ow)|storm|thunder|woosh|swoosh|whoosh)", "wind"),
    (r"(click|tick|key|button|typ|switch|shutter|camera)", "click"),
    (r"(step|foot|walk)", "footsteps"),
    (r"(glass|break|shatter)", "glass"),
    (r"(drum|kick|snare|cymbal|perc|tabla|hihat|hi-hat|clap|bd_|sn_)", "percussion"),
    (r"(piano|guitar|organ|harp|marimba|xylo|cembalo|klavichord|violin|flute|mbira|koto|rhodes|mallet|bass"
     r"|string|cello|trumpet|sax)", "instrument"),
    (r"(crow|cat|dog|bird|canary|cockchafer|frog|cow|sheep|mouse|squeak|animal|horse|lion|monkey|duck|wolf)",
     "animal"),
    (r"(beep|blip|bleep|synth|glitch|elec)", "electronic"),
)

HUMAN_KINDS = ("breath_in", "breath_out", "lip_smack", "tongue_click", "cough", "laughter", "sniff",
               "throat_clear")
HUMAN_CATEGORIES = {"breath_in": "breath", "breath_out": "breath", "lip_smack": "lip", "tongue_click": "lip",
                    "cough": "cough", "laughter": "laughter", "sniff": "sniff", "throat_clear": "throat-clear"}
MUSIC_CATEGORIES = frozenset({"game-music", "orchestral", "synth-music"})  # recorded music tracks
GENERATED_CATEGORIES = {"music": "synth-music"}  # other noise kinds are their own category

# General MIDI programs (0-based) never used: they sound like singing or speech.
VOCAL_PROGRAMS = frozenset({52, 53, 54, 85, 91})  # choir aahs, voice oohs, synth voice, lead 6 (voice), pad 4 (choir)
MIDI_STYLES = ("piano", "band", "strings", "organ", "electronic", "jazz", "guitar", "percussion")
MIDI_PIECES_PER_SOUNDFONT = 24
MIDI_SECONDS = 60.0


def install_hint(tier: str = "core") -> str:
    """The apt-get command that installs every source package of `tier` ("core" or "all") and fluidsynth."""
    names = ["fluidsynth", "espeak-ng"] + sorted(p.name for p in SOURCE_PACKAGES.values()
                                                   if tier == "all" or p.tier == tier)
    return "apt-get install -y --no-install-recommends " + " ".join(names)


def default_cache_dir() -> Path:
    base = os.environ.get("FDVAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fdvad")
    return Path(base)


# ----------------------------------------------------------------------------------------- package files


def _dpkg_list(package: str, admin_dir: str = "/var/lib/dpkg/info") -> list[str]:
    """Files of an installed Debian package (empty if it is not installed)."""
    for suffix in ("", ":all", ":amd64", ":arm64", ":i386"):
        path = os.path.join(admin_dir, f"{package}{suffix}.list")
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                return [line.rstrip("\n") for line in fh if line.strip()]
    return []


def package_installed(package: str) -> bool:
    return bool(_dpkg_list(package))


@functools.lru_cache(maxsize=None)
def _dep5_stanzas(package: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    """(file patterns, licence) of each Files stanza of a machine-readable copyright file."""
    path = f"/usr/share/doc/{package}/copyright"
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", block, re.M)
        licence = re.search(r"^License:[ \t]*(\S.*)$", block, re.M)
        if files and licence:
            stanzas.append((tuple(files.group(1).split()), licence.group(1).strip()))
    return tuple(stanzas)


def file_licence(package: str, path: str) -> str:
    """The licence of one installed file: the last DEP-5 stanza that names it (by its trailing path
    components), else the package's licence from SOURCE_PACKAGES."""
    found = None
    for patterns, licence in _dep5_stanzas(package):
        for pattern in patterns:
            if pattern in ("*", "debian/*"):
                continue
            parts = pattern.split("/")
            tails = ["/".join(parts[i:]) for i in range(max(1, len(parts) - 1))] if len(parts) > 1 else [pattern]
            if any(fnmatch.fnmatchcase(path, "*/" + tail) for tail in tails):
                found = licence
    pkg = SOURCE_PACKAGES.get(package)
    return found or (pkg.licence if pkg else "unknown")


def _excluded(package: str, path: str) -> str | None:
    """The reason `path` is kept out (speech or vocals), or None."""
    pkg = SOURCE_PACKAGES.get(package)
    for pattern, reason in (pkg.exclude if pkg else ()) + GLOBAL_EXCLUDE:
        if re.search(pattern, path, re.I):
            return reason
    return None


def _category(package: str, path: str) -> str:
    pkg = SOURCE_PACKAGES[package]
    low = path.lower()
    for pattern, category in pkg.categories:
        if re.search(pattern, path, re.I):
            return category
    if pkg.kind == "music":
        return pkg.category
    base = low.split(MEMBER_SEP, 1)[1] if MEMBER_SEP in low else os.path.basename(low)
    for pattern, category in CATEGORY_RULES:
        if re.search(r"(?<![a-z])" + pattern, base):
            return category
    return pkg.category


def _audio_files(package: str) -> list[str]:
    """Audio files of an installed package (symlinks resolved, duplicates removed), including members of
    archives we know how to read."""
    out: set[str] = set()
    for path in _dpkg_list(package):
        low = path.lower()
        if "/usr/share/doc/" in low or not os.path.isfile(path):
            continue
        if low.endswith(AUDIO_EXTENSIONS):
            out.add(os.path.realpath(path))
        elif low.endswith(".pat"):
            out.add(os.path.realpath(path))
        elif low.endswith(".cat") and "openttd" in low:
            out.update(f"{path}{MEMBER_SEP}{name}" for name in _cat_index(path))
        elif low.endswith(".orgue"):
            with zipfile.ZipFile(path) as zf:
                out.update(f"{path}{MEMBER_SEP}{n}" for n in zf.namelist() if n.lower().endswith(".wav"))
    return sorted(out)


def _source_name(package: str, path: str, common: str) -> str:
    if MEMBER_SEP in path:
        rel = path.split(MEMBER_SEP, 1)[1]
    else:
        rel = os.path.relpath(path, common) if common else os.path.basename(path)
    rel = re.sub(r"\s+", "_", os.path.splitext(rel)[0])
    return f"{package}:{rel}"


# ------------------------------------------------------------------------------- containers and decoding


_CC_NAMES = (("Zero 1.0", "CC0-1.0"), ("Attribution-ShareAlike 3.0", "CC-BY-SA-3.0"),
             ("Attribution 3.0", "CC-BY-3.0"), ("Public Domain", "public-domain"))


@functools.lru_cache(maxsize=8)
def _cat_index(path: str) -> dict[str, tuple[int, int, str]]:
    """OpenTTD .cat sound archive: {slug of the title: (offset of the RIFF data, its length, licence)}.
    Each entry's name is a description such as '"Cow". Original ... License: Creative Commons Zero 1.0.'"""
    data = Path(path).read_bytes()
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF
    index: dict[str, tuple[int, int, str]] = {}
    for i in range(first // 8):
        offset, size = struct.unpack_from("<Ii", data, 8 * i)
        offset &= 0x7FFFFFFF
        name_len = data[offset]
        text = data[offset + 1: offset + 1 + name_len].split(b"\0")[0].decode("latin-1")
        riff = offset + 1 + name_len
        if size <= 1 + name_len or data[riff:riff + 4] != b"RIFF":
            continue
        title = re.match(r'\s*"([^"]*)"', text)
        slug = re.sub(r"[^A-Za-z0-9]+", "_", title.group(1) if title else f"sound{i:03d}").strip("_")
        licence = next((short for long, short in _CC_NAMES if long in text.split("License:", 1)[-1]), "")
        base, n = slug, 1
        while slug in index:
            slug, n = f"{base}_{n}", n + 1
        index[slug] = (riff, size - 1 - name_len, licence)
    return index


def _read_gus_patch(path: str) -> list[tuple[np.ndarray, int]]:
    """Samples of a Gravis UltraSound .pat file as (float32 mono, sample rate)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"GF1PATCH"):
        raise SourceError(f"{path}: not a GUS patch")
    n_samples = data[239 - 47 + 6]  # layer header: samples count
    pos, out = 239, []
    for _ in range(n_samples):
        length, = struct.unpack_from("<I", data, pos + 8)
        rate, = struct.unpack_from("<H", data, pos + 20)
        modes = data[pos + 55]
        raw = data[pos + 96: pos + 96 + length]
        pos += 96 + length
        if modes & 1:
            x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<u2" if modes & 2 else "<i2").astype(np.float32)
            x = (x - 32768.0) / 32768.0 if modes & 2 else x / 32768.0
        else:
            x = np.frombuffer(raw, dtype=np.uint8 if modes & 2 else np.int8).astype(np.float32)
            x = (x - 128.0) / 128.0 if modes & 2 else x / 128.0
        if len(x) and rate:
            out.append((x, int(rate)))
    return out


def _fade_concat(pieces: Sequence[np.ndarray], sample_rate: int, fade_s: float = 0.01) -> np.ndarray:
    f = int(fade_s * sample_rate)
    out = []
    for x in pieces:
        x = x.astype(np.float32).copy()
        k = min(f, len(x) // 2)
        if k:
            ramp = np.linspace(0, 1, k, dtype=np.float32)
            x[:k] *= ramp
            x[-k:] *= ramp[::-1]
        out.append(x)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def decode_source_file(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a source file (or "archive::member") to mono float32 at `sample_rate`."""
    try:
        if MEMBER_SEP in path:
            container, member = path.split(MEMBER_SEP, 1)
            if container.endswith(".cat"):
                offset, size, _ = _cat_index(container)[member]
                with open(container, "rb") as fh:
                    fh.seek(offset)
                    blob = fh.read(size)
            else:
                with zipfile.ZipFile(container) as zf:
                    blob = zf.read(member)
            suffix = ".wv" if blob[:4] == b"wvpk" else os.path.splitext(member)[1] or ".wav"
            fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="fdvad_member_")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                return load_audio(tmp, sample_rate)
            finally:
                os.unlink(tmp)
        if path.lower().endswith(".pat"):
            return _fade_concat([prepare_audio(x, r, sample_rate) for x, r in _read_gus_patch(path)], sample_rate)
        try:
            return load_audio(path, sample_rate)
        except AudioError:  # a few OGG files FFmpeg rejects are fine for libsndfile
            import soundfile as sf

            try:
                audio, rate = sf.read(path, dtype="float32", always_2d=True)
            except Exception:  # noqa: BLE001 - neither decoder reads it: the FFmpeg error says why
                raise
            return prepare_audio(audio, rate, sample_rate)
    except (AudioError, SourceError):
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise SourceError(f"{path}: cannot decode ({exc})") from exc


def _probe_duration(path: str) -> float | None:
    """Duration from the file header (libsndfile, then FFmpeg), without decoding; None if unknown."""
    if MEMBER_SEP in path or path.lower().endswith(".pat"):
        return None
    import soundfile as sf

    try:
        info = sf.info(path)
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - libsndfile does not read it; try FFmpeg
        pass
    try:
        from ..audio import audio_info

        return audio_info(path).duration_s
    except FdvadError:
        return None


class _Index:
    """Durations of package files, cached on disk by (path, size, mtime) so a rescan is fast."""

    VERSION = 2  # bump when decoding changes what is readable

    def __init__(self, cache_dir: Path):
        self.path = cache_dir / f"sources-index-v{self.VERSION}.json"
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def duration(self, path: str) -> float | None:
        container = path.split(MEMBER_SEP, 1)[0]
        try:
            st = os.stat(container)
        except OSError:
            return None
        key = f"{st.st_size}:{st.st_mtime_ns}"
        entry = self.data.get(path)
        if entry and entry[0] == key:
            return entry[1]
        duration = _probe_duration(path)
        if duration is None:
            try:
                duration = len(decode_source_file(path)) / SAMPLE_RATE
            except FdvadError:
                duration = None
        self.data[path] = [key, duration]
        self.dirty = True
        return duration

    def save(self) -> None:
        if self.dirty:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(self.path, json.dumps(self.data, sort_keys=True))
            except (OSError, FdvadError):
                pass  # a cache that cannot be saved is only slower next time


def package_sources(package: str, cache_dir: Path | None = None,
                    excluded: list[tuple[str, str]] | None = None) -> list[NoiseSource]:
    """Real recordings (or recorded music) of one installed package, without speech and too-short files.
    Excluded files are appended to `excluded` as (path, reason)."""
    pkg = SOURCE_PACKAGES[package]
    if pkg.kind == "soundfont":
        return []
    files = _audio_files(package)
    plain = [f for f in files if MEMBER_SEP not in f]
    common = os.path.commonpath([os.path.dirname(f) for f in plain]) if plain else ""
    index = _Index(cache_dir or default_cache_dir())
    out = []
    for path in files:
        reason = _excluded(package, path)
        duration = None if reason else index.duration(path)
        if not reason and duration is None:
            reason = "unreadable"
        elif not reason and duration < MIN_DURATION_S and package != "bucklespring-data":
            reason = f"shorter than {MIN_DURATION_S} s"
        if reason:
            if excluded is not None:
                excluded.append((path, reason))
            continue
        category = _category(package, path)
        licence = file_licence(package, path.split(MEMBER_SEP, 1)[0])
        if MEMBER_SEP in path and path.split(MEMBER_SEP, 1)[0].endswith(".cat"):
            licence = _cat_index(path.split(MEMBER_SEP, 1)[0])[path.split(MEMBER_SEP, 1)[1]][2] or licence
        out.append(NoiseSource(_source_name(package, path, common), "music" if category in MUSIC_CATEGORIES else "real",
                               category, package, licence, path,
                               round(duration, 3)))
    index.save()
    if package == "bucklespring-data" and out:
        # single key sounds are ~0.1 s: one source plays them as typing (see `typing`)
        total = sum(s.duration_s or 0 for s in out)
        directory = os.path.dirname(out[0].path)
        out = [NoiseSource("bucklespring-data:typing", "real", "keyboard", package, pkg.licence, directory,
                           round(total, 3))]
    return out


# ------------------------------------------------------------------------------------------ MIDI music


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: str | os.PathLike[str], notes: Iterable[tuple[float, float, int, int, int]],
               programs: dict[int, int], tempo_bpm: float = 120.0, ticks_per_beat: int = 480) -> None:
    """Write a format-0 Standard MIDI File.

    notes: (start_beat, length_beats, channel 0-15, key 0-127, velocity 1-127); programs: {channel: GM program}.
    """
    events: list[tuple[int, int, bytes]] = []  # (tick, order, bytes): note-offs before note-ons at one tick
    for channel, program in sorted(programs.items()):
        events.append((0, 0, bytes([0xC0 | channel, program & 0x7F])))
    for start, length, channel, key, velocity in notes:
        on = int(round(start * ticks_per_beat))
        off = max(on + 1, int(round((start + length) * ticks_per_beat)))
        events.append((on, 2, bytes([0x90 | channel, key & 0x7F, max(1, min(127, velocity))])))
        events.append((off, 1, bytes([0x80 | channel, key & 0x7F, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    tempo = int(round(60_000_000 / tempo_bpm))
    track = bytearray(b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big"))
    tick = 0
    for t, _, data in events:
        track += _vlq(t - tick) + data
        tick = t
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    Path(path).write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


_PROGRAMS = {  # GM programs (0-based) per role; no vocal programs
    "piano": [0, 1, 2, 3, 4, 5, 6, 7],
    "chromatic": [8, 9, 10, 11, 12, 13, 14, 15],
    "organ": [16, 17, 18, 19, 20, 21, 22, 23],
    "guitar": [24, 25, 26, 27, 28, 29, 30, 31],
    "bass": [32, 33, 34, 35, 36, 37, 38, 39],
    "strings": [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 55],
    "brass": [56, 57, 58, 59, 60, 61, 62, 63],
    "reed": [64, 65, 66, 67, 68, 69, 70, 71],
    "pipe": [72, 73, 74, 75, 76, 77, 78, 79],
    "lead": [80, 81, 82, 83, 84, 86, 87],
    "pad": [88, 89, 90, 92, 93, 94, 95],
    "ethnic": [104, 105, 106, 107, 108, 109, 110, 111],
}
_SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10], "dorian": [0, 2, 3, 5, 7, 9, 10],
           "pentatonic": [0, 2, 4, 7, 9]}
_PROGRESSIONS = ([0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 0], [5, 3, 0, 4], [0, 0, 3, 4], [1, 4, 0, 0], [0, 6, 5, 4])


def random_midi(seed: int, seconds: float = MIDI_SECONDS, style: str | None = None):
    """A random piece: (notes, programs, tempo_bpm, style) for `write_midi`."""
    rng = np.random.default_rng(seed)
    style = style or MIDI_STYLES[seed % len(MIDI_STYLES)]
    tempo = float(rng.uniform(60, 170) if style not in ("strings", "organ") else rng.uniform(50, 110))
    n_beats = int(np.ceil(seconds * tempo / 60.0))
    scale = _SCALES[rng.choice(list(_SCALES))]
    root = int(rng.integers(48, 60))
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    beats_per_chord = int(rng.choice([2, 4, 4, 8]))

    def pick(role: str) -> int:
        return int(rng.choice(_PROGRAMS[role]))

    roles = {"piano": {"chords": pick("piano"), "melody": pick("piano")},
             "band": {"chords": pick(str(rng.choice(["guitar", "piano", "organ"]))), "bass": pick("bass"),
                      "melody": pick(str(rng.choice(["lead", "guitar", "reed", "brass", "pipe"]))), "drums": 0},
             "strings": {"chords": pick("strings"), "bass": 42, "melody": pick(str(rng.choice(["strings", "pipe",
                                                                                             "brass"])))},
             "organ": {"chords": pick("organ"), "melody": pick("organ")},
             "electronic": {"chords": pick("pad"), "bass": int(rng.choice([38, 39])), "melody": pick("lead"),
                            "drums": 0},
             "jazz": {"chords": pick(str(rng.choice(["piano", "guitar"]))), "bass": 32,
                      "melody": pick(str(rng.choice(["reed", "brass", "chromatic"]))), "drums": 0},
             "guitar": {"chords": pick("guitar"), "melody": pick(str(rng.choice(["guitar", "ethnic"])))},
             "percussion": {"melody": pick("chromatic"), "drums": 0},
             }[style]
    assert not VOCAL_PROGRAMS & set(roles.values())
    channels = {"chords": 0, "melody": 1, "bass": 2, "drums": 9}
    programs = {channels[r]: p for r, p in roles.items() if r != "drums"}
    notes: list[tuple[float, float, int, int, int]] = []

    def degree(d: int, octave: int = 0) -> int:
        return root + 12 * (octave + d // len(scale)) + scale[d % len(scale)]

    for bar_start in range(0, n_beats, beats_per_chord):
        chord = progression[(bar_start // beats_per_chord) % len(progression)]
        length = min(beats_per_chord, n_beats - bar_start)
        if "chords" in roles:
            pattern = rng.choice(["block", "arpeggio", "pulse"])
            tones = [degree(chord + k) for k in (0, 2, 4)]
            if pattern == "block":
                notes += [(bar_start, length * 0.95, 0, k, int(rng.integers(50, 85))) for k in tones]
            elif pattern == "pulse":
                for b in range(length):
                    notes += [(bar_start + b, 0.45, 0, k, int(rng.integers(45, 80))) for k in tones]
            else:
                for i in range(length * 2):
                    key = tones[i % 3] + 12 * (i // 3 % 2)
                    notes.append((bar_start + i / 2, 0.5, 0, key, int(rng.integers(45, 80))))
        if "bass" in roles:
            for b in range(length):
                walk = 0 if b % 2 == 0 or style != "jazz" else int(rng.integers(1, 5))  # jazz: walking bass
                key = degree(chord + walk, -1)
                notes.append((bar_start + b, 0.9, 2, key, int(rng.integers(60, 95))))
        if "melody" in roles:
            t, d = float(bar_start), chord + 7
            while t < bar_start + length:
                dur = float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
                if rng.random() < 0.85:
                    d = int(np.clip(d + rng.integers(-2, 3), 0, 3 * len(scale)))
                    notes.append((t, dur * 0.9, 1, degree(d), int(rng.integers(55, 110))))
                t += dur
        if "drums" in roles:
            for b in range(length):
                beat = bar_start + b
                notes.append((beat, 0.1, 9, 36 if b % 2 == 0 else 38, int(rng.integers(70, 120))))
                hat = 42 if rng.random() < 0.8 else 46
                notes += [(beat + h, 0.1, 9, hat, int(rng.integers(40, 90))) for h in (0.0, 0.5)]
                if rng.random() < 0.1:
                    notes.append((beat, 0.5, 9, int(rng.choice([49, 51, 45, 47, 50])), int(rng.integers(60, 110))))
    return notes, programs, tempo, style


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None


def find_soundfonts() -> dict[str, str]:
    """{package: soundfont path} of the installed General MIDI soundfont packages."""
    out = {}
    for name, pkg in sorted(SOURCE_PACKAGES.items()):
        if pkg.kind != "soundfont":
            continue
        fonts = sorted(p for p in _dpkg_list(name) if p.lower().endswith((".sf2", ".sf3")) and os.path.isfile(p)
                       and not os.path.islink(p))
        if fonts:
            out[name] = fonts[0]
    return out


def _soundfont_path(soundfont: str) -> str:
    if os.path.isfile(soundfont):
        return soundfont
    fonts = find_soundfonts()
    if soundfont in fonts:
        return fonts[soundfont]
    raise SourceError(f"soundfont {soundfont!r} not found; install one: apt-get install fluid-soundfont-gm "
                      "timgm6mb-soundfont musescore-general-soundfont-small")


def render_midi_file(midi_path: str, soundfont: str, wav_path: str, sample_rate: int = SAMPLE_RATE) -> None:
    """Render a MIDI file with the fluidsynth command-line player into `wav_path`."""
    if not fluidsynth_available():
        raise SourceError("fluidsynth is not installed: apt-get install fluidsynth")
    cmd = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", wav_path,
           _soundfont_path(soundfont), midi_path]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not os.path.exists(wav_path) or os.path.getsize(wav_path) <= 44:
        raise SourceError(f"fluidsynth failed on {midi_path}: {(proc.stderr or proc.stdout).strip()[-300:]}")


def music_cache_path(seed: int, seconds: float, soundfont: str,
                     cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the render of piece `seed` through `soundfont` (package name or file) is cached."""
    key = Path(soundfont).stem if os.path.sep in soundfont else soundfont
    return Path(cache_dir or default_cache_dir() / "music") / f"{key}-{seed:05d}-{int(seconds)}s.wav"


def _render_piece(target: Path, seed: int, seconds: float, soundfont: str) -> None:
    """Render `random_midi(seed, seconds)` through `soundfont` into the 16 kHz WAV `target` (atomically)."""
    import soundfile as sf

    target.parent.mkdir(parents=True, exist_ok=True)
    notes, programs, tempo, _ = random_midi(seed, seconds)
    with tempfile.TemporaryDirectory(prefix="fdvad_midi_") as tmp:
        mid, wav = os.path.join(tmp, "piece.mid"), os.path.join(tmp, "piece.wav")
        write_midi(mid, notes, programs, tempo)
        render_midi_file(mid, soundfont, wav, SAMPLE_RATE)
        audio = load_audio(wav, SAMPLE_RATE)[: int(seconds * SAMPLE_RATE)]
    atomic_write(target, lambda tmp: sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16"))


def render_midi_music(seed: int, seconds: float = MIDI_SECONDS, soundfont: str = "fluid-soundfont-gm",
                      cache_dir: str | os.PathLike[str] | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Music from a random MIDI piece (`random_midi(seed)`) rendered through a GM soundfont (a package
    name from `find_soundfonts()` or a .sf2/.sf3 path). The render is cached as a 16 kHz WAV under
    `cache_dir` (default ~/.cache/fdvad/music), so each piece is rendered once. Returns float32 at unit RMS."""
    target = music_cache_path(seed, seconds, soundfont, cache_dir)
    if not target.exists():
        _render_piece(target, seed, seconds, soundfont)
    return unit_rms(load_audio(target, sample_rate))


def midi_sources(cache_dir: str | os.PathLike[str] | None = None,
                 pieces_per_soundfont: int = MIDI_PIECES_PER_SOUNDFONT) -> list[NoiseSource]:
    """One source per (soundfont, piece); rendered on first use (or by `render_all_music`)."""
    if not fluidsynth_available():
        return []
    out = []
    music_dir = Path(cache_dir) if cache_dir else default_cache_dir() / "music"
    for package, font in find_soundfonts().items():
        for seed in range(pieces_per_soundfont):
            style = MIDI_STYLES[seed % len(MIDI_STYLES)]
            path = music_cache_path(seed, MIDI_SECONDS, package, music_dir)
            out.append(NoiseSource(f"midi:{package}:{style}-{seed:03d}", "music", f"midi-{style}", package,
                                   file_licence(package, font), str(path), MIDI_SECONDS))
    return out


def render_all_music(cache_dir: str | os.PathLike[str] | None = None,
                     pieces_per_soundfont: int = MIDI_PIECES_PER_SOUNDFONT) -> int:
    """Render every MIDI source not yet in the cache; returns how many were rendered."""
    n = 0
    for source in midi_sources(cache_dir, pieces_per_soundfont):
        if not os.path.exists(source.path):
            _ensure_rendered(source)
            n += 1
    return n


def _ensure_rendered(source: NoiseSource) -> None:
    path = Path(source.path)
    if path.exists():
        return
    _render_piece(path, int(source.name.rsplit("-", 1)[1]), MIDI_SECONDS, source.package)


# --------------------------------------------------------------------------------- human non-speech


def _shaped_noise(n: int, rng: np.random.Generator, sample_rate: int,
                  bands: Sequence[tuple[float, float, float]], tilt: float = 0.0) -> np.ndarray:
    """White noise through a sum of Gaussian resonances (centre Hz, bandwidth Hz, gain) and a spectral tilt
    (dB per octave above 500 Hz), by FFT."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gain = np.zeros_like(f)
    for centre, width, g in bands:
        gain += g * np.exp(-0.5 * ((f - centre) / width) ** 2)
    gain *= 10 ** (tilt * np.log2(np.maximum(f, 50.0) / 500.0) / 20.0)
    return np.fft.irfft(spec * gain, n)


def _envelope(n: int, attack: float, release: float, sample_rate: int, shape: float = 2.0) -> np.ndarray:
    """Rise over `attack` s, fall over `release` s (raised-cosine to the power `shape`), flat between."""
    a, r = max(1, int(attack * sample_rate)), max(1, int(release * sample_rate))
    env = np.ones(n)
    a, r = min(a, n), min(r, n)
    env[:a] = np.sin(0.5 * np.pi * np.arange(a) / a) ** shape
    env[n - r:] *= np.cos(0.5 * np.pi * np.arange(r) / r) ** shape
    return env


def human_sound(kind: str, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One human non-speech event (label: non-speech), float32 at unit peak, 0.02-1.6 s long.

    All are *unvoiced* (shaped noise, no glottal pitch): breaths in and out, lip smacks, tongue clicks,
    coughs, breathy laughter ("h-h-h" bursts at 4-6 Hz), sniffs and throat clears (noise with a rough
    30-70 Hz amplitude flutter). Voiced laughter ("ha ha") and voiced throat clears are deliberately left
    out: they contain vowels with pitch and formants, and labelling those non-speech would teach the model
    to miss short voiced words ("ah", "oh", "ha"). Real annotators also disagree on voiced laughter.
    """
    sr = sample_rate
    if kind in ("breath_in", "breath_out"):
        dur = rng.uniform(0.35, 0.9) if kind == "breath_in" else rng.uniform(0.4, 1.2)
        n = int(dur * sr)
        # inhale: brighter, faster rise; exhale: darker, slower fall; broad vocal-tract resonances
        f1 = rng.uniform(500, 900)
        bands = [(f1, rng.uniform(200, 400), 1.0), (rng.uniform(1200, 2000), 400, rng.uniform(0.4, 0.9)),
                 (rng.uniform(2500, 3800), 700, rng.uniform(0.3, 0.8) if kind == "breath_in" else 0.25)]
        x = _shaped_noise(n, rng, sr, bands, tilt=-2.0 if kind == "breath_in" else -4.0)
        attack = rng.uniform(0.35, 0.6) if kind == "breath_in" else rng.uniform(0.12, 0.3)
        x *= _envelope(n, attack * dur, (1.0 - attack) * dur, sr, shape=1.5)  # swells and fades, no plateau
        x *= 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(3, 8) * np.arange(n) / sr + rng.uniform(0, 6.3))
    elif kind == "lip_smack":
        n = int(rng.uniform(0.04, 0.15) * sr)
        x = np.zeros(n)
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.uniform(0.003, 0.012) * sr)
            at = int(rng.integers(0, max(1, n - k)))
            burst = _shaped_noise(k, rng, sr, [(rng.uniform(1500, 4000), 1500, 1.0), (400, 200, 0.4)])
            x[at:at + k] += burst * np.exp(-np.arange(k) / (k / rng.uniform(3, 6))) * rng.uniform(0.4, 1.0)
    elif kind == "tongue_click":
        n = int(rng.uniform(0.02, 0.06) * sr)
        k = int(rng.uniform(0.004, 0.01) * sr)
        x = np.zeros(n)
        burst = _shaped_noise(k, rng, sr, [(rng.uniform(1000, 2500), 500, 1.0)])
        x[:k] = burst * np.exp(-np.arange(k) / (k / 4))
    elif kind == "cough":
        parts = []
        for i in range(int(rng.integers(1, 4))):
            dur = rng.uniform(0.15, 0.4)
            n = int(dur * sr)
            bands = [(rng.uniform(300, 700), 200, 1.0), (rng.uniform(1000, 1800), 350, 0.8),
                     (rng.uniform(2200, 3200), 500, 0.5)]
            burst = _shaped_noise(n, rng, sr, bands, tilt=-3.0)
            t = np.arange(n) / sr
            env = np.minimum(1.0, t / rng.uniform(0.002, 0.008)) * np.exp(-t / rng.uniform(0.05, 0.12))
            parts.append(burst * env * (0.8 ** i))
            parts.append(np.zeros(int(rng.uniform(0.05, 0.25) * sr)))
        x = np.concatenate(parts[:-1])
    elif kind == "laughter":
        rate = rng.uniform(4.0, 6.0)
        n_bursts = int(rng.integers(3, 7))
        period = int(sr / rate)
        n = period * n_bursts + int(0.1 * sr)
        bands = [(rng.uniform(600, 1000), 300, 1.0), (rng.uniform(1400, 2200), 400, 0.6), (3000, 800, 0.3)]
        x = _shaped_noise(n, rng, sr, bands, tilt=-2.0)
        t = np.arange(n)
        gate = np.zeros(n)
        for b in range(n_bursts):
            k = int(period * rng.uniform(0.45, 0.7))
            gate[b * period: b * period + k] = _envelope(k, 0.15 * k / sr, 0.5 * k / sr, sr) * (0.85 ** b)
        x *= gate * (1 + 0 * t)
    elif kind == "sniff":
        parts = []
        for _ in range(int(rng.integers(1, 3))):
            n = int(rng.uniform(0.12, 0.35) * sr)
            burst = _shaped_noise(n, rng, sr, [(rng.uniform(2500, 5000), 1500, 1.0), (1200, 500, 0.3)], tilt=2.0)
            parts += [burst * _envelope(n, 0.03, 0.4 * n / sr, sr), np.zeros(int(rng.uniform(0.05, 0.15) * sr))]
        x = np.concatenate(parts[:-1])
    elif kind == "throat_clear":
        n = int(rng.uniform(0.25, 0.6) * sr)
        x = _shaped_noise(n, rng, sr, [(rng.uniform(250, 500), 150, 1.0), (rng.uniform(900, 1500), 300, 0.5)])
        t = np.arange(n) / sr
        flutter = 0.5 + 0.5 * np.abs(np.sin(np.pi * rng.uniform(30, 70) * t + rng.uniform(0, 3)))
        flutter += 0.3 * rng.standard_normal(n).cumsum() / np.sqrt(n)  # irregular, not periodic
        x *= np.clip(flutter, 0, None) * _envelope(n, 0.05, 0.3 * n / sr, sr)
    else:
        raise ConfigError(f"unknown human sound {kind!r}; known: {', '.join(HUMAN_KINDS)}")
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32)


def human_sequence(kind: str, n_samples: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE,
                   floor_db: float = -60.0) -> np.ndarray:
    """Events of one human kind at a natural rate (breaths every 2-5 s, others 0.3-3 s apart) over
    `n_samples`, on a faint noise floor, at unit RMS."""
    x = rng.standard_normal(n_samples) * 10 ** (floor_db / 20)
    pos = int(rng.uniform(0, 0.5) * sample_rate)
    while pos < n_samples:
        event = human_sound(kind, rng, sample_rate) * rng.uniform(0.5, 1.0)
        end = min(n_samples, pos + len(event))
        x[pos:end] += event[: end - pos]
        gap = rng.uniform(1.5, 4.5) if kind.startswith("breath") else rng.uniform(0.3, 3.0)
        pos = end + int(gap * sample_rate)
    return unit_rms(x)


# ------------------------------------------------------------------------------------------------ babble

BABBLE_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "cs", "sv", "tr", "hi", "cmn",
                    "ja", "ar", "fi", "el", "hu", "id")
_BABBLE_POOL_SIZE = 48
_pool_lock = threading.Lock()


def _babble_pool(sample_rate: int, cache_dir: Path | None = None) -> list[np.ndarray]:
    """Clean espeak-ng utterances in many languages and voices, made once and cached on disk."""
    from .scenes import TEST_VARIANTS
    from .texts import SENTENCES, pseudo_sentence
    from .tts import VARIANTS, EspeakVoice, espeak_available, synthesize

    with _pool_lock:
        key = (sample_rate, str(cache_dir))
        if key in _POOLS:
            return _POOLS[key]
        path = (cache_dir or default_cache_dir()) / f"babble-pool-{_BABBLE_POOL_SIZE}-{sample_rate}.npz"
        if path.exists():
            with np.load(path) as z:
                pool = [z[k] for k in sorted(z.files)]
        else:
            if not espeak_available():
                raise SourceError("babble needs espeak-ng: apt-get install espeak-ng")
            import random

            r = random.Random(1234)
            variants = [v for v in VARIANTS if v not in TEST_VARIANTS and not v.startswith("whisper")]
            languages = [lang for lang in BABBLE_LANGUAGES if lang in SENTENCES] or sorted(SENTENCES)
            pool = []
            for i in range(_BABBLE_POOL_SIZE):
                lang = languages[i % len(languages)]
                text = " ".join(pseudo_sentence(lang, r) for _ in range(3))
                voice = EspeakVoice(language=lang, variant=r.choice(variants), rate_wpm=r.randint(140, 220),
                                    pitch=r.randint(20, 80))
                try:
                    pool.append(synthesize(text, voice, sample_rate))
                except FdvadError:
                    continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, lambda tmp: np.savez(tmp, **{f"u{i:03d}": u for i, u in enumerate(pool)}))
            except (OSError, FdvadError):
                pass
        _POOLS[key] = pool
        return pool


_POOLS: dict[tuple[int, str], list[np.ndarray]] = {}


def _lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int, order: float = 2.0) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    return np.fft.irfft(spec / np.sqrt(1 + (f / cutoff_hz) ** (2 * order)), len(x))


def babble(n_samples: int, rng: np.random.Generator, n_voices: int | tuple[int, int] = (6, 20),
           sample_rate: int = SAMPLE_RATE, cache_dir: Path | None = None) -> np.ndarray:
    """Distant multi-talker babble: `n_voices` (or a random number in the range) overlapping espeak-ng
    talkers in different languages and voices, each talking continuously with short pauses at its own
    level, summed, low-passed (2-4 kHz) and smeared by a short diffuse tail, at unit RMS.

    Meant as a background far below the foreground; see `BABBLE_DEFAULT` for how it is labelled.
    """
    pool = _babble_pool(sample_rate, cache_dir)
    if not pool:
        raise SourceError("babble: espeak-ng produced no utterances")
    if not isinstance(n_voices, int):
        n_voices = int(rng.integers(n_voices[0], n_voices[1] + 1))
    mix = np.zeros(n_samples)
    for _ in range(n_voices):
        track = np.zeros(n_samples + sample_rate)
        pos = -int(rng.integers(0, 2 * sample_rate))  # talkers are mid-sentence at the start
        while pos < n_samples:
            utt = pool[int(rng.integers(len(pool)))]
            a, b = max(0, pos), min(len(track), pos + len(utt))
            if b > a:
                track[a:b] += utt[a - pos: b - pos]
            pos += len(utt) + int(rng.uniform(0.05, 0.6) * sample_rate)
        mix += unit_rms(track[:n_samples]) * 10 ** (rng.uniform(-6, 3) / 20)
    mix = _lowpass(mix, rng.uniform(2000, 4000), sample_rate)
    tail = int(rng.uniform(0.05, 0.25) * sample_rate)
    ir = rng.standard_normal(tail) * np.exp(-np.arange(tail) / (tail / 5))
    ir[0] = 1.0 / rng.uniform(0.2, 0.6)  # direct part weaker than the diffuse part: far away
    wet = np.fft.irfft(np.fft.rfft(mix, n_samples + tail) * np.fft.rfft(ir, n_samples + tail), n_samples + tail)
    return unit_rms(wet[:n_samples])


# ------------------------------------------------------------------------------------------- listing


def list_sources(kinds: Iterable[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 excluded: list[tuple[str, str]] | None = None) -> list[NoiseSource]:
    """Every non-speech source available on this machine, sorted by name.

    real: package recordings (speech, vocals, unreadable and < 0.2 s files left out; those go to
    `excluded` as (path, reason)); music: recorded game music and MIDI pieces rendered through each
    installed GM soundfont (rendered on first use); generated: the kinds of `fdvad.data.noise`;
    human: synthesised breaths, lip smacks, coughs, ...; babble: distant many-voice espeak-ng babble
    (only when espeak-ng is installed).
    """
    wanted = set(KINDS if kinds is None else kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ConfigError(f"unknown source kind(s) {sorted(unknown)}; known: {', '.join(KINDS)}")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    out: list[NoiseSource] = []
    if wanted & {"real", "music"}:
        for name in SOURCE_PACKAGES:
            if SOURCE_PACKAGES[name].kind != "soundfont" and package_installed(name):
                out += package_sources(name, cache, excluded)
    if "music" in wanted:
        out += midi_sources(cache / "music")
    if "generated" in wanted:
        out += [NoiseSource(f"fdvad:{k}", "generated", GENERATED_CATEGORIES.get(k, k), "fdvad", "Apache-2.0")
                for k in NOISE_KINDS]
    if "human" in wanted:
        out += [NoiseSource(f"fdvad:human-{k}", "human", HUMAN_CATEGORIES[k], "fdvad", "Apache-2.0")
                for k in HUMAN_KINDS]
    if "babble" in wanted and shutil.which("espeak-ng"):
        out += [NoiseSource("fdvad:babble", "babble", "babble", "espeak-ng", "GPL-3+"),
                NoiseSource("fdvad:babble-party", "babble", "babble-music", "espeak-ng", "GPL-3+")]
    out = [s for s in out if s.kind in wanted]
    return sorted(out, key=lambda s: s.name)


# ---------------------------------------------------------------------------------------- excerpts


class _LRU:
    """Decoded files, at most `max_bytes` in memory."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self.items: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: str, sample_rate: int) -> np.ndarray:
        key = (path, sample_rate)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        audio = decode_source_file(path, sample_rate)
        with self.lock:
            self.items[key] = audio
            while len(self.items) > 1 and sum(a.nbytes for a in self.items.values()) > self.max_bytes:
                self.items.popitem(last=False)
        return audio


_CACHE = _LRU()


def _crossfade_loop(audio: np.ndarray, n: int, rng: np.random.Generator, sample_rate: int,
                    gaps: bool) -> np.ndarray:
    """`audio` repeated to `n` samples with short crossfades; short one-shot sounds get random silent gaps
    between repetitions (a doorbell rings, then the room is quiet)."""
    fade = min(int(0.02 * sample_rate), len(audio) // 4)
    out = np.zeros(n + len(audio) + 2 * sample_rate, dtype=np.float64)
    ramp = np.linspace(0.0, 1.0, fade) if fade else np.zeros(0)
    piece = audio.astype(np.float64).copy()
    if fade:
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
    pos = -int(rng.integers(0, len(audio)))  # start anywhere in the first repetition
    while pos < n:
        a = max(0, pos)
        out[a: pos + len(piece)] += piece[a - pos:]
        step = len(piece) - fade
        if gaps:
            step += int(rng.uniform(0.0, 1.0) * max(len(piece), sample_rate // 2)) + fade
        pos += max(1, step)
    return out[:n]


def _typing(directory: str, n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Typing on a recorded keyboard: key press then release sounds at human typing rhythm."""
    files = sorted(f for f in os.listdir(directory) if f.endswith(".wav"))
    presses = [f for f in files if f.endswith("-0.wav")] or files
    x = np.zeros(n + sample_rate)
    pos = int(rng.uniform(0, 0.3) * sample_rate)
    while pos < n:
        press = rng.choice(presses)
        down = _CACHE.get(os.path.join(directory, press), sample_rate)
        x[pos: pos + len(down)] += down[: len(x) - pos]
        release = os.path.join(directory, press.replace("-0.wav", "-1.wav"))
        if os.path.exists(release):
            up = _CACHE.get(release, sample_rate)
            at = pos + int(rng.uniform(0.06, 0.14) * sample_rate)
            if at < len(x):
                x[at: at + len(up)] += up[: len(x) - at]
        pause = rng.uniform(0.08, 0.25) if rng.random() < 0.9 else rng.uniform(0.4, 1.5)
        pos += int(pause * sample_rate)
    return x[:n]


LONG_FILE_S = 30.0


def _read_window(path: str, n_samples: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray | None:
    """A random window of `n_samples` (at `sample_rate`) read by seeking with libsndfile; None when the file
    is too short or libsndfile cannot seek in it."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as fh:
            need = int(np.ceil(n_samples * fh.samplerate / sample_rate)) + 64
            if not fh.seekable() or fh.frames <= need:
                return None
            fh.seek(int(rng.integers(0, fh.frames - need + 1)))
            data = fh.read(need, dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - not readable this way: decode the whole file instead
        return None
    x = prepare_audio(data, fh.samplerate, sample_rate)
    return x[:n_samples] if len(x) >= n_samples else None


def load_excerpt(source: NoiseSource, n_samples: int, rng: np.random.Generator,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A random `n_samples` excerpt of `source` at unit RMS (float32), the same for the same rng state.

    Files longer than the excerpt give a random window (re-drawn up to 8 times if it is nearly silent; files
    over 30 s are read by seeking, not decoded whole);
    shorter ones are looped with 20 ms crossfades (one-shot sounds under 2 s with random silent gaps).
    Decoded files are kept in a small LRU cache (256 MB).
    """
    if n_samples <= 0:
        raise ConfigError(f"n_samples must be positive, got {n_samples}")
    if source.kind == "generated":
        kind = source.name.split(":", 1)[1]
        return make_noise(kind, n_samples, rng, sample_rate)
    if source.kind == "human":
        return human_sequence(source.name.split("human-", 1)[1], n_samples, rng, sample_rate)
    if source.kind == "babble":
        x = babble(n_samples, rng, sample_rate=sample_rate)
        if source.category == "babble-music":
            x = x + 10 ** (rng.uniform(-12, 0) / 20) * make_noise("music", n_samples, rng, sample_rate)
            x += 0.3 * make_noise("pink", n_samples, rng, sample_rate)
        return unit_rms(x)
    if source.path is None:
        raise SourceError(f"source {source.name} has no file")
    if source.package == "bucklespring-data" and os.path.isdir(source.path):
        return unit_rms(_typing(source.path, n_samples, rng, sample_rate))
    if source.name.startswith("midi:"):
        _ensure_rendered(source)
    if (source.duration_s or 0) > LONG_FILE_S and MEMBER_SEP not in source.path:
        best, best_rms = None, -1.0
        for _ in range(8):  # long tracks: read only a window (a 28-minute OGG decodes in 5 s, a window in 10 ms)
            piece = _read_window(source.path, n_samples, rng, sample_rate)
            if piece is None:
                break
            rms = float(np.sqrt(np.mean(piece.astype(np.float64) ** 2)))
            if rms > best_rms:
                best, best_rms = piece, rms
            if rms > 1e-3:
                return unit_rms(piece)
        if best is not None:
            return unit_rms(best)
    audio = _CACHE.get(source.path, sample_rate)
    if len(audio) == 0:
        raise SourceError(f"{source.path}: no samples")
    if len(audio) <= n_samples:
        gaps = len(audio) < 2 * sample_rate and source.kind == "real" and source.category not in ("ambient", "noise")
        return unit_rms(_crossfade_loop(audio, n_samples, rng, sample_rate, gaps))
    whole_rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    best, best_rms = None, -1.0
    for _ in range(8):
        start = int(rng.integers(0, len(audio) - n_samples + 1))
        piece = audio[start: start + n_samples]
        rms = float(np.sqrt(np.mean(piece.astype(np.float64) ** 2)))
        if rms > best_rms:
            best, best_rms = piece, rms
        if rms >= 0.1 * whole_rms:
            break
    return unit_rms(best)


def summarize(sources: Sequence[NoiseSource]) -> list[dict]:
    """Per (kind, package): number of sources and minutes of audio (None for generated sources)."""
    rows: dict[tuple[str, str], dict] = {}
    for s in sources:
        row = rows.setdefault((s.kind, s.package), {"kind": s.kind, "package": s.package, "licence": s.licence,
                                                     "sources": 0, "minutes": 0.0, "categories": set()})
        row["sources"] += 1
        row["minutes"] += (s.duration_s or 0.0) / 60.0
        row["categories"].add(s.category)
        if row["licence"] != s.licence:
            row["licence"] = "mixed (per file)"
    return [dict(r, categories=sorted(r["categories"]), minutes=round(r["minutes"], 1))
            for _, r in sorted(rows.items())]


# ------------------------------------------------------------------------------ survey (command line)


def speech_survey(sources: Sequence[NoiseSource], threshold: float = 0.5,
                  max_seconds: float = 600.0) -> list[dict]:
    """Silero VAD (the optional `silero-vad` package) over each file source: the fraction of its 32 ms
    frames above `threshold` and the longest run of such frames in seconds. Used to find files with
    voices that the exclusion patterns must cover; music and sharp effects often score a little."""
    try:
        import torch
        from silero_vad import load_silero_vad
    except ImportError as exc:
        raise SourceError("the speech survey needs silero-vad: pip install 'fdvad[compare]'") from exc
    model = load_silero_vad(onnx=True)
    rows = []
    for s in sources:
        if s.path is None or not (os.path.isfile(s.path.split(MEMBER_SEP, 1)[0])):
            continue
        try:
            audio = decode_source_file(s.path, 16000)[: int(max_seconds * 16000)]
        except FdvadError as exc:
            rows.append({"name": s.name, "path": s.path, "speech_fraction": float("nan"), "longest_speech_s": 0.0,
                         "error": str(exc)})
            continue
        audio = audio / max(1e-3, float(np.max(np.abs(audio))))  # level-independent
        n = len(audio) // 512 * 512
        if n == 0:
            continue
        model.reset_states()
        probs = model.audio_forward(torch.from_numpy(audio[:n].copy()), 16000).numpy().ravel()
        active = probs > threshold
        longest = run = 0
        for a in active:
            run = run + 1 if a else 0
            longest = max(longest, run)
        rows.append({"name": s.name, "path": s.path, "speech_fraction": round(float(active.mean()), 3),
                     "longest_speech_s": round(longest * 0.032, 2)})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """python -m fdvad.data.sources [--kinds real music ...] [--excluded] [--survey] [--json]"""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m fdvad.data.sources", description=main.__doc__)
    ap.add_argument("--kinds", nargs="*", default=None, help=f"subset of {KINDS}")
    ap.add_argument("--excluded", action="store_true", help="list the files left out and why")
    ap.add_argument("--survey", action="store_true", help="Silero VAD speech fraction of each kept file")
    ap.add_argument("--render", action="store_true", help="render all MIDI music into the cache first")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.render:
        print(f"rendered {render_all_music()} MIDI pieces")
    excluded: list[tuple[str, str]] = []
    sources = list_sources(args.kinds, excluded=excluded)
    rows = summarize(sources)
    if args.json:
        print(json.dumps({"summary": rows, "excluded": excluded}, indent=1))
    else:
        print(f"{'kind':10} {'package':36} {'files':>6} {'minutes':>8}  licence / categories")
        for r in rows:
            print(f"{r['kind']:10} {r['package']:36} {r['sources']:6d} {r['minutes']:8.1f}  {r['licence']}"
                  f" / {','.join(r['categories'])}")
        by_kind: dict[str, list[float]] = {}
        for s in sources:
            by_kind.setdefault(s.kind, [0, 0.0])
            by_kind[s.kind][0] += 1
            by_kind[s.kind][1] += (s.duration_s or 0) / 60
        for kind, (n, minutes) in sorted(by_kind.items()):
            print(f"total {kind:10} {int(n):5d} sources {minutes:8.1f} min")
        if args.excluded:
            for path, reason in excluded:
                print(f"excluded: {path}  ({reason})")
    if args.survey:
        files = [s for s in sources if s.path and s.kind in ("real", "music") and not s.name.startswith("midi:")
                 and os.path.isfile(s.path.split(MEMBER_SEP, 1)[0])]
        for row in sorted(speech_survey(files), key=lambda r: -r["speech_fraction"]):
            print(f"survey: {row['speech_fraction']:6.3f} {row['longest_speech_s']:6.2f}s  {row['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
