"""models/nemo.py (reading NeMo .nemo MarbleNet checkpoints), the strided prologue, and FrameScorer.

The .nemo files are built here in NeMo's layout (upstream-facts B.4/B.5): a tar with ./model_config.yaml and
./model_weights.ckpt, keys named as NeMo's ConvASREncoder / decoders name them. The key mapping below is
written out from NeMo's naming rules, independently of the loader's own mapping.
"""

import math
import tarfile

import numpy as np
import pytest
import torch
import yaml

from conftest import random_marblenet
from fdvad.errors import CheckpointError
from fdvad.features import FeatureConfig, FeatureExtractor
from fdvad.models.nemo import FRAME_POSTPROCESS, SEGMENT_POSTPROCESS, load_nemo
from fdvad.vad.infer import FrameScorer, WindowScorer, make_scorer

# -- building .nemo files ----------------------------------------------------------------------------------
def _jasper_block(filters, repeat, kernel, stride, dilation, residual, separable="true", extra=""):
    lines = [f"filters: {filters}", f"repeat: {repeat}", f"kernel: [{kernel}]", f"stride: [{stride}]",
             f"dilation: [{dilation}]", "dropout: ${{model.dropout}}", f"residual: {residual}"]
    if separable is not None:
        lines.append(f"separable: {separable}")
    lines.append("kernel_size_factor: ${{model.kernel_size_factor}}")
    lines += [x for x in extra.split(";") if x]
    return "    - " + "\n      ".join(lines) + "\n"


# NeMo's marblenet_3x2x64*.yaml encoder list; {stride} is 1 (segment) or 2 (20 ms frame); {se} adds a key.
JASPER = "  jasper:\n" + "".join([
    _jasper_block(128, 1, 11, "{stride}", 1, "false"),
    _jasper_block(64, "${{model.repeat}}", 13, 1, 1, "true", extra="{se}"),
    _jasper_block(64, "${{model.repeat}}", 15, 1, 1, "true"),
    _jasper_block(64, "${{model.repeat}}", 17, 1, 1, "true"),
    _jasper_block(128, 1, 29, 1, 2, "false"),
    _jasper_block("&enc_final_filters 128", 1, 1, 1, 1, "false", separable=None),
])

SEGMENT_YAML = """
sample_rate: 16000
repeat: 2
dropout: 0.0
kernel_size_factor: 1.0
labels: {labels}
train_ds:
  manifest_filepath: ???
  sample_rate: ${{model.sample_rate}}
  labels: ${{model.labels}}
  batch_size: 128
preprocessor:
  _target_: {preprocessor}
  window_size: 0.025
  window_stride: 0.01
  window: "hann"
  n_mels: &n_mels 64
  n_mfcc: *n_mels
  n_fft: 512
spec_augment:
  _target_: nemo.collections.asr.modules.SpectrogramAugmentation
  freq_masks: 2
encoder:
  _target_: nemo.collections.asr.modules.ConvASREncoder
  feat_in: *n_mels
  activation: relu
  conv_mask: true
""" + JASPER + """
decoder:
  _target_: nemo.collections.asr.modules.ConvASRDecoderClassification
  feat_in: *enc_final_filters
  return_logits: true
  pooling_type: 'avg'
target: nemo.collections.asr.models.classification_models.EncDecClassificationModel
"""

FRAME_YAML = """
sample_rate: 16000
repeat: 2
dropout: 0.0
kernel_size_factor: 1.0
labels: {labels}
preprocessor:
  _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
  normalize: {normalize}
  window_size: 0.025
  sample_rate: ${{model.sample_rate}}
  window_stride: 0.01
  window: "hann"
  features: &n_mels 80
  n_fft: 512
  frame_splicing: 1
  dither: 0.00001
  stft_conv: false
  pad_to: 2
encoder:
  _target_: nemo.collections.asr.modules.ConvASREncoder
  feat_in: *n_mels
  activation: relu
  conv_mask: true
""" + JASPER + """
decoder:
  _target_: nemo.collections.common.parts.MultiLayerPerceptron
  hidden_size: *enc_final_filters
  num_classes: -1
  num_layers: 1
  activation: 'relu'
  log_softmax: false
target: nemo.collections.asr.models.classification_models.EncDecFrameClassificationModel
"""

MFCC = "nemo.collections.asr.modules.AudioToMFCCPreprocessor"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny convolutions: a second thread only adds overhead (and stalls when a training job holds the cores).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def nemo_state_dict(model, head: str) -> dict:
    """Our MarbleNet's tensors under NeMo's names (B.4), plus preprocessor buffers NeMo saves too."""
    sd = model.state_dict()
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    out = {}
    last = len(model.encoder) - 1
    for b, block in enumerate(model.encoder):
        for r in range(len(block.layers)):
            ours = f"encoder.{b}.layers.{r}"
            if b == last:  # plain 1x1 conv: mconv.0 conv, mconv.1 BN
                out[f"encoder.encoder.{b}.mconv.0.conv.weight"] = sd[f"{ours}.pointwise.weight"]
                out.update({f"encoder.encoder.{b}.mconv.1.{k}": sd[f"{ours}.bn.{k}"] for k in bn})
            else:  # separable: 5 modules per repeat (dw, pw, BN, ReLU, Dropout)
                out[f"encoder.encoder.{b}.mconv.{5 * r}.conv.weight"] = sd[f"{ours}.depthwise.weight"]
                out[f"encoder.encoder.{b}.mconv.{5 * r + 1}.conv.weight"] = sd[f"{ours}.pointwise.weight"]
                out.update({f"encoder.encoder.{b}.mconv.{5 * r + 2}.{k}": sd[f"{ours}.bn.{k}"] for k in bn})
        if block.residual is not None:
            out[f"encoder.encoder.{b}.res.0.0.conv.weight"] = sd[f"encoder.{b}.residual.pointwise.weight"]
            out.update({f"encoder.encoder.{b}.res.0.1.{k}": sd[f"encoder.{b}.residual.bn.{k}"] for k in bn})
    out[f"{head}.weight"] = sd["head.weight"]
    out[f"{head}.bias"] = sd["head.bias"]
    out["preprocessor.featurizer.window"] = torch.hann_window(400)
    out["preprocessor.featurizer.fb"] = torch.rand(1, 80, 257)
    out["preprocessor.featurizer.MelSpectrogram.mel_scale.fb"] = torch.rand(257, 64)
    return {k: v.clone() for k, v in out.items()}


def write_nemo(path, config_text: str, state: dict | None, compression: str = "", wrap: bool = False):
    """A .nemo archive as NeMo writes it: tar.add(folder, arcname='.') => './model_config.yaml' etc."""
    folder = path.parent / (path.name + ".d")
    folder.mkdir()
    (folder / "model_config.yaml").write_text(config_text)
    if state is not None:
        torch.save({"state_dict": state} if wrap else state, folder / "model_weights.ckpt")
    with tarfile.open(path, f"w:{compression}") as tar:
        tar.add(folder, arcname=".")
    return path


def calibrated(model, feature_config):
    """Running BN statistics from real features, so that outputs depend clearly on the input (with random
    statistics the logits hardly move, and a context bug would go unnoticed)."""
    with torch.no_grad():
        feats = FeatureExtractor(feature_config).eval()(torch.from_numpy(_audio(16000 * 2, seed=11)))
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: the statistics of this one batch
        model.train()
        model.forward_features(feats)
        for m in bns:
            m.momentum = 0.1
    return model.eval()


def segment_model(seed=1):
    return calibrated(random_marblenet(seed, in_features=64), FeatureConfig.nemo_mfcc())


def frame_model(seed=2):
    return calibrated(random_marblenet(seed, in_features=80, prologue_stride=2), FeatureConfig())


def segment_nemo(tmp_path, model, labels="['background', 'speech']", preprocessor=MFCC, se="", **kw):
    text = SEGMENT_YAML.format(labels=labels, preprocessor=preprocessor, stride=1, se=se)
    return write_nemo(tmp_path / "seg.nemo", text, nemo_state_dict(model, "decoder.decoder_layers.0"), **kw)


def frame_nemo(tmp_path, model, labels="['0', '1']", normalize='"None"', **kw):
    text = FRAME_YAML.format(labels=labels, normalize=normalize, stride=2, se="")
    return write_nemo(tmp_path / "frame.nemo", text, nemo_state_dict(model, "decoder.layer0"), **kw)


def assert_same_outputs(loaded, ref, in_features, flip=False):
    x = torch.randn(3, in_features, 90)
    lengths = torch.tensor([90, 64, 41])
    with torch.no_grad():
        ours, theirs = loaded(x, lengths), ref(x, lengths)
        if flip:
            theirs = theirs.flip(-1)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
        torch.testing.assert_close(loaded.forward_features(x), ref.forward_features(x), atol=1e-5, rtol=0)
        frames_ours = loaded.frame_logits(loaded.forward_features(x))
        frames_ref = ref.frame_logits(ref.forward_features(x))
        torch.testing.assert_close(frames_ours, frames_ref.flip(-1) if flip else frames_ref, atol=1e-5, rtol=0)


# -- loading -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["", "gz"])
def test_segment_model_loads_with_nemo_outputs_and_config(tmp_path, compression):
    ref = segment_model()
    model, config = load_nemo(segment_nemo(tmp_path, ref, compression=compression))
    assert not model.training
    assert_same_outputs(model, ref, 64)
    assert model.config.to_dict() == ref.config.to_dict()
    assert config["format"] == "fdvad-vad-1" and config["source"] == "nemo"
    assert config["model"] == {"arch": "marblenet", "config": ref.config.to_dict()}
    assert config["features"] == FeatureConfig.nemo_mfcc().to_dict()
    assert config["window"] == {"window_s": 0.63, "shift_s": 0.08}
    assert "frame" not in config
    assert config["postprocess"] == SEGMENT_POSTPROCESS
    assert config["postprocess"]["offset"] == 0.3 and config["postprocess"]["min_duration_on"] == 0.5
    assert config["labels"] == ["background", "speech"]
    assert sum(p.numel() for p in model.parameters()) == 89_154


@pytest.mark.parametrize("compression", ["", "gz"])
def test_frame_model_loads_with_stride_and_logmel(tmp_path, compression):
    ref = frame_model()
    model, config = load_nemo(frame_nemo(tmp_path, ref, compression=compression, wrap=True))
    assert model.config.prologue_stride == 2 and model.output_stride == 2
    assert_same_outputs(model, ref, 80)
    assert config["features"] == FeatureConfig().to_dict()  # NeMo's frame-VAD log-mel is our default
    assert config["frame"]["frame_s"] == pytest.approx(0.02)
    assert "window" not in config
    assert config["postprocess"] == FRAME_POSTPROCESS
    assert config["postprocess"]["onset"] == 0.3 and config["postprocess"]["min_duration_off"] == 0.2
    assert config["labels"] == ["0", "1"]
    assert sum(p.numel() for p in model.parameters()) == 91_378


def test_reversed_labels_reorder_the_head(tmp_path):
    ref = segment_model()
    model, config = load_nemo(segment_nemo(tmp_path, ref, labels="['speech', 'background']"))
    assert config["labels"] == ["speech", "background"]  # the original labels are kept for reference
    assert_same_outputs(model, ref, 64, flip=True)


def test_frame_labels_reversed_as_strings(tmp_path):
    ref = frame_model()
    model, _ = load_nemo(frame_nemo(tmp_path, ref, labels="['1', '0']"))
    assert_same_outputs(model, ref, 80, flip=True)


# -- errors --------------------------------------------------------------------------------------------------
def test_not_a_tar(tmp_path):
    path = tmp_path / "bad.nemo"
    path.write_text("hello, not an archive\n" * 50)
    with pytest.raises(CheckpointError, match="not a .nemo file"):
        load_nemo(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_nemo(tmp_path / "none.nemo")


def test_tar_without_weights(tmp_path):
    path = write_nemo(tmp_path / "x.nemo", SEGMENT_YAML.format(labels="['background', 'speech']",
                                                               preprocessor=MFCC, stride=1, se=""), None)
    with pytest.raises(CheckpointError, match="model_weights.ckpt is missing"):
        load_nemo(path)


def test_shape_mismatch(tmp_path):
    ref = segment_model()
    state = nemo_state_dict(ref, "decoder.decoder_layers.0")
    state["encoder.encoder.2.mconv.0.conv.weight"] = torch.zeros(64, 1, 13)
    text = SEGMENT_YAML.format(labels="['background', 'speech']", preprocessor=MFCC, stride=1, se="")
    with pytest.raises(CheckpointError, match=r"wrong shape: encoder\.encoder\.2\.mconv\.0\.conv\.weight"):
        load_nemo(write_nemo(tmp_path / "x.nemo", text, state))


def test_missing_and_unexpected_tensors(tmp_path):
    ref = segment_model()
    text = SEGMENT_YAML.format(labels="['background', 'speech']", preprocessor=MFCC, stride=1, se="")
    state = nemo_state_dict(ref, "decoder.decoder_layers.0")
    del state["encoder.encoder.1.res.0.1.running_var"]
    with pytest.raises(CheckpointError, match=r"missing 1 tensors: encoder\.encoder\.1\.res\.0\.1\.running_var"):
        load_nemo(write_nemo(tmp_path / "a.nemo", text, state))
    state = nemo_state_dict(ref, "decoder.decoder_layers.0")
    state["encoder.encoder.1.mconv.0.conv.bias"] = torch.zeros(128)
    with pytest.raises(CheckpointError, match=r"unexpected tensors .*encoder\.encoder\.1\.mconv\.0\.conv\.bias"):
        load_nemo(write_nemo(tmp_path / "b.nemo", text, state))


def test_unsupported_se_block(tmp_path):
    with pytest.raises(CheckpointError, match=r"squeeze-excitation \(se: true\) in encoder block 1"):
        load_nemo(segment_nemo(tmp_path, segment_model(), se="se: true"))


def test_unsupported_normalisation_and_preprocessor(tmp_path):
    with pytest.raises(CheckpointError, match="normalisation 'per_feature'"):
        load_nemo(frame_nemo(tmp_path, frame_model(), normalize="per_feature"))
    with pytest.raises(CheckpointError, match="unsupported preprocessor"):
        load_nemo(segment_nemo(tmp_path, segment_model(), preprocessor="my.OwnPreprocessor"))


def test_no_speech_label(tmp_path):
    with pytest.raises(CheckpointError, match="no label recognisable as speech"):
        load_nemo(segment_nemo(tmp_path, segment_model(), labels="['cat', 'dog']"))


def test_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_nemo(segment_nemo(tmp_path, segment_model(), se="se: true"))
    assert "\n" not in str(e.value) and "seg.nemo" in str(e.value)


def test_weights_are_not_unpickled_as_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "evil.d"
    folder.mkdir()
    (folder / "model_config.yaml").write_text("labels: ['0', '1']\n")
    torch.save({"x": Evil()}, folder / "model_weights.ckpt")
    with tarfile.open(tmp_path / "evil.nemo", "w:") as tar:
        tar.add(folder, arcname=".")
    with pytest.raises(CheckpointError, match="weights only"):
        load_nemo(tmp_path / "evil.nemo")


# -- the strided prologue ----------------------------------------------------------------------------------
def test_stride_two_lengths_and_masking_match_the_valid_part():
    model = frame_model()
    assert model.receptive_field == 1 + 10 + 2 * (2 * (12 + 14 + 16) + 2 * 28)
    x = torch.randn(4, 80, 60)
    lengths = torch.tensor([60, 37, 36, 1])
    assert model.output_lengths(lengths).tolist() == [30, 19, 18, 1]  # NeMo: (L + 10 - 10 - 1) // 2 + 1
    with torch.no_grad():
        out = model.forward_features(x, lengths)
        assert out.shape == (4, 128, 30)
        for i, length in enumerate(lengths.tolist()):
            alone = model.forward_features(x[i: i + 1, :, :length])
            n = (length + 1) // 2
            assert alone.shape[-1] == n
            torch.testing.assert_close(out[i: i + 1, :, :n], alone, atol=1e-5, rtol=0)


def test_default_model_unchanged_by_stride_option():
    model = random_marblenet(0)
    assert model.output_stride == 1 and model.receptive_field == 151
    assert sum(p.numel() for p in model.parameters()) == 91_378
    x = torch.randn(2, 80, 70)
    with torch.no_grad():
        assert model.forward_features(x, torch.tensor([70, 33])).shape == (2, 128, 70)


# -- FrameScorer -------------------------------------------------------------------------------------------
def _audio(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.2 * np.sin(2 * np.pi * 300 * t) * (t % 0.7 < 0.4) + 0.02 * rng.standard_normal(n)).astype(np.float32)


def _direct(model, fe, audio):
    with torch.no_grad():
        feats = fe(torch.from_numpy(audio))[:, :, : math.ceil(len(audio) / fe.hop_length)]
        logits = model.frame_logits(model.forward_features(feats))[0]
        return torch.sigmoid(logits[:, 1] - logits[:, 0]).numpy()


@pytest.mark.parametrize("n", [1000, 16000, 16161, 30000])
def test_frame_scorer_length_and_direct_equality(n):
    model, fe = frame_model(), FeatureExtractor(FeatureConfig()).eval()
    scorer = FrameScorer(model, fe, frame_s=0.02)
    probs = scorer(_audio(n))
    assert scorer.hop_s == pytest.approx(0.02)
    assert len(probs) == math.ceil(n / 320)
    np.testing.assert_allclose(probs, _direct(model, fe, _audio(n)), atol=1e-5)


def test_frame_scorer_does_not_depend_on_block_size():
    model, fe = frame_model(), FeatureExtractor(FeatureConfig()).eval()
    audio = _audio(16000 * 4 + 77, seed=3)
    whole = FrameScorer(model, fe, block_frames=4096)(audio)
    assert len(whole) == math.ceil(len(audio) / 320)
    cuts = [0, 1234, 5000, 5001, 40000, 51000, len(audio)]
    pieces = [audio[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    for block_frames in (5, 64):
        small = FrameScorer(model, fe, block_frames=block_frames)(iter(pieces))
        np.testing.assert_allclose(small, whole, atol=1e-5)
    np.testing.assert_allclose(whole, _direct(model, fe, audio), atol=1e-5)


def test_frame_scorer_on_unstrided_mfcc_model():
    model, fe = segment_model(), FeatureExtractor(FeatureConfig.nemo_mfcc()).eval()
    audio = _audio(16000 * 2 + 5)
    scorer = FrameScorer(model, fe)
    assert scorer.hop_s == pytest.approx(0.01)
    whole = scorer(audio)
    assert len(whole) == math.ceil(len(audio) / 160)
    np.testing.assert_allclose(FrameScorer(model, fe, block_frames=23)([audio[:9000], audio[9000:]]), whole, atol=1e-5)
    np.testing.assert_allclose(whole, _direct(model, fe, audio), atol=1e-5)


def test_frame_scorer_empty_input():
    assert FrameScorer(frame_model(), FeatureExtractor()).__call__(np.zeros(0, np.float32)).shape == (0,)


def test_make_scorer_follows_the_config(tmp_path):
    model, config = load_nemo(frame_nemo(tmp_path, frame_model()))
    fe = FeatureExtractor(FeatureConfig.from_dict(config["features"]))
    scorer = make_scorer(model, fe, config)
    assert isinstance(scorer, FrameScorer) and scorer.hop_s == pytest.approx(0.02)
    seg, seg_config = load_nemo(segment_nemo(tmp_path, segment_model()))
    seg_fe = FeatureExtractor(FeatureConfig.from_dict(seg_config["features"]))
    window_scorer = make_scorer(seg, seg_fe, seg_config, mode="exact")
    assert isinstance(window_scorer, WindowScorer) and window_scorer.mode == "exact"
    assert window_scorer.hop_s == pytest.approx(0.08)
    # a config round-trips through YAML as our checkpoints store it
    assert yaml.safe_load(yaml.safe_dump(config)) == config
