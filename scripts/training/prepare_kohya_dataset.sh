#!/usr/bin/env bash
# Thin wrapper with the guide's flags around `lora-pipeline dataset prepare`:
#   scripts/training/prepare_kohya_dataset.sh --source-dir DIR --output-dir DIR [--repeat 10] [--name luca] [--validate]
# Builds OUTPUT_DIR/{repeat}_{name}/ (images + same-stem .txt captions); --validate checks it afterwards.
set -euo pipefail

usage() {
    echo "usage: $0 --source-dir DIR --output-dir DIR [--repeat N] [--name NAME] [--validate] [--overwrite]" >&2
    exit 2
}

source_dir="" output_dir="" repeat=10 name="luca"
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --source-dir) [[ $# -ge 2 ]] || usage; source_dir="$2"; shift 2 ;;
        --output-dir) [[ $# -ge 2 ]] || usage; output_dir="$2"; shift 2 ;;
        --repeat) [[ $# -ge 2 ]] || usage; repeat="$2"; shift 2 ;;
        --name) [[ $# -ge 2 ]] || usage; name="$2"; shift 2 ;;
        --validate) extra+=(--validate); shift ;;
        --overwrite) extra+=(--overwrite); shift ;;
        -h|--help) usage ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done
[[ -n "$source_dir" && -n "$output_dir" ]] || usage

# shellcheck source=scripts/training/_cli.sh
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"
exec "${cli[@]}" dataset prepare "$source_dir" --out "$output_dir" --repeat "$repeat" --name "$name" "${extra[@]}"
