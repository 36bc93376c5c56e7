#!/usr/bin/env python
"""The guide's caption command, kept as a thin wrapper over `lora-pipeline caption`.

    python scripts/training/regenerate_captions_vlm.py --image-dir data/kohya/10_luca \
        --character-profile configs/characters/luca.yaml --model Qwen/Qwen2-VL-7B-Instruct --device cuda

--model takes a back-end name (qwen2_vl, qwen2_5_vl) or weights (hub id or local folder; a name with
"2.5"/"2_5" in it selects Qwen2.5-VL). Other flags (--batch-size, --overwrite, --dry-run, ...) pass through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from orchestrator.captions.backends import BACKENDS  # noqa: E402
from orchestrator.cli import main as lora_pipeline  # noqa: E402


def translate(argv: list[str]) -> list[str]:
    """The guide's flags -> `lora-pipeline caption` arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--model", default="qwen2_vl", help="qwen2_vl, qwen2_5_vl, a hub id or a folder")
    parser.add_argument("--character-profile", required=True)
    parser.add_argument("--device", default=None)
    known, passthrough = parser.parse_known_args(argv)
    args = ["caption", known.image_dir, "--profile", known.character_profile]
    if known.model in BACKENDS:
        args += ["--model", known.model]
    else:
        family = "qwen2_5_vl" if any(tag in known.model.lower() for tag in ("2.5", "2_5")) else "qwen2_vl"
        args += ["--model", family, "--weights", known.model]
    if known.output_dir:
        args += ["--output-dir", known.output_dir]
    if known.device:
        args += ["--device", known.device]
    return args + passthrough


if __name__ == "__main__":
    sys.exit(lora_pipeline(translate(sys.argv[1:])))
