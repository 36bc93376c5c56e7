"""DINOv2 image embeddings for the identity metric (optional; CLIP stays the default).

DINOv2 is trained without text, on image self-similarity, so it separates individuals of one class
better than CLIP (DreamBooth reports both: CLIP-I and DINO). :class:`DinoEncoder` offers what
``orchestrator.vision.embed_files`` needs of an encoder (``identity``, ``preprocess``,
``embed_tensors``, ``embedding_dim``), so DINO embeddings use the same cache and the same
identity rule as CLIP ones.

``weights``: a hub id (``facebook/dinov2-small``), a local model folder, or ``"random"`` (a tiny
seeded random model for tests). The embedding is the final layer-normed CLS token, L2-normalised.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.common.errors import UserInputError

_RANDOM_SEED = 0
#: A tiny DINOv2 architecture for tests and the offline quickstart (64 px, 32-d).
TINY_DINO_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                    "image_size": 64, "patch_size": 16}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class DinoEncoder:
    def __init__(self, model: Any, *, image_size: int, identity: str, device: str) -> None:
        from torchvision import transforms

        self.model = model
        self.identity = identity
        self.device = device
        # DINOv2's own evaluation transform: resize the short side to 256/224 of the crop, centre crop.
        self.preprocess = transforms.Compose([
            transforms.Resize(round(image_size * 256 / 224), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(_IMAGENET_MEAN, _IMAGENET_STD),
        ])

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def embed_tensors(self, batch: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            output = self.model(pixel_values=batch.to(self.device))
            features = torch.nn.functional.normalize(output.pooler_output.float(), dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)


def load_dino(weights: str = "facebook/dinov2-small", *, device: str = "cpu") -> DinoEncoder:
    """Load DINOv2 from a hub id, a local folder, or ``"random"`` (tiny, seeded); clear error offline."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    if weights == "random":
        config = Dinov2Config(**TINY_DINO_CONFIG)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_RANDOM_SEED)
            model = Dinov2Model(config)
        digest = hashlib.sha256(json.dumps(TINY_DINO_CONFIG, sort_keys=True).encode()).hexdigest()[:12]
        identity = f"dinov2:tiny[{digest}]:random(seed={_RANDOM_SEED})"
    else:
        local = Path(weights).expanduser()
        try:
            model = Dinov2Model.from_pretrained(str(local) if local.exists() else weights)
        except (OSError, ValueError) as error:
            raise UserInputError(
                f"could not load DINOv2 weights {weights!r} (offline or not cached): {error}", key="dino_weights",
                hint="download e.g. facebook/dinov2-small on a connected machine and pass its folder") from error
        identity = f"dinov2:{weights}"
    model = model.to(device).eval()
    return DinoEncoder(model, image_size=int(model.config.image_size if weights == "random" else 224),
                       identity=identity, device=device)
