"""VLM back-ends: Qwen2-VL and Qwen2.5-VL through transformers, vision inputs through qwen-vl-utils.

A back-end answers one prompt for each image of a batch. Weights are a hub id
(``Qwen/Qwen2-VL-7B-Instruct``) or a local folder saved with ``save_pretrained``; both go through the
same ``from_pretrained`` call, so the tiny random model used by the tests and the quickstart exercises
exactly the production path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from orchestrator.common.errors import UserInputError, one_line

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

#: Back-end name -> (transformers model class name, default hub id).
BACKENDS: dict[str, tuple[str, str]] = {
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "Qwen/Qwen2-VL-7B-Instruct"),
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen/Qwen2.5-VL-7B-Instruct"),
}

# 512 visual tokens of 28x28 pixels: enough detail for pose and expression on a 1024px frame, and the
# VRAM of a 7B model stays under 24 GiB at batch 8.
DEFAULT_MAX_PIXELS = 512 * 28 * 28
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_NEW_TOKENS = 96


class CaptionBackend(Protocol):
    """Anything that answers ``prompt`` for each image (the runner needs nothing else)."""

    name: str

    def describe(self, images: list[Image.Image], prompt: str) -> list[str]: ...


def build_messages(image: Image.Image | str, prompt: str, *, min_pixels: int = DEFAULT_MIN_PIXELS,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> list[dict]:
    """The chat sent for one image, in the qwen-vl-utils message format."""
    return [{
        "role": "user",
        "content": [
            {"type": "image", "image": image, "min_pixels": min_pixels, "max_pixels": max_pixels},
            {"type": "text", "text": prompt},
        ],
    }]


@dataclass
class QwenVLBackend:
    """A loaded Qwen VL model and processor; :meth:`describe` runs one batched greedy ``generate``."""

    name: str
    weights: str
    model: object
    processor: object
    device: str
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS

    def prepare(self, images: list[Image.Image], prompt: str) -> dict:
        """Tokenised, left-padded model inputs for a batch (chat template + vision patches)."""
        from qwen_vl_utils import process_vision_info

        conversations = [build_messages(image, prompt, min_pixels=self.min_pixels,
                                        max_pixels=self.max_pixels) for image in images]
        texts = [
            self.processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            for conv in conversations
        ]
        patch_size = int(getattr(self.processor.image_processor, "patch_size", 14))
        image_inputs, _ = process_vision_info(conversations, image_patch_size=patch_size)
        inputs = self.processor(text=texts, images=image_inputs, padding=True, return_tensors="pt")
        return inputs.to(self.device)

    def generate(self, inputs: dict) -> list[str]:
        """Greedy decoding; returns only the new text of each row."""
        import torch

        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True,
                                           clean_up_tokenization_spaces=False)

    def describe(self, images: list[Image.Image], prompt: str) -> list[str]:
        return self.generate(self.prepare(images, prompt))


def resolve_weights(backend: str, weights: str | None) -> tuple[str, bool]:
    """``(weights, is_local)``: a default hub id, an existing folder, or a hub id; else a clear error."""
    if backend not in BACKENDS:
        raise UserInputError(f"unknown caption model {backend!r}; choose one of {sorted(BACKENDS)}",
                             key="model")
    if not weights:
        return BACKENDS[backend][1], False
    local = Path(weights).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise UserInputError("not a saved model folder (no config.json)", path=local)
        return str(local), True
    # "org/name" is a hub id; anything else that looks like a path is a path that is missing.
    looks_like_path = weights.startswith(("/", ".", "~")) or weights.count("/") != 1 or "\\" in weights
    if looks_like_path:
        raise UserInputError("model path does not exist", path=local,
                             hint="pass an existing folder saved with save_pretrained, or a hub id")
    return weights, False


def load_qwen_backend(backend: str = "qwen2_vl", weights: str | None = None, *, device: str = "cpu",
                      max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, min_pixels: int = DEFAULT_MIN_PIXELS,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> QwenVLBackend:
    """Load model and processor with ``from_pretrained`` (hub id or local folder)."""
    import torch
    import transformers

    resolved, is_local = resolve_weights(backend, weights)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError("CUDA is not available on this machine", key="device", hint="use --device cpu")
    model_class = getattr(transformers, BACKENDS[backend][0])
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        config = transformers.AutoConfig.from_pretrained(resolved)
        # The image budget is set per message (qwen-vl-utils resizes), not on the processor.
        processor = transformers.AutoProcessor.from_pretrained(resolved)
        if config.model_type != backend:
            raise UserInputError(
                f"these weights are a {config.model_type!r} model, not {backend!r}",
                path=resolved if is_local else None, key=None if is_local else "weights",
                hint=f"pass --model {config.model_type}" if config.model_type in BACKENDS else None,
            )
        model = model_class.from_pretrained(resolved, dtype=dtype)
    except OSError as error:
        if is_local:
            raise UserInputError(f"cannot load the model: {one_line(error)}", path=resolved) from error
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        reason = ("HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache" if offline
                  else f"it is not in the local cache and could not be downloaded ({_first_line(error)})")
        raise UserInputError(
            f"cannot load hub model {resolved!r}: {reason}", key="weights",
            hint=f"download it where there is network (huggingface-cli download {resolved}) and pass "
            "--weights PATH",
        ) from error
    # Batched generation appends new tokens on the right, so prompts must be padded on the left.
    processor.tokenizer.padding_side = "left"
    model.to(device).eval()
    log.info("loaded %s weights %s on %s", backend, resolved, device)
    return QwenVLBackend(name=backend, weights=resolved, model=model, processor=processor, device=device,
                         max_new_tokens=max_new_tokens, min_pixels=min_pixels, max_pixels=max_pixels)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
