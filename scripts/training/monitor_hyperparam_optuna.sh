#!/usr/bin/env bash
# Progress of the hyperparameter search: trials by state, best so far, each running trial's epoch,
# loss and last score. Thin wrapper over `lora-pipeline search status`:
#   scripts/training/monitor_hyperparam_optuna.sh [--output DIR] [--once] [--interval SECONDS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"

output="$root/outputs/luca_hyperparam_search"
interval=10
once=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --output) output="$2"; shift 2 ;;
        --interval) interval="$2"; shift 2 ;;
        --once) once=1; shift ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ "$once" -eq 1 ]]; then
    exec "${cli[@]}" search status "$output"
fi
exec "${cli[@]}" search status "$output" --watch "$interval"
