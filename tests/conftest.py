"""Project-wide test set-up: no test may reach the network, and real-sd-scripts fixtures are shared."""

import os

# Set before any test imports transformers / huggingface_hub / open_clip: nothing may be downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytest_plugins = ["tests.sd_scripts_support"]
