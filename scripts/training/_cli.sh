# Sourced by the training scripts: finds the `lora-pipeline` command of this checkout.
# shellcheck shell=bash
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -x "$root/.venv/bin/lora-pipeline" ]]; then
    cli=("$root/.venv/bin/lora-pipeline")
elif command -v lora-pipeline >/dev/null 2>&1; then
    cli=(lora-pipeline)
else
    cli=(python3 -m orchestrator)
fi
