"""Test double of sd-scripts' train_network.py: see fake_trainer.py."""

import sys

from fake_trainer import main

if __name__ == "__main__":
    sys.exit(main("train_network.py"))
