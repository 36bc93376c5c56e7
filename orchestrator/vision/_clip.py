"""open_clip models behind one small object: load, preprocess, embed images and texts.

``weights`` is an open_clip pretrained tag (``"openai"``), a local checkpoint file, or ``"random"``
(seeded random init, no download: tests and the quickstart). The ``tiny-clip`` architecture
(``model_configs/tiny-clip.json``: 32-d embeddings, 64 px input, average-pooled patch tokens so
that random weights still separate different images) is registered with open_clip so
those run a real open_clip model on CPU in milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from orchestrator.common.errors import UserInputError, one_line
from orchestrator.common.hashing import file_sha256

if TYPE_CHECKING:
    import torch

TINY_MODEL_NAME = "tiny-clip"
RANDOM_WEIGHTS = "random"
_RANDOM_SEED = 0
_CONFIG_DIR = Path(__file__).with_name("model_configs")
_registered = False


def register_model_configs() -> None:
    """Make our own architectures (``tiny-clip``) known to open_clip; idempotent."""
    global _registered
    if _registered:
        return
    import open_clip

    open_clip.add_model_config(_CONFIG_DIR)
    _registered = True


class ClipEncoder:
    """A loaded open_clip model. ``identity`` names model + weights exactly (the cache key)."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, *, identity: str, device: str) -> None:
        self.model = model
        self.preprocess = preprocess  # PIL.Image -> (3, S, S) float tensor
        self.tokenizer = tokenizer
        self.identity = identity
        self.device = device

    def __repr__(self) -> str:
        return f"ClipEncoder({self.identity!r}, device={self.device!r})"

    def embed_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a preprocessed (B, 3, S, S) batch: L2-normalised float32 rows (B, D)."""
        import torch

        with torch.inference_mode():
            features = self.model.encode_image(batch.to(self.device, non_blocking=True))
            features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    def embed_images(self, images: Iterable[Image.Image], *, batch_size: int = 32) -> np.ndarray:
        """Embed RGB images: L2-normalised float32 rows (N, D), in input order."""
        import torch

        rows = [self.embed_tensors(torch.stack(chunk)) for chunk in _chunks(
            (self.preprocess(image.convert("RGB")) for image in images), batch_size)]
        return np.concatenate(rows) if rows else np.zeros((0, self.embedding_dim), dtype=np.float32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Embed texts: L2-normalised float32 rows (N, D)."""
        import torch

        if not texts:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        with torch.inference_mode():
            features = self.model.encode_text(self.tokenizer(list(texts)).to(self.device))
            features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    @property
    def embedding_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") and \
            self.model.text_projection is not None else int(self.model.visual.output_dim)


def load_clip(model_name: str = "ViT-L-14", weights: str = "openai", *, device: str = "cpu") -> ClipEncoder:
    """Load an open_clip model for embedding.

    ``weights``: a pretrained tag for ``model_name`` (e.g. ``"openai"``), a local checkpoint path,
    or ``"random"`` (seeded, deterministic random init; no download). Raises ``UserInputError``
    for an unknown model or tag, a missing checkpoint file, or a tag that cannot be fetched offline
    (the message says to pass a local file with ``--clip-weights PATH``).
    """
    import open_clip
    import torch

    register_model_configs()
    if open_clip.get_model_config(model_name) is None:
        known = ", ".join(open_clip.list_models()[:12])
        raise UserInputError(f"unknown open_clip model {model_name!r}", key="clip_model",
                             hint=f"known include: {known}, ... and {TINY_MODEL_NAME}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError("CUDA requested but torch sees no GPU", key="device", hint="use --device cpu")
    config_digest = hashlib.sha256(
        json.dumps(open_clip.get_model_config(model_name), sort_keys=True).encode()).hexdigest()[:12]
    if weights == RANDOM_WEIGHTS:
        with torch.random.fork_rng(devices=[]), _quiet_open_clip():
            torch.manual_seed(_RANDOM_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
        weights_identity = f"random(seed={_RANDOM_SEED},torch={torch.__version__.split('+')[0]})"
    elif _looks_like_path(weights):
        checkpoint = Path(weights).expanduser()
        if not checkpoint.is_file():
            raise UserInputError("CLIP checkpoint file not found", path=checkpoint, key="clip_weights")
        try:
            with _quiet_open_clip():
                model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=str(checkpoint))
        except Exception as error:  # open_clip raises RuntimeError/KeyError for a mismatched file
            raise UserInputError(f"cannot load this checkpoint into {model_name}: {one_line(error)}", path=checkpoint,
                                 key="clip_weights") from error
        weights_identity = "sha256:" + file_sha256(checkpoint)[:16]
    else:
        model, preprocess = _load_pretrained_tag(model_name, weights)
        weights_identity = weights
    model = model.to(device).eval()
    identity = f"open_clip:{model_name}[{config_digest}]:{weights_identity}"
    with _quiet_open_clip():
        tokenizer = open_clip.get_tokenizer(model_name)
    return ClipEncoder(model, preprocess, tokenizer, identity=identity, device=device)


def _load_pretrained_tag(model_name: str, tag: str) -> tuple[Any, Any]:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if tag not in tags:
        raise UserInputError(
            f"{model_name} has no pretrained tag {tag!r}", key="clip_weights",
            hint=f"known tags: {', '.join(tags) or 'none'}; or pass a local checkpoint path, or 'random'")
    try:
        with _quiet_open_clip():
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=tag)
    except Exception as error:  # offline: huggingface_hub / urllib errors wrapped in RuntimeError
        raise UserInputError(
            f"could not fetch CLIP weights {model_name}/{tag} (offline or not cached): {error}",
            key="clip_weights",
            hint="download the checkpoint on a connected machine (open_clip_pytorch_model.bin or .safetensors) "
            "and pass it with --clip-weights PATH",
        ) from error
    return model, preprocess


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """open_clip narrates every step on the *root* logger; its failures reach us as exceptions anyway."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(previous)


def _looks_like_path(weights: str) -> bool:
    return "/" in weights or "\\" in weights or weights.startswith(("~", ".")) or \
        weights.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
