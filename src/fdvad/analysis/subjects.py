"""What `fdvad analyze` looks at: a model, a fixed evaluation batch, where its tokens sit, and how to score it.

Two kinds of models:
  - audio: an fdvad checkpoint (.safetensors) or a NeMo .nemo, on 0.63 s windows of a labelled corpus (any
    manifest `fdvad eval` reads), each window's label by the centre rule of `fdvad data windows`. Tokens of the
    audio transformer are `patch_frames` x 10 ms apart: distances are in ms. MarbleNet has no attention; its
    landscapes are still drawn.
  - image: a Hugging Face `transformers` ViT-like model saved with `save_pretrained` (a folder with config.json;
    nothing is downloaded), on a folder of images (PNG/JPEG); with class subfolders and a classification head
    the landscapes use those labels. Tokens sit on the patch grid: distances are in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .attention import positions_1d, positions_2d

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
FRAME_MS = 10.0


@dataclass
class Subject:
    name: str
    model: nn.Module
    kind: str  # "audio" or "image"
    inputs: object  # one batch, as capture_attention and the model take it
    labels: torch.Tensor | None  # per input: 0/1 (audio) or class index (image); None: no landscape
    has_attention: bool
    prefix_tokens: int = 0  # CLS and other non-patch tokens before the patches
    positions: torch.Tensor | None = None  # patch centres (N, d)
    unit: str = ""  # of the positions: "ms" or "px"
    why_no_landscape: str = ""

    def evaluate(self, model: nn.Module, batch_size: int = 256) -> tuple[float, float]:
        """(mean loss, accuracy) on the fixed batch: binary cross-entropy on the speech-minus-background logit
        for audio, cross-entropy for images."""
        if self.labels is None:
            raise ValueError(self.why_no_landscape or f"{self.name} has no labelled evaluation data")
        model.eval()
        total_loss, correct, n = 0.0, 0, len(self.labels)
        with torch.no_grad():
            for i in range(0, n, batch_size):
                y = self.labels[i: i + batch_size]
                if self.kind == "audio":
                    feats, lengths = self.inputs
                    logits = model(feats[i: i + batch_size], lengths[i: i + batch_size])
                    diff = (logits[:, 1] - logits[:, 0]).float()
                    total_loss += float(F.binary_cross_entropy_with_logits(diff, y.float(), reduction="sum"))
                    correct += int(((diff > 0).long() == y.long()).sum())
                else:
                    logits = model(pixel_values=self.inputs["pixel_values"][i: i + batch_size]).logits.float()
                    total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                    correct += int((logits.argmax(-1) == y).sum())
        return total_loss / n, correct / n

    def attention_batch(self, limit: int):
        """The first `limit` inputs, for attention capture (attention maps of every input would be large)."""
        if self.kind == "audio":
            feats, lengths = self.inputs
            return feats[:limit], lengths[:limit]
        return {"pixel_values": self.inputs["pixel_values"][:limit]}


def _audio_windows(data: str, features, n_windows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (n, F, 64), labels (n,)) of `n_windows` 0.63 s windows drawn from the corpus at `data`."""
    from ..data.corpora import WindowDataset, read_corpus

    items = read_corpus(data)
    if not items:
        raise ConfigError(f"{data} has no items")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    chosen, count = [], 0
    for i in order:  # enough whole items for 4x the windows, so each file is decoded once
        chosen.append(items[int(i)])
        count += max(1, round(chosen[-1].duration / 0.08)) if chosen[-1].duration else 100
        if count >= 4 * n_windows:
            break
    windows = WindowDataset(chosen)
    picks = np.sort(rng.choice(len(windows), size=min(n_windows, len(windows)), replace=False))
    audio, labels = zip(*(windows[int(k)] for k in picks))
    with torch.no_grad():
        feats = features(torch.stack(audio))
    return feats, torch.stack(labels)


def _image_batch(folder: str, image_size: int, n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """(pixels (n, 3, S, S) scaled to [-1, 1], class indices or None, class names) from an image folder."""
    from PIL import Image, UnidentifiedImageError

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--data {folder}: an image model needs a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"--data {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    classes = sorted({p.parent.name for p in files if p.parent != root})
    rng = np.random.default_rng(seed)
    files = [files[int(i)] for i in np.sort(rng.permutation(len(files))[:n_images])]
    pixels = []
    for p in files:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB").resize((image_size, image_size), Image.BICUBIC)
        except (UnidentifiedImageError, OSError) as e:
            raise ConfigError(f"cannot read image {p}: {e}") from None
        pixels.append(torch.from_numpy(np.asarray(im, np.float32) / 127.5 - 1.0).permute(2, 0, 1))
    labels = None
    if classes and all(p.parent != root for p in files):
        labels = torch.tensor([classes.index(p.parent.name) for p in files])
    return torch.stack(pixels), labels, classes


def _load_transformers(path: Path) -> nn.Module:
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"{path} is a Hugging Face model folder; install transformers to analyse it") from None
    config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    architectures = config.architectures or []
    if any(a.endswith("ForImageClassification") for a in architectures):
        loader = transformers.AutoModelForImageClassification
    else:
        loader = transformers.AutoModel
    transformers.logging.set_verbosity_error()
    return loader.from_pretrained(str(path), local_files_only=True, attn_implementation="eager").eval()


def load_subject(model_path: str, data: str, n_inputs: int = 512, seed: int = 0,
                 name: str | None = None) -> Subject:
    from ..vad.detector import shipped_model_path, shipped_models

    path = Path(model_path)
    if model_path in shipped_models():  # "default" or an earlier default kept by name
        path = shipped_model_path(model_path)
    if not path.exists():
        raise ConfigError(f"model not found: {model_path} (give 'default', an fdvad .safetensors, a NeMo .nemo "
                          "or a transformers model folder)")
    if name is None:
        name = path.stem if path.is_file() else path.name
    if path.is_dir() and (path / "config.json").is_file():
        model = _load_transformers(path)
        size = int(getattr(model.config, "image_size", 224))
        patch = int(getattr(model.config, "patch_size", 16))
        pixels, labels, classes = _image_batch(data, size, n_inputs, seed)
        with torch.no_grad():
            hidden = model(pixel_values=pixels[:1], output_hidden_states=True).hidden_states[-1]
        grid = size // patch
        prefix = hidden.shape[1] - grid * grid
        why = ""
        if not hasattr(model, "classifier"):
            labels, why = None, f"{name} has no classification head: no loss to draw a landscape of"
        elif labels is None:
            why = f"{data} has no class subfolders: no labels for a landscape"
        elif model.config.num_labels < len(classes):
            labels, why = None, f"{name} has {model.config.num_labels} labels, {data} has {len(classes)} classes"
        return Subject(name, model, "image", {"pixel_values": pixels}, labels, True, prefix,
                       positions_2d(grid, grid, patch), "px", why)
    from ..features import FeatureConfig, FeatureExtractor
    from ..models.checkpoint import load_model_file
    from ..models.transformer import AudioTransformer

    model, config = load_model_file(path, "model")
    features = FeatureExtractor(FeatureConfig.from_dict(config.get("features") or {})).eval()
    feats, labels = _audio_windows(data, features, n_inputs, seed)
    lengths = torch.full((len(feats),), feats.shape[2] - 1)  # 63 valid frames, as exact scoring
    is_transformer = isinstance(model, AudioTransformer)
    positions = None
    if is_transformer:
        p = model.config.patch_frames
        positions = positions_1d((feats.shape[2] - 1) // p, p * FRAME_MS)
    return Subject(name, model.eval(), "audio", (feats, lengths), labels, is_transformer, 1 if is_transformer else 0,
                   positions, "ms")

