"""Make the bundled demo sample: held-out espeak-ng voices in four languages over pink noise at 15 dB SNR,
with its true speech segments beside it as RTTM. Usage: python scripts/make_sample.py examples/sample.flac"""

import sys
from pathlib import Path

import soundfile as sf

from fdvad.data.scenes import make_test_recording
from fdvad.vad.formats import write_segments
from fdvad.vad.segment import Segment

out = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/sample.flac")
rec = make_test_recording(seed=7, n_utterances=4, snr_db=15.0, min_gap_s=1.0, max_gap_s=2.0, noise_kind="pink",
                          languages=["en", "de", "fr", "es"])
sf.write(out, rec.audio, 16000, subtype="PCM_16")
truth = [Segment(a, b) for a, b in rec.utterance_spans]
write_segments(out.with_suffix(".rttm"), truth, "rttm", out, overwrite=True)
print(f"wrote {out} ({rec.duration_s:.1f} s) and {out.with_suffix('.rttm')}: {[(s.start, s.end) for s in truth]}")
