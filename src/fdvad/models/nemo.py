"""Read NVIDIA NeMo MarbleNet VAD checkpoints (`.nemo` files) into our MarbleNet.

A `.nemo` file is a tar archive (plain, or gzip for NeMo < 1.7) holding `model_config.yaml` (the model's
config tree) and `model_weights.ckpt` (a torch-saved state dict). We read both without extracting anything
to disk and without running code from the file: YAML with `safe_load`, weights with `weights_only=True`,
and `${...}` references in the config are looked up as plain values, never evaluated.

Two kinds of model are understood:
  segment  EncDecClassificationModel (vad_marblenet, vad_multilingual_marblenet): one label per 0.63 s
           window, pooled head `decoder.decoder_layers.0`; scored with sliding windows.
  frame    EncDecFrameClassificationModel (vad_multilingual_frame_marblenet): one label per encoder step
           (20 ms with the strided prologue), head `decoder.layer0`; scored frame by frame.

`load_nemo(path)` returns (model, config) with the config in our checkpoint layout (see checkpoint.py):
format, source, model, features, window or frame, postprocess, labels.
"""

from __future__ import annotations

import io
import math
import os
import posixpath
import re
import tarfile
from pathlib import Path
from typing import Any

import torch
import yaml

from ..errors import CheckpointError, ConfigError
from ..features import FeatureConfig
from .checkpoint import FORMAT
from .marblenet import MarbleNet, MarbleNetConfig

CONFIG_MEMBER = "model_config.yaml"
WEIGHTS_MEMBER = "model_weights.ckpt"

# NeMo's post-processing defaults: examples/asr/conf/vad/vad_inference_postprocessing.yaml (segment models)
# and frame_vad_infer_postprocess.yaml (frame models).
SEGMENT_POSTPROCESS = {"onset": 0.5, "offset": 0.3, "pad_onset": 0.2, "pad_offset": 0.2,
                       "min_duration_on": 0.5, "min_duration_off": 0.5, "filter_speech_first": True}
FRAME_POSTPROCESS = {"onset": 0.3, "offset": 0.3, "pad_onset": 0.2, "pad_offset": 0.2,
                     "min_duration_on": 0.2, "min_duration_off": 0.2, "filter_speech_first": True}
SEGMENT_WINDOW = {"window_s": 0.63, "shift_s": 0.08}

# Parts of a NeMo state dict that are not model weights we need (feature buffers, loss class weights).
IGNORED_PREFIXES = ("preprocessor.", "spec_augmentation.", "spec_augment.", "loss.")
SEGMENT_HEAD = "decoder.decoder_layers.0"
FRAME_HEAD = "decoder.layer0"

SPEECH_LABELS = {"speech", "1", "voice", "true", "yes"}
NON_SPEECH_LABELS = {"background", "0", "non-speech", "non_speech", "nonspeech", "silence", "noise",
                     "false", "no"}


def load_nemo(path: str | os.PathLike) -> tuple[MarbleNet, dict]:
    """(model in eval mode, config dict in our checkpoint layout) from a NeMo MarbleNet `.nemo` file.

    Raises CheckpointError, with a one-line reason, for anything that is not a readable MarbleNet VAD
    checkpoint we can reproduce exactly (other architectures, feature normalisation, SE blocks, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    nemo_cfg, state = _read_archive(path)
    try:
        return _build(nemo_cfg, state)
    except (CheckpointError, ConfigError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (TypeError, ValueError) as e:  # a config value of an unexpected type, e.g. an unresolved ${...}
        raise CheckpointError(f"{path}: unexpected value in {CONFIG_MEMBER} ({e})") from None


# -- archive -------------------------------------------------------------------------------------------
def _read_archive(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    tar = None
    for mode in ("r:", "r:gz"):  # NeMo's own order: plain tar, then gzip (NeMo < 1.7)
        try:
            tar = tarfile.open(path, mode)
            break
        except (tarfile.TarError, OSError, EOFError):
            continue
    if tar is None:
        raise CheckpointError(f"{path}: not a .nemo file (a .nemo file is a tar archive)")
    with tar:
        members = {posixpath.normpath(m.name): m for m in tar.getmembers() if m.isfile()}
        raw_cfg = _member(tar, members, CONFIG_MEMBER, path)
        raw_weights = _member(tar, members, WEIGHTS_MEMBER, path)
    try:
        cfg = yaml.safe_load(raw_cfg.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: {CONFIG_MEMBER} is not plain YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: {CONFIG_MEMBER} is not a mapping")
    try:
        state = torch.load(io.BytesIO(raw_weights), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: cannot read {WEIGHTS_MEMBER} as weights only "
                              f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {WEIGHTS_MEMBER} does not hold a state dict")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    return _resolve(cfg), tensors


def _member(tar: tarfile.TarFile, members: dict, name: str, path: Path) -> bytes:
    member = members.get(name)
    if member is None:
        raise CheckpointError(f"{path}: {name} is missing from the archive (is this a NeMo model?)")
    f = tar.extractfile(member)
    if f is None:
        raise CheckpointError(f"{path}: cannot read {name} from the archive")
    return f.read()


_REF = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


def _resolve(cfg: dict) -> dict:
    """Replace values that are exactly `${a.b.c}` with the value at that path (the `model.` prefix of
    training configs is optional, as model_config.yaml is the model section). Anything else is kept."""

    def lookup(ref: str, depth: int) -> Any:
        for keys in (ref.split("."), ref.split(".")[1:] if ref.startswith("model.") else None):
            if not keys:
                continue
            node: Any = cfg
            for key in keys:
                if not isinstance(node, dict) or key not in node:
                    break
                node = node[key]
            else:
                return walk(node, depth + 1)
        return "${" + ref + "}"

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 20:
            return node
        if isinstance(node, dict):
            return {k: walk(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, depth) for v in node]
        if isinstance(node, str):
            m = _REF.match(node.strip())
            if m:
                return lookup(m.group(1), depth)
        return node

    return walk(cfg)


# -- building ------------------------------------------------------------------------------------------
def _build(cfg: dict, state: dict[str, torch.Tensor]) -> tuple[MarbleNet, dict]:
    if f"{FRAME_HEAD}.weight" in state:
        kind, head = "frame", FRAME_HEAD
    elif f"{SEGMENT_HEAD}.weight" in state:
        kind, head = "segment", SEGMENT_HEAD
    else:
        raise CheckpointError(f"no MarbleNet VAD decoder in the weights (expected {SEGMENT_HEAD}.weight "
                              f"or {FRAME_HEAD}.weight)")
    _check_decoder(cfg.get("decoder"), kind)
    features = _feature_config(cfg.get("preprocessor"), cfg)
    mcfg = _marblenet_config(cfg.get("encoder"), num_classes=state[f"{head}.weight"].shape[0])
    if mcfg.in_features != features.num_features:
        raise CheckpointError(f"encoder feat_in is {mcfg.in_features} but the preprocessor makes "
                              f"{features.num_features} features")
    labels = cfg.get("labels")
    order = _class_order(labels, mcfg.num_classes)
    model = MarbleNet(mcfg)
    model.load_state_dict(_map_state(model, state, head, order), strict=True)
    model.eval()

    config: dict = {
        "format": FORMAT,
        "source": "nemo",
        "model": {"arch": "marblenet", "config": mcfg.to_dict()},
        "features": features.to_dict(),
    }
    if kind == "frame":
        hop_s = features.hop_length / features.sample_rate
        config["frame"] = {"frame_s": hop_s * model.output_stride}
        config["postprocess"] = dict(FRAME_POSTPROCESS)
    else:
        if model.output_stride != 1:
            raise CheckpointError("a window classifier with a strided encoder is not supported")
        config["window"] = _window(cfg)
        config["postprocess"] = dict(SEGMENT_POSTPROCESS)
    config["labels"] = [str(x) for x in labels]
    return model, config


def _window(cfg: dict) -> dict:
    """Window length recorded in a dataset section (NeMo's VAD inference stores window_length_in_sec
    there), else NeMo's 0.63 s; the shift is NeMo's default 0.08 s."""
    window = dict(SEGMENT_WINDOW)
    for section in ("test_ds", "validation_ds", "train_ds"):
        data = cfg.get(section)
        value = data.get("window_length_in_sec") if isinstance(data, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= window["shift_s"]:
            window["window_s"] = float(value)
            break
    return window


def _check_decoder(dec: Any, kind: str) -> None:
    if not isinstance(dec, dict):
        return  # the weights already told us which head this is
    target = str(dec.get("_target_") or dec.get("cls") or "")
    params = dec.get("params") if isinstance(dec.get("params"), dict) else dec
    if kind == "segment":
        if target and not target.endswith("ConvASRDecoderClassification"):
            raise CheckpointError(f"unsupported decoder {target} for a segment VAD model")
        if params.get("pooling_type", "avg") != "avg":
            raise CheckpointError(f"unsupported decoder pooling {params.get('pooling_type')!r} (only 'avg')")
    else:
        if target and not target.endswith("MultiLayerPerceptron"):
            raise CheckpointError(f"unsupported decoder {target} for a frame VAD model")
        if int(params.get("num_layers", 1)) != 1:
            raise CheckpointError(f"unsupported frame decoder with {params.get('num_layers')} layers (only 1)")


def _listed(block: dict, key: str, default: int) -> int:
    value = block.get(key, [default])
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise CheckpointError(f"unsupported 2-D {key} {list(value)} in encoder")
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckpointError(f"encoder {key} must be a number, got {value!r}")
    return value


def _marblenet_config(enc: Any, num_classes: int) -> MarbleNetConfig:
    if not isinstance(enc, dict):
        raise CheckpointError("model_config.yaml has no encoder section")
    target = str(enc.get("_target_") or enc.get("cls") or "")
    if isinstance(enc.get("params"), dict):  # NeMo 1.0 style: cls + params
        enc = enc["params"]
    if target and not target.endswith("ConvASREncoder"):
        raise CheckpointError(f"unsupported encoder {target} (only ConvASREncoder / MarbleNet)")
    if str(enc.get("activation", "relu")).lower() != "relu":
        raise CheckpointError(f"unsupported encoder activation {enc.get('activation')!r} (only relu)")
    jasper = enc.get("jasper")
    if not isinstance(jasper, list) or len(jasper) < 4 or not all(isinstance(b, dict) for b in jasper):
        raise CheckpointError("encoder.jasper is not a MarbleNet block list "
                              "(prologue, residual blocks, epilogue, final 1x1)")
    feat_in = enc.get("feat_in")
    if not isinstance(feat_in, int):
        raise CheckpointError(f"encoder feat_in must be a number, got {feat_in!r}")

    blocks = []
    for i, b in enumerate(jasper):
        if b.get("se"):
            raise CheckpointError(f"unsupported squeeze-excitation (se: true) in encoder block {i}")
        if b.get("residual_dense"):
            raise CheckpointError(f"unsupported dense residual in encoder block {i}")
        if b.get("residual_mode", "add") != "add":
            raise CheckpointError(f"unsupported residual_mode {b.get('residual_mode')!r} in encoder block {i}")
        if b.get("normalization", "batch") != "batch":
            raise CheckpointError(f"unsupported normalization {b.get('normalization')!r} in encoder block {i}")
        if int(b.get("groups", 1)) != 1 or int(b.get("heads", -1)) != -1:
            raise CheckpointError(f"unsupported grouped conv in encoder block {i}")
        if float(b.get("kernel_size_factor", 1.0)) != 1.0:
            raise CheckpointError(f"unsupported kernel_size_factor {b.get('kernel_size_factor')} in encoder block {i}")
        if int(b.get("future_context", -1)) >= 0 or b.get("padding", "same") != "same":
            raise CheckpointError(f"unsupported asymmetric padding in encoder block {i}")
        blocks.append({
            "filters": b.get("filters"), "repeat": int(b.get("repeat", 1)),
            "kernel": _listed(b, "kernel", 11), "stride": _listed(b, "stride", 1),
            "dilation": _listed(b, "dilation", 1),
            "residual": bool(b.get("residual", False)), "separable": bool(b.get("separable", False)),
        })
    if any(not isinstance(b["filters"], int) for b in blocks):
        raise CheckpointError("every encoder block needs a number of filters")
    pro, mids, epi, fin = blocks[0], blocks[1:-2], blocks[-2], blocks[-1]

    def shape_error(what: str) -> CheckpointError:
        return CheckpointError(f"encoder is not a MarbleNet: {what}")

    if not pro["separable"] or pro["residual"] or pro["repeat"] != 1 or pro["dilation"] != 1:
        raise shape_error("block 0 must be one separable conv without residual or dilation")
    if pro["stride"] < 1 or pro["stride"] > 2:
        raise shape_error(f"block 0 stride {pro['stride']} (only 1 or 2)")
    for j, b in enumerate(mids, start=1):
        if not (b["separable"] and b["residual"]) or b["stride"] != 1 or b["dilation"] != 1:
            raise shape_error(f"block {j} must be separable and residual, without stride or dilation")
        if b["filters"] != mids[0]["filters"] or b["repeat"] != mids[0]["repeat"]:
            raise shape_error("the residual blocks differ in filters or repeats")
    if not epi["separable"] or epi["residual"] or epi["repeat"] != 1 or epi["stride"] != 1:
        raise shape_error(f"block {len(blocks) - 2} (epilogue) must be one separable conv without residual")
    if fin["separable"] or fin["residual"] or fin["repeat"] != 1 or fin["kernel"] != 1 or fin["stride"] != 1:
        raise shape_error(f"block {len(blocks) - 1} must be a plain 1x1 conv")
    try:
        config = MarbleNetConfig(
            in_features=feat_in, num_classes=num_classes, num_blocks=len(mids), repeats=mids[0]["repeat"],
            channels=mids[0]["filters"], block_kernels=tuple(b["kernel"] for b in mids),
            prologue_channels=pro["filters"], prologue_kernel=pro["kernel"], prologue_stride=pro["stride"],
            epilogue_channels=epi["filters"], epilogue_kernel=epi["kernel"], epilogue_dilation=epi["dilation"],
            final_channels=fin["filters"], bn_eps=1e-3,
        )
        config.validate()
    except ConfigError as e:
        raise shape_error(str(e)) from None
    return config


def _class_order(labels: Any, num_classes: int) -> list[int]:
    """Rows of the NeMo head in our order: [non-speech, speech]."""
    if not isinstance(labels, list) or not labels:
        raise CheckpointError("model_config.yaml has no labels list, so the speech class is unknown")
    if len(labels) != num_classes:
        raise CheckpointError(f"{len(labels)} labels {labels} but the decoder has {num_classes} outputs")
    if num_classes != 2:
        raise CheckpointError(f"expected 2 classes (speech, non-speech), found {num_classes}: {labels}")
    names = [str(x).strip().lower() for x in labels]
    speech = [i for i, n in enumerate(names) if n in SPEECH_LABELS]
    if len(speech) != 1:
        other = [i for i, n in enumerate(names) if n in NON_SPEECH_LABELS]
        if len(other) != 1:
            raise CheckpointError(f"no label recognisable as speech in {labels}")
        speech = [1 - other[0]]
    return [1 - speech[0], speech[0]]


def _nemo_names(model: MarbleNet, head: str) -> dict[str, str]:
    """Our state-dict key -> NeMo's key (ConvASREncoder's JasperBlocks; see upstream-facts B.4)."""
    names: dict[str, str] = {}
    bn_keys = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for b, block in enumerate(model.encoder):
        nemo = f"encoder.encoder.{b}"
        for r, layer in enumerate(block.layers):
            if layer.depthwise is not None:  # separable: depthwise, pointwise, BN, ReLU, Dropout
                base = 5 * r
                names[f"encoder.{b}.layers.{r}.depthwise.weight"] = f"{nemo}.mconv.{base}.conv.weight"
                names[f"encoder.{b}.layers.{r}.pointwise.weight"] = f"{nemo}.mconv.{base + 1}.conv.weight"
                bn = f"{nemo}.mconv.{base + 2}"
            else:  # plain: conv, BN, ReLU, Dropout
                base = 4 * r
                names[f"encoder.{b}.layers.{r}.pointwise.weight"] = f"{nemo}.mconv.{base}.conv.weight"
                bn = f"{nemo}.mconv.{base + 1}"
            for k in bn_keys:
                names[f"encoder.{b}.layers.{r}.bn.{k}"] = f"{bn}.{k}"
        if block.residual is not None:
            names[f"encoder.{b}.residual.pointwise.weight"] = f"{nemo}.res.0.0.conv.weight"
            for k in bn_keys:
                names[f"encoder.{b}.residual.bn.{k}"] = f"{nemo}.res.0.1.{k}"
    names["head.weight"] = f"{head}.weight"
    names["head.bias"] = f"{head}.bias"
    return names


def _map_state(model: MarbleNet, state: dict[str, torch.Tensor], head: str, order: list[int]) -> dict:
    ours = model.state_dict()
    names = _nemo_names(model, head)
    missing_ours = sorted(set(ours) - set(names))
    if missing_ours:  # a bug in this module, not in the file
        raise RuntimeError(f"no NeMo name for {missing_ours[:3]}")
    out, missing, wrong = {}, [], []
    for key, nemo_key in names.items():
        if nemo_key not in state:
            if key.endswith("num_batches_tracked"):
                out[key] = ours[key]
            else:
                missing.append(nemo_key)
            continue
        tensor = state[nemo_key]
        if tuple(tensor.shape) != tuple(ours[key].shape):
            wrong.append(f"{nemo_key} {list(tensor.shape)} (expected {list(ours[key].shape)})")
            continue
        out[key] = tensor.to(ours[key].dtype)
    used = set(names.values())
    unexpected = sorted(k for k in state if k not in used and not k.startswith(IGNORED_PREFIXES))
    if missing:
        raise CheckpointError(f"weights missing {len(missing)} tensors: {', '.join(missing[:3])}"
                              + (", ..." if len(missing) > 3 else ""))
    if wrong:
        raise CheckpointError(f"weights with the wrong shape: {', '.join(wrong[:3])}"
                              + (", ..." if len(wrong) > 3 else ""))
    if unexpected:
        raise CheckpointError(f"unexpected tensors for a MarbleNet: {', '.join(unexpected[:3])}"
                              + (", ..." if len(unexpected) > 3 else ""))
    out["head.weight"] = out["head.weight"][order].clone()
    out["head.bias"] = out["head.bias"][order].clone()
    return out


# -- features ------------------------------------------------------------------------------------------
_NO_NORMALIZE = (None, "None", "none", "NA", "null", "")


def _seconds_to_samples(p: dict, seconds_key: str, samples_key: str, default_s: float, sr: int) -> int:
    if p.get(samples_key):
        return int(p[samples_key])
    value = p.get(seconds_key) or default_s
    return int(float(value) * sr)  # NeMo truncates the same way


def _feature_config(pre: Any, cfg: dict) -> FeatureConfig:
    if not isinstance(pre, dict):
        raise CheckpointError("model_config.yaml has no preprocessor section")
    target = str(pre.get("_target_") or pre.get("cls") or "")
    p = pre["params"] if isinstance(pre.get("params"), dict) else pre
    sr = int(p.get("sample_rate") or cfg.get("sample_rate") or 16000)
    if sr != 16000:
        raise CheckpointError(f"unsupported sample rate {sr} Hz (fdvad works at 16000 Hz)")
    win = _seconds_to_samples(p, "window_size", "n_window_size", 0.02, sr)
    hop = _seconds_to_samples(p, "window_stride", "n_window_stride", 0.01, sr)
    n_fft = int(p.get("n_fft") or 2 ** math.ceil(math.log2(win)))
    if p.get("window", "hann") != "hann":
        raise CheckpointError(f"unsupported STFT window {p.get('window')!r} (only hann)")
    low, high = p.get("lowfreq", 0) or 0, p.get("highfreq")
    if float(low) != 0.0 or (high is not None and float(high) != sr / 2):
        raise CheckpointError(f"unsupported mel frequency range {low}..{high} Hz (only 0 .. {sr // 2})")

    if target.endswith("AudioToMFCCPreprocessor"):
        if int(p.get("dct_type", 2)) != 2 or p.get("norm", "ortho") != "ortho" or not p.get("log", True):
            raise CheckpointError("unsupported MFCC settings (only dct_type 2, norm 'ortho', log true)")
        base = FeatureConfig.nemo_mfcc()
        features = FeatureConfig(**{**base.to_dict(), "sample_rate": sr, "n_fft": n_fft, "win_length": win,
                                    "hop_length": hop, "n_mels": int(p.get("n_mels", 64)),
                                    "n_mfcc": int(p.get("n_mfcc", 64))})
    elif target.endswith("AudioToMelSpectrogramPreprocessor"):
        normalize = p.get("normalize", "per_feature")
        if normalize not in _NO_NORMALIZE:
            raise CheckpointError(f"unsupported feature normalisation {normalize!r} (only none)")
        if float(p.get("mag_power", 2.0)) != 2.0:
            raise CheckpointError(f"unsupported mag_power {p.get('mag_power')} (only 2.0)")
        if not p.get("log", True) or p.get("log_zero_guard_type", "add") != "add":
            raise CheckpointError("unsupported log settings (only log true with log_zero_guard_type 'add')")
        if int(p.get("frame_splicing", 1)) != 1 or p.get("exact_pad") or p.get("stft_exact_pad"):
            raise CheckpointError("unsupported framing (frame_splicing, exact_pad or stft_exact_pad)")
        mel_norm = p.get("mel_norm", "slaney")
        if mel_norm not in ("slaney", None):
            raise CheckpointError(f"unsupported mel_norm {mel_norm!r} (only 'slaney' or none)")
        preemph = p.get("preemph", 0.97)
        features = FeatureConfig(
            kind="logmel", sample_rate=sr, n_fft=n_fft, win_length=win, hop_length=hop,
            n_mels=int(p.get("features", 64)), preemph=float(preemph or 0.0),
            dither=float(p.get("dither", 1e-5) or 0.0), log_guard=_log_guard(p.get("log_zero_guard_value", 2.0**-24)),
            window_periodic=False, pad_mode="constant", mel_scale="slaney", mel_norm=mel_norm,
        )
    else:
        raise CheckpointError(f"unsupported preprocessor {target or '(none)'} "
                              "(only AudioToMelSpectrogramPreprocessor or AudioToMFCCPreprocessor)")
    try:
        features.validate()
    except ConfigError as e:
        raise CheckpointError(f"unusable preprocessor settings: {e}") from None
    return features


def _log_guard(value: Any) -> float:
    if value == "tiny":
        return float(torch.finfo(torch.float32).tiny)
    if value == "eps":
        return float(torch.finfo(torch.float32).eps)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CheckpointError(f"unsupported log_zero_guard_value {value!r}") from None
