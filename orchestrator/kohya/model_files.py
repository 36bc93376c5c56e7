"""What a model or LoRA file is, from its safetensors header only (key names, shapes, metadata).

A FLUX.1 checkpoint given where SDXL is expected loads for minutes and then fails deep inside sd-scripts
with a key error; an SD1.5 LoRA given to a FLUX.1 generator loads with a warning and changes nothing. Both
are refused up front here: :func:`describe_model_file` reads the header (the first 8 bytes say its length;
no tensor is read) and names the family it looks like, and :func:`require_model_family` /
:func:`require_lora_family` turn a mismatch into a :class:`UserInputError` that says what the file looks like.

Key patterns (sd-scripts' loaders at the pinned commit and the files they read):
- FLUX.1 (BFL layout, as ``flux_utils.analyze_checkpoint_state`` reads it): ``double_blocks.N.*`` and
  ``single_blocks.N.*``, possibly under ``model.diffusion_model.``; Chroma has ``distilled_guidance_layer.*``
  where FLUX.1 has ``guidance_in.*``/``vector_in.*``;
- SD3/3.5 (``sd3_utils.analyze_state_dict_state``): ``joint_blocks.N.*``, possibly under ``model.diffusion_model.``;
- SDXL single file: ``model.diffusion_model.label_emb.*`` or ``conditioner.embedders.*``; SD1.5:
  ``model.diffusion_model.input_blocks.*`` with ``cond_stage_model.*`` and no ``label_emb``;
- LoRAs: each family's own key prefixes (:attr:`ModelFamily.lora_markers`), and sd-scripts' metadata
  ``ss_base_model_version`` / ``modelspec.architecture`` when present.
A diffusers folder is recognised by ``model_index.json``'s pipeline class.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from orchestrator.common.errors import UserInputError
from orchestrator.kohya.families import FAMILIES, ModelFamily

_MAX_HEADER_BYTES = 100 * 2**20  # a real header is a few MB; more means this is no safetensors file
_BLOCK = re.compile(r"(?:^|\.)(double_blocks|single_blocks|joint_blocks)\.(\d+)\.")
_PIPELINES = {"StableDiffusionPipeline": "sd15", "StableDiffusionXLPipeline": "sdxl", "FluxPipeline": "flux1",
              "StableDiffusion3Pipeline": "sd35", "ChromaPipeline": "chroma"}


@dataclass(frozen=True)
class FileLooks:
    """What a model file appears to be: ``family`` None when no rule matched."""

    path: Path
    family: str | None
    kind: str  # "model" | "lora" | "unknown"
    evidence: str  # for people: the keys or metadata that decided it

    def describe(self) -> str:
        if self.family is None:
            return f"{self.path} is no model file this tool recognises ({self.evidence})"
        label = FAMILIES[self.family].label
        return f"{self.path} looks like a {label} {'LoRA' if self.kind == 'lora' else 'model'} ({self.evidence})"


def read_safetensors_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Tensor names with their shapes, and the ``__metadata__`` table, of a ``.safetensors`` file."""
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", raw)
        if not 2 <= length <= _MAX_HEADER_BYTES:
            raise ValueError("not a safetensors file (header length out of range)")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (header is no JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    shapes = {name: tuple(entry.get("shape", ())) for name, entry in header.items() if isinstance(entry, dict)}
    return shapes, {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def _family_by_metadata(metadata: dict[str, str]) -> str | None:
    values = [metadata.get("ss_base_model_version", ""), metadata.get("modelspec.architecture", "")]
    for value in (v.lower() for v in values if v):
        # The most specific name first: "chroma" before "flux-1", "sdxl_base" before "sd".
        for family in sorted(FAMILIES.values(), key=lambda f: -max((len(m) for m in f.metadata_versions), default=0)):
            if any(value.startswith(version) for version in family.metadata_versions):
                return family.name
    return None


def _lora_family(keys: list[str]) -> tuple[str | None, str]:
    for family in FAMILIES.values():
        hits = [k for k in keys if k.startswith(family.lora_markers)]
        if hits:
            return family.name, f"keys such as {hits[0]}"
    return None, f"{len(keys)} tensors, none with a known LoRA prefix"


def _model_family(shapes: dict[str, tuple[int, ...]]) -> tuple[str | None, str]:
    blocks: dict[str, set[int]] = {}
    for key in shapes:
        if match := _BLOCK.search(key):
            blocks.setdefault(match[1], set()).add(int(match[2]))
    if "double_blocks" in blocks:
        chroma = any("distilled_guidance_layer" in k for k in shapes)
        counts = f"{len(blocks['double_blocks'])} double and {len(blocks.get('single_blocks', ()))} single blocks"
        return ("chroma" if chroma else "flux1"), f"a FLUX-style transformer: {counts}" + \
            (", distilled_guidance_layer" if chroma else "")
    if "joint_blocks" in blocks:
        width = next((s[0] for k, s in shapes.items() if k.endswith("x_embedder.proj.weight") and s), None)
        return "sd35", f"an MMDiT: {len(blocks['joint_blocks'])} joint blocks" + (f", width {width}" if width else "")
    if any(k.startswith(("model.diffusion_model.label_emb.", "conditioner.embedders.")) for k in shapes):
        return "sdxl", "a UNet with label_emb / conditioner.embedders (SDXL)"
    if any(k.startswith("model.diffusion_model.input_blocks.") for k in shapes):
        return "sd15", "a UNet with model.diffusion_model.input_blocks and no label_emb (SD1.x)"
    sample = ", ".join(list(shapes)[:3]) or "no tensors"
    return None, f"keys such as {sample}"


def describe_model_file(path: str | Path) -> FileLooks:
    """What ``path`` looks like; never raises for a readable path (an unknown file is ``family=None``)."""
    path = Path(path)
    if path.is_dir():
        index = path / "model_index.json"
        try:
            pipeline = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
        except (OSError, ValueError, AttributeError):
            return FileLooks(path, None, "unknown", "a folder without a readable model_index.json")
        return FileLooks(path, _PIPELINES.get(pipeline), "model", f"a diffusers folder of {pipeline or 'no pipeline'}")
    try:
        shapes, metadata = read_safetensors_header(path)
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as error:
        return FileLooks(path, None, "unknown", f"unreadable as safetensors: {error}")
    keys = list(shapes)
    if any(".lora_down." in k or ".lora_up." in k or ".lora_A." in k for k in keys[:2000]):
        by_keys, evidence = _lora_family(keys)
        by_metadata = _family_by_metadata(metadata)
        if by_metadata and by_metadata != by_keys and by_keys in (None, "flux1", "chroma"):
            # FLUX.1 and Chroma LoRAs share their keys; the metadata tells them apart.
            return FileLooks(path, by_metadata, "lora", f"ss_base_model_version {by_metadata}")
        return FileLooks(path, by_keys, "lora", evidence)
    family, evidence = _model_family(shapes)
    return FileLooks(path, family, "model", evidence)


def _compatible(found: str, family: ModelFamily) -> bool:
    # A Chroma and a FLUX.1 LoRA have the same key names: told apart only by metadata, so tolerate one another.
    flow = {"flux1", "chroma"}
    return found == family.name or (found in flow and family.name in flow)


def require_model_family(path: str | Path, family: ModelFamily, *, key: str, source: Path | None = None) -> None:
    """Refuse a local base model that is recognisably another family's; an unrecognised file passes."""
    looks = describe_model_file(path)
    if looks.family is not None and looks.kind == "model" and looks.family != family.name:
        raise UserInputError(f"{family.label} expected, but {looks.describe()}", path=source, key=key,
                             hint=f"point {key} at {family.base_model.what}")


def require_lora_family(path: str | Path, family: ModelFamily) -> None:
    """Refuse a LoRA that is recognisably another family's (e.g. an SD1.5 LoRA for a FLUX.1 evaluation)."""
    looks = describe_model_file(path)
    if looks.kind == "model" and looks.family is not None:
        raise UserInputError(f"a {family.label} LoRA expected, but {looks.describe()}", path=path)
    if looks.kind == "lora" and looks.family is not None and not _compatible(looks.family, family):
        raise UserInputError(f"a {family.label} LoRA expected, but {looks.describe()}", path=path,
                             hint=f"evaluate it with --family {looks.family}, or give a {family.label} run's LoRA")
