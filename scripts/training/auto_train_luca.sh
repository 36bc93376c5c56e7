#!/usr/bin/env bash
# Wait for captioning to finish, validate the dataset, then train the Luca LoRA in tmux.
#   scripts/training/auto_train_luca.sh [--dataset-dir DIR] [--preset NAME] [--session NAME]
#                                      [--poll SECONDS] [--max-wait SECONDS] [-- extra `train` options]
# Polls every 60 s until every image in the dataset folder has its .txt caption, runs
# `lora-pipeline dataset validate`, starts `lora-pipeline train PRESET --session luca_lora_training`
# and prints how to attach and monitor.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"

dataset_dir="${LORA_PIPELINE_DATASET_DIR:-$root/data/kohya}"
preset="luca_final_v1_pure"
session="luca_lora_training"
poll=60
max_wait=0   # 0: wait as long as it takes
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dataset-dir) dataset_dir="$2"; shift 2 ;;
        --preset) preset="$2"; shift 2 ;;
        --session) session="$2"; shift 2 ;;
        --poll) poll="$2"; shift 2 ;;
        --max-wait) max_wait="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

count() {  # count FILES matching the find expression under the dataset folder
    find "$dataset_dir" -type f \( "$@" \) 2>/dev/null | wc -l
}

[[ -d "$dataset_dir" ]] || { echo "dataset folder not found: $dataset_dir" >&2; exit 1; }
waited=0
while :; do
    images=$(count -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.webp')
    captions=$(count -iname '*.txt')
    echo "$(date '+%H:%M:%S') captions ${captions}/${images}"
    if [[ "$images" -gt 0 && "$captions" -ge "$images" ]]; then
        break
    fi
    if [[ "$max_wait" -gt 0 && "$waited" -ge "$max_wait" ]]; then
        echo "captioning did not finish within ${max_wait}s" >&2
        exit 1
    fi
    sleep "$poll"
    waited=$((waited + poll))
done

"${cli[@]}" dataset validate "$dataset_dir"
"${cli[@]}" train "$preset" --session "$session" "${extra[@]}"
echo
echo "attach:  tmux attach -t $session      (detach again with Ctrl-b d)"
echo "monitor: scripts/training/monitor_training.sh --session $session"
