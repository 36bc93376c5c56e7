"""The smallest real search the fake sd-scripts can train: two ranks, a narrow learning rate, 3 epochs.

Shared by the kohya executor tests and the chaos harness (``chaos.py``, imported with this folder on
``sys.path``), so both exercise the same space over the same base preset.
"""

from __future__ import annotations

TINY_SPACE = {
    "parameters": {
        "network_dim": {"kind": "categorical", "choices": [4, 8]},
        "network_alpha_ratio": {"kind": "float", "low": 0.25, "high": 0.5, "step": 0.25, "helper": True},
        "learning_rate": {"kind": "float", "low": 6e-5, "high": 9e-5, "log": True},
        "max_train_epochs": {"kind": "categorical", "choices": [3]},
    },
    "derived": {"network_alpha": {"rule": "int_product", "of": ["network_dim", "network_alpha_ratio"]}},
}
TINY_BASE = {
    "preset": {"name": "tiny_search_base", "family": "sd15"},
    "network": {"network_module": "networks.lora", "network_dim": 4, "network_alpha": 2},
    "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-4},
    "training": {"max_train_epochs": 3, "seed": 42, "train_batch_size": 1},
    "saving": {"save_model_as": "safetensors", "save_every_n_epochs": 1},
    "sample": {"sample_every_n_epochs": 1},
    "dataset": {"resolution": 64, "caption_extension": ".txt", "num_repeats": 1},
}
