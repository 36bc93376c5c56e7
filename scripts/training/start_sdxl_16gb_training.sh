#!/usr/bin/env bash
# SDXL LoRA on a 16 GB GPU: VRAM check, dataset verification, base model download when missing, then
# `lora-pipeline train sdxl_16gb_optimized` in tmux.
#   scripts/training/start_sdxl_16gb_training.sh [--dataset-dir DIR] [--session NAME] [-- extra `train` options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"

dataset_dir="${LORA_PIPELINE_DATASET_DIR:-$root/data/kohya}"
session="luca_sdxl_training"
model="${LORA_PIPELINE_BASE_MODEL_SDXL:-stabilityai/stable-diffusion-xl-base-1.0}"
min_vram_gb=16
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dataset-dir) dataset_dir="$2"; shift 2 ;;
        --session) session="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
python="${root}/.venv/bin/python"
[[ -x "$python" ]] || python=python3

# 1. VRAM: the largest GPU's total memory must reach 16 GB (free memory is checked again at pre-flight).
"$python" - "$min_vram_gb" <<'PY'
import sys
need = float(sys.argv[1])
try:
    import pynvml
    pynvml.nvmlInit()
    totals = [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total / 2**30
              for i in range(pynvml.nvmlDeviceGetCount())]
except Exception as error:  # no driver
    sys.exit(f"VRAM check: no NVIDIA GPU ({type(error).__name__}); SDXL training needs ≥ {need:g} GB")
if not totals or max(totals) + 0.5 < need:
    sys.exit(f"VRAM check: largest GPU has {max(totals or [0]):.1f} GB; SDXL training needs ≥ {need:g} GB")
print(f"VRAM check: {max(totals):.1f} GB ≥ {need:g} GB")
PY

# 2. The dataset: images = captions, none corrupt, kohya layout.
"${cli[@]}" dataset validate "$dataset_dir"

# 3. The base model: a local path must exist; a hub id is fetched when online and not cached yet.
if [[ "$model" == /* || "$model" == .* ]]; then
    [[ -e "$model" ]] || { echo "base model not found: $model" >&2; exit 1; }
else
    "$python" - "$model" <<'PY'
import sys
from huggingface_hub import snapshot_download
model = sys.argv[1]
try:
    path = snapshot_download(model, local_files_only=True)
    print(f"base model: {model} is in the Hugging Face cache ({path})")
except Exception:
    try:
        path = snapshot_download(model, allow_patterns=["*.json", "*.txt", "*.safetensors"],
                                 ignore_patterns=["*.fp16.*", "*refiner*"])
        print(f"base model: downloaded {model} to {path}")
    except Exception as error:
        sys.exit(f"base model: {model} is not cached and cannot be downloaded ({type(error).__name__}: "
                 f"{error}); set LORA_PIPELINE_BASE_MODEL_SDXL to a local file or folder")
PY
fi

# 4. Train (pre-flight checks free VRAM and disk again).
"${cli[@]}" train sdxl_16gb_optimized --session "$session" "${extra[@]}"
echo
echo "attach:  tmux attach -t $session"
echo "monitor: scripts/training/monitor_training.sh --session $session"
