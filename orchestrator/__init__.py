"""lora-pipeline: frames in, best character LoRA out, around kohya-ss sd-scripts."""

__version__ = "0.1.0"
