"""Captions: a character profile, a fixed template, a VLM for what varies, a resumable folder runner.

>>> from orchestrator.captions import caption_folder, load_profile, load_qwen_backend
>>> profile = load_profile("configs/characters/luca.yaml")                        # doctest: +SKIP
>>> backend = load_qwen_backend("qwen2_vl", "Qwen/Qwen2-VL-7B-Instruct", device="cuda")  # doctest: +SKIP
>>> report = caption_folder("data/frames", profile, backend=backend, batch_size=8)  # doctest: +SKIP

Offline (tests, quickstart): ``build_tiny_qwen2_vl(folder)`` saves a random-weight model to load instead.
"""

from orchestrator.captions.backends import BACKENDS, CaptionBackend, QwenVLBackend, load_qwen_backend
from orchestrator.captions.profile import DEFAULT_TEMPLATE, CharacterProfile, load_profile
from orchestrator.captions.runner import CaptionFailure, CaptionReport, caption_folder, plan_captions
from orchestrator.captions.scene import SCENE_FIELDS, SceneDescription, build_prompt, parse_scene
from orchestrator.captions.template import assemble_caption, normalise_caption
from orchestrator.captions.tiny_model import build_tiny_qwen2_vl
from orchestrator.captions.tokens import TokenCheck, check_token_lengths

__all__ = [
    "BACKENDS",
    "DEFAULT_TEMPLATE",
    "SCENE_FIELDS",
    "CaptionBackend",
    "CaptionFailure",
    "CaptionReport",
    "CharacterProfile",
    "QwenVLBackend",
    "SceneDescription",
    "TokenCheck",
    "assemble_caption",
    "build_prompt",
    "build_tiny_qwen2_vl",
    "caption_folder",
    "check_token_lengths",
    "load_profile",
    "load_qwen_backend",
    "normalise_caption",
    "parse_scene",
    "plan_captions",
]
