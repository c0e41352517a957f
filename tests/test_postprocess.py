"""Post-processing on hand-made probability tracks; every expected segment is worked out by hand (hop 0.1 s)."""

import math

import numpy as np
import pytest

from fdvad.errors import ConfigError
from fdvad.vad.postprocess import (
    PostprocessConfig,
    binarize,
    drop_short,
    fill_short_gaps,
    merge_overlapping,
    pad,
    postprocess,
    score_segments,
    split_long,
)
from fdvad.vad.segment import Segment

HOP = 0.1


def spans(segments):
    return [(s.start, s.end) for s in segments]


def approx_spans(expected):
    return [pytest.approx(pair, abs=1e-9) for pair in expected]


# a config with every optional step off, so one step can be switched on at a time
BARE = PostprocessConfig(onset=0.5, offset=0.3, pad_onset=0, pad_offset=0, min_duration_on=0, min_duration_off=0)


# ---------------------------------------------------------------- binarize


def test_hysteresis_value_between_thresholds_keeps_state_both_ways():
    # frame:  0    1    2    3    4    5    6    7
    probs = [0.0, 0.6, 0.4, 0.6, 0.2, 0.4, 0.6, 0.0]
    # 1 starts (0.6 > .5); 2 (0.4) stays speech; 4 (0.2 < .3) ends at 0.4; 5 (0.4) stays silent; 6 starts; 7 ends
    assert spans(binarize(probs, HOP, onset=0.5, offset=0.3)) == approx_spans([(0.1, 0.4), (0.6, 0.7)])


def test_thresholds_are_strict():
    # 0.5 == onset does not start; 0.3 == offset does not end; 0.29 < offset ends at frame 4
    probs = [0.5, 0.5, 0.51, 0.3, 0.29, 0.5]
    assert spans(binarize(probs, HOP, onset=0.5, offset=0.3)) == approx_spans([(0.2, 0.4)])


def test_segment_open_at_end_closes_at_track_end():
    assert spans(binarize([0.0, 0.9, 0.9], HOP, 0.5, 0.3)) == approx_spans([(0.1, 0.3)])


def test_all_silence_and_all_speech():
    assert binarize([0.1] * 6, HOP, 0.5, 0.3) == []
    assert spans(binarize([0.9] * 5, HOP, 0.5, 0.3)) == approx_spans([(0.0, 0.5)])
    assert spans(postprocess([0.9] * 5, HOP, BARE)) == approx_spans([(0.0, 0.5)])


def test_empty_probs():
    assert binarize([], HOP, 0.5, 0.3) == []
    assert postprocess(np.zeros(0), HOP) == []


def test_bad_probs_and_hop():
    with pytest.raises(ValueError):
        binarize(np.zeros((2, 3)), HOP, 0.5, 0.3)
    with pytest.raises(ValueError):
        binarize([0.1, float("nan")], HOP, 0.5, 0.3)
    with pytest.raises(ValueError):
        binarize([0.1], 0.0, 0.5, 0.3)


# ---------------------------------------------------------------- pad / merge / fill / drop


def test_padding_makes_neighbours_overlap_and_they_merge():
    probs = [0, 0, 0.9, 0.9, 0.9, 0, 0.9, 0.9, 0.9, 0, 0]  # speech 0.2-0.5 and 0.6-0.9
    assert spans(postprocess(probs, HOP, BARE)) == approx_spans([(0.2, 0.5), (0.6, 0.9)])
    padded = BARE.replace(pad_onset=0.06, pad_offset=0.06)  # 0.14-0.56 and 0.54-0.96 overlap
    assert spans(postprocess(probs, HOP, padded)) == approx_spans([(0.14, 0.96)])


def test_padding_is_clipped_to_zero_and_duration():
    segs = pad([Segment(0.05, 0.2), Segment(0.4, 0.5)], 0.1, 0.1, duration_s=0.55)
    assert spans(segs) == approx_spans([(0.0, 0.3), (0.3, 0.55)])  # touching, not merged by pad itself
    probs = [0.9, 0.9, 0, 0, 0, 0.9]  # speech 0-0.2 and 0.5-0.6
    config = BARE.replace(pad_onset=0.1, pad_offset=0.1)
    assert spans(postprocess(probs, HOP, config)) == approx_spans([(0.0, 0.3), (0.4, 0.6)])
    assert spans(postprocess(probs, HOP, config, duration_s=0.65)) == approx_spans([(0.0, 0.3), (0.4, 0.65)])


def test_duration_shorter_than_track_clips_even_without_padding():
    assert spans(postprocess([0.9] * 5, HOP, BARE, duration_s=0.45)) == approx_spans([(0.0, 0.45)])


def test_merge_overlapping_merges_touching_and_sorts():
    segs = [Segment(1.0, 2.0), Segment(0.0, 0.5), Segment(0.5, 0.7), Segment(1.5, 1.8), Segment(3.0, 3.1)]
    assert spans(merge_overlapping(segs)) == [(0.0, 0.7), (1.0, 2.0), (3.0, 3.1)]


def test_fill_short_gaps_and_drop_short_boundaries():
    segs = [Segment(0.0, 1.0), Segment(1.2, 1.3), Segment(1.6, 2.0)]
    # gaps 0.2 and 0.3: only the one shorter than 0.3 is filled; a gap of exactly 0.3 stays
    assert spans(fill_short_gaps(segs, 0.3)) == approx_spans([(0.0, 1.3), (1.6, 2.0)])
    # durations 1.0, 0.1, 0.4: exactly 0.1 is kept with min 0.1, dropped with min 0.11
    assert len(drop_short(segs, 0.1)) == 3
    assert spans(drop_short(segs, 0.11)) == approx_spans([(0.0, 1.0), (1.6, 2.0)])


def test_filter_order_changes_the_result():
    # speech 0-1.0, silence 1.0-1.2, blip 1.2-1.3, silence 1.3-1.5, speech 1.5-2.5
    probs = [0.9] * 10 + [0.0] * 2 + [0.9] + [0.0] * 2 + [0.9] * 10
    config = BARE.replace(min_duration_on=0.2, min_duration_off=0.3)
    # speech first: the 0.1 s blip is dropped, leaving a 0.5 s gap that is long enough to stay
    assert spans(postprocess(probs, HOP, config)) == approx_spans([(0.0, 1.0), (1.5, 2.5)])
    # gaps first: both 0.2 s gaps are filled, so everything is one segment and nothing is short
    gaps_first = config.replace(filter_speech_first=False)
    assert spans(postprocess(probs, HOP, gaps_first)) == approx_spans([(0.0, 2.5)])


def test_zero_parameters_switch_steps_off():
    probs = [0.9, 0, 0.9]  # two 0.1 s segments with a 0.1 s gap
    assert spans(postprocess(probs, HOP, BARE)) == approx_spans([(0.0, 0.1), (0.2, 0.3)])
    assert postprocess(probs, HOP, BARE.replace(min_duration_on=0.2)) == []
    assert spans(postprocess(probs, HOP, BARE.replace(min_duration_off=0.2))) == approx_spans([(0.0, 0.3)])


def test_defaults_end_to_end():
    # defaults: onset .5, offset .35, pads 0.03, min on 0.1, min off 0.25
    probs = [0, 0, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0, 0, 0, 0, 0.9, 0, 0]
    # raw: 0.2-0.5, 0.7-0.9, 1.3-1.4 -> padded 0.17-0.53, 0.67-0.93, 1.27-1.43
    # min on 0.1: all kept (0.16 long is the shortest); gaps 0.14 (< .25, filled) and 0.34 (kept)
    result = postprocess(probs, HOP)
    assert spans(result) == approx_spans([(0.17, 0.93), (1.27, 1.43)])
    # scores: frames overlapped are 1..9 and 12..14
    assert [s.score for s in result] == [round(float(np.mean(probs[1:10])), 4), 0.3]


# ---------------------------------------------------------------- split_long


def test_split_at_lowest_frame_inside_the_margin():
    probs = np.full(30, 0.9)
    probs[12] = 0.6  # lowest inside the search window [1.0, 2.0]
    probs[25] = 0.55  # lower, but at 2.5 s, outside the window: cutting there would leave a 2.5 s piece
    result = postprocess(probs, HOP, BARE.replace(max_speech_duration_s=2.0))
    assert spans(result) == approx_spans([(0.0, 1.2), (1.2, 3.0)])


def test_split_recurses_until_every_piece_fits():
    probs = np.full(40, 0.9)
    probs[9], probs[19], probs[28] = 0.6, 0.8, 0.7
    # [0, 4.0], M = 1.5: window [0.75, 3.25] -> frame 9 (0.6) -> cut 0.9
    # [0.9, 4.0]: window [1.65, 3.25] -> frame 28 (0.7) -> cut 2.8
    # [0.9, 2.8] (1.9 s): window [1.65, 2.05] -> frame 19 (0.8) -> cut 1.9
    result = split_long([Segment(0.0, 4.0)], probs, HOP, 1.5)
    assert spans(result) == approx_spans([(0.0, 0.9), (0.9, 1.9), (1.9, 2.8), (2.8, 4.0)])


def test_split_ties_go_to_the_middle_and_no_boundary_falls_back_to_middle():
    probs = np.full(30, 0.9)  # flat: every candidate ties, the one nearest 1.5 s wins
    assert spans(split_long([Segment(0.0, 3.0)], probs, HOP, 2.0)) == approx_spans([(0.0, 1.5), (1.5, 3.0)])
    # hop 1 s, [0.1, 1.2], M = 1 s: window [0.6, 0.7] holds no frame boundary -> middle 0.65
    assert spans(split_long([Segment(0.1, 1.2)], [0.9, 0.9], 1.0, 1.0)) == approx_spans([(0.1, 0.65), (0.65, 1.2)])


def test_split_never_exceeds_max_on_random_tracks():
    rng = np.random.default_rng(0)
    for max_s in (0.35, 1.0, 2.7):
        probs = rng.uniform(0.5, 1.0, size=500)
        pieces = split_long([Segment(0.03, 49.97)], probs, HOP, max_s)
        durations = np.array([p.duration for p in pieces])
        assert durations.max() <= max_s + 1e-9
        assert durations.min() >= max_s / 2 - 1e-9
        assert pieces[0].start == 0.03 and pieces[-1].end == 49.97
        assert all(a.end == b.start for a, b in zip(pieces, pieces[1:]))


def test_split_max_shorter_than_a_frame_is_refused():
    with pytest.raises(ConfigError, match="max_speech_duration_s"):
        postprocess([0.9] * 10, HOP, BARE.replace(max_speech_duration_s=0.05))


def test_split_off_for_inf_and_zero():
    segs = [Segment(0.0, 100.0)]
    assert split_long(segs, np.full(1000, 0.9), HOP, math.inf) == segs
    assert split_long(segs, np.full(1000, 0.9), HOP, 0.0) == segs


# ---------------------------------------------------------------- scores


def test_scores_are_mean_of_overlapped_frames_rounded():
    probs = [0.0, 0.9, 0.8, 0.8, 0.0]
    (seg,) = postprocess(probs, HOP, BARE)
    assert (seg.start, seg.end) == pytest.approx((0.1, 0.4))
    assert seg.score == 0.8333
    # a segment past the last frame overlaps nothing
    assert score_segments([Segment(0.5, 0.6)], probs, HOP)[0].score is None


# ---------------------------------------------------------------- config


def test_config_defaults():
    c = PostprocessConfig()
    assert (c.onset, c.offset, c.pad_onset, c.pad_offset) == (0.5, 0.35, 0.03, 0.03)
    assert (c.min_duration_on, c.min_duration_off, c.filter_speech_first) == (0.1, 0.25, True)
    assert c.max_speech_duration_s == math.inf
    assert c.validate() is c


@pytest.mark.parametrize(
    "options",
    [
        {"onset": 0.4, "offset": 0.6},
        {"onset": 1.5},
        {"offset": -0.1},
        {"pad_onset": -0.01},
        {"min_duration_on": -1},
        {"min_duration_off": math.inf},
        {"max_speech_duration_s": -5},
        {"onset": math.nan},
        {"max_speech_duration_s": math.nan},
        {"filter_speech_first": "maybe"},
        {"onset": "high"},
    ],
)
def test_config_validation_errors(options):
    with pytest.raises(ConfigError) as info:
        PostprocessConfig.from_options(**options)
    assert "\n" not in str(info.value)


def test_validate_on_constructed_config():
    with pytest.raises(ConfigError, match="offset"):
        PostprocessConfig(onset=0.3, offset=0.4).validate()
    with pytest.raises(ConfigError):
        postprocess([0.9], HOP, PostprocessConfig(pad_onset=-1))


def test_unknown_option_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown.*treshold.*valid names:.*onset.*threshold.*speech_pad_ms"):
        PostprocessConfig.from_options(treshold=0.5)


def test_aliases_map_to_nemo_names():
    c = PostprocessConfig.from_options(
        threshold=0.6,
        neg_threshold=0.4,
        speech_pad_ms=100,
        min_speech_duration_ms=250,
        min_silence_duration_ms=500,
        max_speech_duration_s=30,
    )
    assert (c.onset, c.offset, c.pad_onset, c.pad_offset) == (0.6, 0.4, 0.1, 0.1)
    assert (c.min_duration_on, c.min_duration_off, c.max_speech_duration_s) == (0.25, 0.5, 30.0)


def test_offset_follows_onset_when_not_given():
    assert PostprocessConfig.from_options(threshold=0.7).offset == pytest.approx(0.55)
    assert PostprocessConfig.from_options(onset=0.1).offset == 0.01
    assert PostprocessConfig.from_options(threshold=0.6, neg_threshold=None).offset == pytest.approx(0.45)
    assert PostprocessConfig.from_options(onset=0.6, offset=0.2).offset == 0.2


def test_conflicting_alias_and_name():
    with pytest.raises(ConfigError, match="give only one"):
        PostprocessConfig.from_options(onset=0.5, threshold=0.6)
    assert PostprocessConfig.from_options(onset=0.6, threshold=0.6).onset == 0.6


def test_cli_strings_and_none_values():
    c = PostprocessConfig.from_options(onset="0.7", filter_speech_first="false", pad_onset=None)
    assert (c.onset, c.filter_speech_first, c.pad_onset) == (0.7, False, 0.03)


def test_replace_and_to_dict():
    c = PostprocessConfig().replace(threshold=0.8, speech_pad_ms=0)
    # a new onset brings its own offset (onset - 0.15), like from_options
    assert (c.onset, c.offset, c.pad_onset, c.pad_offset) == (0.8, pytest.approx(0.65), 0.0, 0.0)
    low = PostprocessConfig().replace(threshold=0.3)
    assert (low.onset, low.offset) == (0.3, pytest.approx(0.15))
    assert PostprocessConfig(offset=0.2).replace(pad_onset=0.1).offset == 0.2
    assert c.to_dict()["onset"] == 0.8 and set(c.to_dict()) == set(PostprocessConfig().to_dict())
    with pytest.raises(ConfigError):
        PostprocessConfig().replace(offset=0.9)
