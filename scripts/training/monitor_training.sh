#!/usr/bin/env bash
# Live screen of a training run (progress, loss and its trend, s/it, ETA, epochs, checkpoints, samples,
# GPU/CPU/RAM). Thin wrapper over `lora-pipeline monitor`:
#   scripts/training/monitor_training.sh RUN_DIR [--once]
#   scripts/training/monitor_training.sh --session luca_lora_training [--once]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"
if [[ $# -eq 0 ]]; then
    set -- --session luca_lora_training
fi
exec "${cli[@]}" monitor "$@"
