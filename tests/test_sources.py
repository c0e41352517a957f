"""Non-speech sources: package scanning without speech files, excerpts at unit RMS, the MIDI writer and
fluidsynth rendering, synthesised human non-speech sounds, and many-voice babble."""

import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from fdvad.data import sources as S
from fdvad.errors import ConfigError

CORE_SFX = ("oxygen-sounds", "sound-theme-freedesktop", "openttd-opensfx", "sonic-pi-samples", "freepats")


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    excluded = []
    cache = tmp_path_factory.mktemp("sources-cache")
    return S.list_sources(cache_dir=cache, excluded=excluded), excluded


def _installed(*packages):
    return [p for p in packages if S.package_installed(p)]


def _rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def test_sources_are_well_formed_and_sorted(listed):
    sources, _ = listed
    names = [s.name for s in sources]
    assert names == sorted(names) and len(set(names)) == len(names)
    for s in sources:
        assert s.kind in S.KINDS and s.category and s.package and s.licence
        if s.kind in ("generated", "human", "babble"):
            assert s.path is None
        else:
            assert s.path and s.duration_s and s.duration_s > 0
    kinds = {s.kind for s in sources}
    assert {"generated", "human"} <= kinds
    assert len([s for s in sources if s.kind == "human"]) == len(S.HUMAN_KINDS)


def test_every_available_kind_is_found(listed):
    sources, _ = listed
    kinds = {s.kind for s in sources}
    if _installed(*[p for p, v in S.SOURCE_PACKAGES.items() if v.kind == "real"]):
        assert "real" in kinds
    if _installed(*[p for p, v in S.SOURCE_PACKAGES.items() if v.kind == "music"]) or (
            S.fluidsynth_available() and S.find_soundfonts()):
        assert "music" in kinds
    if shutil.which("espeak-ng"):
        assert "babble" in kinds
    missing = [p for p in CORE_SFX if not S.package_installed(p)]
    if missing == list(CORE_SFX):
        pytest.skip(f"no real-sound package installed ({', '.join(CORE_SFX)}): {S.install_hint()}")
    assert len([s for s in sources if s.kind == "real"]) >= 10


def test_spoken_files_are_excluded(listed):
    sources, excluded = listed
    for s in sources:
        text = f"{s.name} {s.path}".lower()
        assert "audio-channel" not in text
        assert not any(f"/sounds/alsa/{c}" in text for c in ("front_", "rear_", "side_"))
        assert not any(word in text for word in ("choir", "voice", "speech", "eagle_has_landed", "dammit"))
    if not S.package_installed("sound-theme-freedesktop"):
        pytest.skip("sound-theme-freedesktop is not installed")
    spoken = [p for p, reason in excluded if "audio-channel" in p]
    assert len(spoken) == 8 and all("voice" in r for p, r in excluded if "audio-channel" in p)
    assert any(s.package == "sound-theme-freedesktop" for s in sources)  # its bells and alarms are kept


def test_per_file_licences_from_the_copyright_file():
    if not S.package_installed("sound-theme-freedesktop"):
        pytest.skip("sound-theme-freedesktop is not installed")
    assert S.file_licence("sound-theme-freedesktop", "/usr/share/sounds/freedesktop/stereo/bell.oga") == "CC-BY-3.0"
    assert S.file_licence("sound-theme-freedesktop",
                          "/usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga") == "GPL-2+"


def test_load_excerpt_length_unit_rms_and_determinism(listed):
    sources, _ = listed
    files = [s for s in sources if s.kind == "real" and s.path and s.package != "bucklespring-data"]
    if not files:
        pytest.skip(f"no real-sound package installed: {S.install_hint()}")
    short = min(files, key=lambda s: s.duration_s)
    long = max(files, key=lambda s: s.duration_s)
    n = 16000 * 3
    for source in (short, long):
        a = S.load_excerpt(source, n, np.random.default_rng(7))
        b = S.load_excerpt(source, n, np.random.default_rng(7))
        assert a.dtype == np.float32 and a.shape == (n,) and np.isfinite(a).all()
        assert abs(_rms(a) - 1.0) < 1e-3
        np.testing.assert_array_equal(a, b)
    if long.duration_s > 10:
        c = S.load_excerpt(long, n, np.random.default_rng(8))
        assert not np.array_equal(c, S.load_excerpt(long, n, np.random.default_rng(7)))


@pytest.mark.parametrize("kind", ["generated", "human"])
def test_load_excerpt_of_made_sources(listed, kind):
    sources, _ = listed
    for source in [s for s in sources if s.kind == kind]:
        x = S.load_excerpt(source, 8000, np.random.default_rng(1))
        assert x.shape == (8000,) and np.isfinite(x).all() and abs(_rms(x) - 1.0) < 1e-3
        np.testing.assert_array_equal(x, S.load_excerpt(source, 8000, np.random.default_rng(1)))


def test_typing_from_recorded_key_sounds(listed):
    sources, _ = listed
    typing = [s for s in sources if s.name == "bucklespring-data:typing"]
    if not typing:
        pytest.skip("bucklespring-data is not installed")
    x = S.load_excerpt(typing[0], 32000, np.random.default_rng(0))
    frames = (x.reshape(-1, 160).astype(np.float64) ** 2).mean(axis=1)
    assert abs(_rms(x) - 1) < 1e-3 and (frames > 0.5).sum() >= 3 and (frames < 0.05).sum() >= 20  # keystrokes


def test_midi_writer_bytes(tmp_path):
    path = tmp_path / "t.mid"
    S.write_midi(path, [(0, 1, 0, 60, 100), (0.5, 1, 9, 36, 90)], {0: 0}, tempo_bpm=120)
    data = path.read_bytes()
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk" and struct.unpack(">I", data[18:22])[0] == len(data) - 22
    assert b"\xff\x51\x03\x07\xa1\x20" in data  # 500000 us per beat
    assert data.endswith(b"\x00\xff\x2f\x00")
    assert [S._vlq(n) for n in (0, 127, 128, 16383)] == [b"\x00", b"\x7f", b"\x81\x00", b"\xff\x7f"]


def test_random_midi_never_uses_vocal_programs():
    styles = set()
    for seed in range(60):
        notes, programs, tempo, style = S.random_midi(seed, 8.0)
        styles.add(style)
        assert notes and 40 <= tempo <= 200
        assert not set(programs.values()) & S.VOCAL_PROGRAMS
        assert all(0 <= k <= 127 and 1 <= v <= 127 and length > 0 for _, length, _, k, v in notes)
    assert styles == set(S.MIDI_STYLES)


def test_fluidsynth_renders_our_midi(tmp_path):
    if not S.fluidsynth_available():
        pytest.skip("fluidsynth is not installed (apt-get install fluidsynth)")
    fonts = S.find_soundfonts()
    if not fonts:
        pytest.skip("no GM soundfont installed (apt-get install timgm6mb-soundfont)")
    font = "timgm6mb-soundfont" if "timgm6mb-soundfont" in fonts else sorted(fonts)[0]
    x = S.render_midi_music(5, 6.0, font, cache_dir=tmp_path)
    assert x.dtype == np.float32 and len(x) == 6 * 16000 and abs(_rms(x) - 1) < 1e-3
    cached = list(tmp_path.glob("*.wav"))
    assert len(cached) == 1
    raw, rate = sf.read(cached[0])
    assert rate == 16000 and np.abs(raw).max() > 0.01  # not silent before normalisation
    frames = (x.reshape(-1, 1600).astype(np.float64) ** 2).mean(axis=1)
    assert (frames > 0.01).mean() > 0.5  # sounding most of the time
    np.testing.assert_array_equal(x, S.render_midi_music(5, 6.0, font, cache_dir=tmp_path))  # from the cache


@pytest.mark.parametrize("kind", S.HUMAN_KINDS)
def test_human_sounds_are_short_finite_unvoiced(kind):
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = S.human_sound(kind, rng)
        assert x.dtype == np.float32 and np.isfinite(x).all()
        assert 0.015 * 16000 <= len(x) <= 1.6 * 16000
        assert np.abs(x).max() == pytest.approx(1.0) and _rms(x) > 0.03
        # no glottal pitch: weak autocorrelation at 80-400 Hz lags in the loudest 40 ms
        k = min(len(x), 640)
        energy = np.convolve(x.astype(np.float64) ** 2, np.ones(k), mode="valid")
        seg = x[int(np.argmax(energy)):][:k].astype(np.float64)
        seg = seg - seg.mean()
        ac = np.correlate(seg, seg, mode="full")[len(seg) - 1:]
        lags = ac[40:min(200, len(seg) // 2)]
        if len(lags):
            assert lags.max() / ac[0] < 0.6


def test_unknown_human_sound_is_a_config_error():
    with pytest.raises(ConfigError, match="breath_in"):
        S.human_sound("yodel", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="kind"):
        S.list_sources(["speech"])


def _db_envelope(x, frame=320):
    n = len(x) // frame * frame
    p = (x[:n].astype(np.float64).reshape(-1, frame) ** 2).mean(axis=1)
    return 10 * np.log10(p + 1e-10)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_babble_is_many_overlapping_voices(tmp_path):
    x = S.babble(16000 * 4, np.random.default_rng(0), n_voices=10, cache_dir=tmp_path)
    assert x.shape == (64000,) and np.isfinite(x).all() and abs(_rms(x) - 1) < 1e-3
    single = S._babble_pool(16000, tmp_path)[0]
    env_b, env_s = _db_envelope(x), _db_envelope(single)
    # one talker has pauses and syllable dips; ten talkers fill each other's gaps
    assert env_b.std() < 0.5 * env_s.std()
    assert np.mean(env_b < np.median(env_b) - 15) < 0.02 < np.mean(env_s < np.median(env_s) - 15)
    np.testing.assert_array_equal(x, S.babble(16000 * 4, np.random.default_rng(0), n_voices=10, cache_dir=tmp_path))


def test_gus_patch_reader(tmp_path):
    tone = (np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 20000).astype("<i2")
    header = b"GF1PATCH110\0ID#000002\0".ljust(22, b"\0") + b"\0" * 60 + bytes([1, 14, 0]) + b"\0" * 42
    header = header.ljust(129, b"\0") + b"\0" * 63
    layer = bytes([0, 0]) + struct.pack("<I", 0) + bytes([1]) + b"\0" * 40
    sample = bytearray(96)
    struct.pack_into("<I", sample, 8, tone.nbytes)
    struct.pack_into("<H", sample, 20, 8000)
    sample[55] = 1  # 16-bit signed
    path = tmp_path / "t.pat"
    path.write_bytes(header + layer + bytes(sample) + tone.tobytes())
    x = S.decode_source_file(str(path), 16000)
    assert abs(len(x) - 16000) < 200 and 0.5 < np.abs(x).max() < 0.7


def test_openttd_cat_reader(tmp_path):
    buf = np.zeros(4000, dtype=np.int16)
    buf[::50] = 10000
    import io

    wavs = []
    for data in (buf, buf[:2000]):
        b = io.BytesIO()
        sf.write(b, data, 11025, format="WAV", subtype="PCM_16")
        wavs.append(b.getvalue())
    names = [b'"Cow". License: Creative Commons Zero 1.0.', b'"Old bus start". License: Creative Commons '
                                                          b'Attribution 3.0 Unported.']
    entries, offset = [], 16
    for name, wav in zip(names, wavs):
        entries.append((offset, 1 + len(name) + 1 + len(wav), bytes([len(name) + 1]) + name + b"\0" + wav))
        offset += len(entries[-1][2])
    path = tmp_path / "sounds.cat"
    path.write_bytes(b"".join(struct.pack("<II", o | 0x80000000, n) for o, n, _ in entries)
                     + b"".join(e for _, _, e in entries))
    index = S._cat_index(str(path))
    assert list(index) == ["Cow", "Old_bus_start"]
    assert [v[2] for v in index.values()] == ["CC0-1.0", "CC-BY-3.0"]
    x = S.decode_source_file(f"{path}::Old_bus_start", 16000)
    assert abs(len(x) - 2000 * 16000 / 11025) < 50


def test_install_hint_and_summary(listed):
    hint = S.install_hint()
    assert hint.startswith("apt-get install") and "fluidsynth" in hint and "oxygen-sounds" in hint
    assert "supertuxkart-data" not in hint and "supertuxkart-data" in S.install_hint("all")
    sources, _ = listed
    rows = S.summarize(sources)
    assert sum(r["sources"] for r in rows) == len(sources)


def test_midi_sources_render_on_first_use(tmp_path):
    if not S.fluidsynth_available() or "timgm6mb-soundfont" not in S.find_soundfonts():
        pytest.skip("fluidsynth and timgm6mb-soundfont are not installed")
    sources = [s for s in S.list_sources(["music"], cache_dir=tmp_path) if s.name.startswith("midi:timgm6mb")]
    assert len(sources) == S.MIDI_PIECES_PER_SOUNDFONT and all(s.kind == "music" for s in sources)
    first = sources[0]
    assert not (tmp_path / "music").exists() or not any((tmp_path / "music").iterdir())  # listing renders nothing
    x = S.load_excerpt(first, 32000, np.random.default_rng(0))
    assert x.shape == (32000,) and abs(_rms(x) - 1) < 1e-3
    assert [p.name for p in (tmp_path / "music").iterdir()] == [first.path.rsplit("/", 1)[1]]
