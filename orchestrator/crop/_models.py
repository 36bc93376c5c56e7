"""The detector and the segmenter, behind two small protocols so tests can plug their own.

- :class:`OwlDetector`: OWLv2 (``Owlv2ForObjectDetection`` through transformers), open-vocabulary:
  candidate boxes for text queries. ``"random"`` builds a tiny random-weight OWLv2 from a config
  (``"random-base"`` the real base architecture, for benches); a folder path loads saved weights.
- :class:`SamSegmenter`: SAM (``SamModel``) prompted by a box: the character's mask inside it.

A detector is anything with ``detect(images, queries) -> list[list[Detection]]``; a segmenter anything
with ``segment(image, box) -> bool array (H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from orchestrator.common.errors import UserInputError, one_line
from orchestrator.crop._geometry import Box

RANDOM = "random"
_RANDOM_SEED = 0
_TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float
    query: str


class Detector(Protocol):
    identity: str

    def detect(self, images: list[Image.Image], queries: list[str]) -> list[list[Detection]]: ...


class Segmenter(Protocol):
    identity: str

    def segment(self, image: Image.Image, box: Box) -> np.ndarray: ...


class OwlDetector:
    """OWLv2 boxes for text queries: per image, every predicted box whose best query scores above
    ``threshold``, after non-maximum suppression at ``nms_iou``, best first."""

    def __init__(self, model: Any, processor: Any, *, identity: str, device: str = "cpu",
                 threshold: float = 0.1, nms_iou: float = 0.5) -> None:
        self.model, self.processor, self.identity, self.device = model, processor, identity, device
        self.threshold, self.nms_iou = threshold, nms_iou
        self._tokens: dict[tuple[str, ...], dict[str, Any]] = {}

    def _query_tokens(self, queries: list[str]) -> dict[str, Any]:
        """The queries' token ids, once per set of queries (the same words go with every image)."""
        key = tuple(queries)
        if key not in self._tokens:
            tokens = self.processor.tokenizer(list(queries), return_tensors="pt", padding="max_length",
                                              truncation=True,
                                              max_length=self.model.config.text_config.max_position_embeddings)
            self._tokens[key] = {k: v.to(self.device) for k, v in tokens.items()}
        return self._tokens[key]

    def inputs(self, images: list[Image.Image], queries: list[str]) -> dict[str, Any]:
        """The model's inputs for ``images`` (the raw forward pass's input, for benches): per image its
        pixels and the queries' tokens, as the processor lays them out (images x queries rows)."""
        side = int(self.model.config.vision_config.image_size)
        pixels = self.processor.image_processor(images=[model_square(i, side) for i in images],
                                                return_tensors="pt")["pixel_values"]
        tokens = self._query_tokens(queries)
        return {"pixel_values": pixels.to(self.device),
                **{k: v.repeat(len(images), 1) for k, v in tokens.items()}}

    def detect(self, images: list[Image.Image], queries: list[str]) -> list[list[Detection]]:
        import torch
        from torchvision.ops import nms

        if not images:
            return []
        with torch.inference_mode():
            outputs = self.model(**self.inputs(images, queries))
        scores, labels = torch.sigmoid(outputs.logits.float()).max(dim=-1)
        centre, size = outputs.pred_boxes[..., :2].float(), outputs.pred_boxes[..., 2:].float()
        corners = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
        results = []
        for index, image in enumerate(images):
            # OWLv2 pads each image to a square at the bottom/right: boxes are fractions of that square.
            side = float(max(image.size))
            boxes = corners[index] * side
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image.width)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image.height)
            keep = scores[index] > self.threshold
            kept_boxes, kept_scores, kept_labels = boxes[keep], scores[index][keep], labels[index][keep]
            order = nms(kept_boxes, kept_scores, self.nms_iou)
            found = zip(kept_boxes[order].tolist(), kept_scores[order].tolist(), kept_labels[order].tolist(),
                        strict=True)
            results.append([Detection(Box(*box), score, queries[label]) for box, score, label in found])
        return results


def model_square(image: Image.Image, side: int) -> np.ndarray:
    """OWLv2's input geometry, made with OpenCV: padded with black at the bottom/right to a square, then
    scaled to ``side`` (an area filter when shrinking). The processor's own anti-aliasing is a Gaussian
    convolution at full size, 20x the cost of the tiny model's forward pass; given a square of the model's
    size, the processor only normalizes."""
    import cv2

    pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest != side:  # scale the picture, not the padding: fewer pixels, the same square
        interpolation = cv2.INTER_AREA if longest > side else cv2.INTER_LINEAR
        scaled = (max(1, round(width * side / longest)), max(1, round(height * side / longest)))
        pixels = cv2.resize(pixels, scaled, interpolation=interpolation)
        height, width = pixels.shape[:2]
    square = np.zeros((side, side, 3), dtype=np.uint8)
    square[:height, :width] = pixels
    return square


class SamSegmenter:
    """SAM prompted by one box: the best of its mask proposals, at the image's size."""

    def __init__(self, model: Any, processor: Any, *, identity: str, device: str = "cpu") -> None:
        self.model, self.processor, self.identity, self.device = model, processor, identity, device

    def segment(self, image: Image.Image, box: Box) -> np.ndarray:
        import torch

        inputs = self.processor(images=image.convert("RGB"), input_boxes=[[box.as_list()]], return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs, multimask_output=False)
        masks = self.processor.image_processor.post_process_masks(
            outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())
        return masks[0][0, 0].numpy().astype(bool)


def _random_tokenizer(cache_dir: Path) -> Any:
    from transformers import CLIPTokenizer

    from orchestrator.vision.clip_tokenizer import build_clip_tokenizer_dir

    return CLIPTokenizer.from_pretrained(build_clip_tokenizer_dir(cache_dir))


def build_random_owlv2(cache_dir: str | Path, *, base: bool = False, device: str = "cpu",
                       threshold: float = 0.1) -> OwlDetector:
    """A random-weight OWLv2 built from a config, no download: tiny (128 px, one layer) or the real
    base architecture (``base=True``: ViT-B/16 at 960 px, for benches). The tokenizer is CLIP's, built
    offline from open_clip's BPE file into ``cache_dir``."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    if base:
        config = Owlv2Config()
    else:
        config = Owlv2Config(text_config={**_TINY, "max_position_embeddings": 16},
                             vision_config={**_TINY, "image_size": 128, "patch_size": 16}, projection_dim=32)
    side = config.vision_config.image_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_SEED)
        model = Owlv2ForObjectDetection(config).eval()
        if not base:
            # Random box heads predict degenerate boxes; zeroed, every box is its patch's anchor box.
            torch.nn.init.zeros_(model.box_head.dense2.weight)
            torch.nn.init.zeros_(model.box_head.dense2.bias)
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": side, "width": side}),
                               tokenizer=_random_tokenizer(Path(cache_dir)))
    name = "base" if base else "tiny"
    return OwlDetector(model.to(device), processor, identity=f"owlv2:{name}:random(seed={_RANDOM_SEED})",
                       device=device, threshold=threshold)


def build_random_sam(*, device: str = "cpu") -> SamSegmenter:
    """A tiny random-weight SAM built from a config (128 px): the segmentation code path, offline."""
    import torch
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    config = SamConfig(
        vision_config={**_TINY, "image_size": 128, "patch_size": 16, "output_channels": 32, "num_pos_feats": 16,
                       "window_size": 4, "global_attn_indexes": [0], "mlp_dim": 64},
        prompt_encoder_config={"hidden_size": 32, "image_size": 128, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                             "iou_head_hidden_dim": 32})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_SEED)
        model = SamModel(config).eval()
    processor = SamProcessor(image_processor=SamImageProcessor(size={"longest_edge": 128},
                                                               pad_size={"height": 128, "width": 128}))
    return SamSegmenter(model.to(device), processor, identity=f"sam:tiny:random(seed={_RANDOM_SEED})", device=device)


def load_detector(source: str, *, cache_dir: str | Path, device: str = "cpu", threshold: float = 0.1) -> OwlDetector:
    """``"random"`` (tiny), ``"random-base"``, or a folder saved with ``save_pretrained`` (e.g. a download of
    google/owlv2-base-patch16-ensemble)."""
    if source == RANDOM:
        return build_random_owlv2(cache_dir, device=device, threshold=threshold)
    if source == f"{RANDOM}-base":
        return build_random_owlv2(cache_dir, base=True, device=device, threshold=threshold)
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    folder = _model_folder(source, "detector")
    try:
        model = Owlv2ForObjectDetection.from_pretrained(folder, local_files_only=True).eval().to(device)
        processor = Owlv2Processor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise UserInputError(f"not an OWLv2 model folder: {one_line(error)}", path=folder, key="detector") from error
    return OwlDetector(model, processor, identity=f"owlv2:{folder.resolve()}", device=device, threshold=threshold)


def load_segmenter(source: str, *, device: str = "cpu") -> SamSegmenter:
    """``"random"`` (tiny) or a SAM folder saved with ``save_pretrained`` (e.g. facebook/sam-vit-base)."""
    if source == RANDOM:
        return build_random_sam(device=device)
    from transformers import SamModel, SamProcessor

    folder = _model_folder(source, "segmenter")
    try:
        model = SamModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        processor = SamProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise UserInputError(f"not a SAM model folder: {one_line(error)}", path=folder, key="segmenter") from error
    return SamSegmenter(model, processor, identity=f"sam:{folder.resolve()}", device=device)


def _model_folder(source: str, key: str) -> Path:
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise UserInputError("model folder not found (weights cannot be downloaded here)", path=folder, key=key,
                             hint=f"pass a folder saved with save_pretrained, or '{RANDOM}' for random weights")
    return folder
