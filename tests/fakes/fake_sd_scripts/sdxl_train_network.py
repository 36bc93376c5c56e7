"""Test double of sd-scripts' sdxl_train_network.py: see fake_trainer.py."""

import sys

from fake_trainer import main

if __name__ == "__main__":
    sys.exit(main("sdxl_train_network.py"))
