#!/usr/bin/env bash
# Stop a training run gracefully (Ctrl-C to sd-scripts), killing it only after a timeout; run.json
# is completed with status "stopped". Thin wrapper over `lora-pipeline stop`:
#   scripts/training/stop_training.sh RUN_DIR [--timeout 120]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"
if [[ $# -eq 0 ]]; then
    echo "usage: $0 RUN_DIR [--timeout SECONDS]" >&2
    exit 2
fi
exec "${cli[@]}" stop "$@"
