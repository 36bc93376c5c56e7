#!/usr/bin/env bash
# One command for a fresh Linux machine; safe to run again (every step checks before it acts).
#   bash scripts/setup.sh            orchestrator env (.venv) + trainer env (.venv-trainer) + doctor
#   bash scripts/setup.sh --tests    also the system packages the test suite uses (chromium, postgresql)
# Environment: PYTHON (default python3), LORA_PIPELINE_SD_SCRIPTS (a local sd-scripts instead of the
# submodule), TORCH_SPEC (default "torch==2.14.1 torchvision==0.29.1").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
PINNED_SD_SCRIPTS=48d368fa557731ad0488c07304dfeba8c07910eb
WITH_TESTS=0
[ "${1:-}" = "--tests" ] && WITH_TESTS=1

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
have_torch() {  # $1 = python; true when the pinned torch + torchvision already import
  "$1" - "$TORCH_SPEC" <<'PY' 2>/dev/null
import sys, torch, torchvision
want = dict(s.split("==") for s in sys.argv[1].split())
ok = torch.__version__.split("+")[0] == want["torch"] and torchvision.__version__.split("+")[0] == want["torchvision"]
sys.exit(0 if ok else 1)
PY
}

apt_install() {  # install missing Debian packages when root; otherwise say what to run
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if is_root && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing system packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
  fi
}

say "orchestrator environment (.venv): evaluation, captioning, search"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# shellcheck disable=SC2086
have_torch .venv/bin/python || .venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q -e ".[all,dev]"

say "tmux (training runs live in tmux sessions)"
command -v tmux >/dev/null || apt_install tmux
if [ "$WITH_TESTS" = 1 ]; then
  say "system packages for the tests (headless chromium for the HTML pages, PostgreSQL for shared studies)"
  apt_install chromium postgresql
fi

say "sd-scripts (git submodule pinned to ${PINNED_SD_SCRIPTS:0:10})"
# Without GitHub (CI, offline machines) the export of the pinned commit beside the checkout is used instead:
# copied to a writable, git-ignored folder, since sd-scripts' requirements.txt installs it in place ("-e .").
SHARED_EXPORT=${LORA_PIPELINE_SD_SCRIPTS_EXPORT:-$ROOT/../shared/sd-scripts-48d368fa}  # the pinned commit
LOCAL_EXPORT=$ROOT/.cache/sd-scripts
SD_SCRIPTS=${LORA_PIPELINE_SD_SCRIPTS:-$ROOT/sd-scripts}
if [ ! -f "$SD_SCRIPTS/train_network.py" ] && [ -z "${LORA_PIPELINE_SD_SCRIPTS:-}" ]; then
  if [ -f "$SHARED_EXPORT/train_network.py" ] \
     && [ "$(cat "$SHARED_EXPORT/.lora_pipeline_commit" 2>/dev/null)" = "$PINNED_SD_SCRIPTS" ]; then
    if [ "$(cat "$LOCAL_EXPORT/.lora_pipeline_commit" 2>/dev/null)" != "$PINNED_SD_SCRIPTS" ]; then
      rm -rf "$LOCAL_EXPORT.partial" && mkdir -p "$ROOT/.cache"
      cp -r "$SHARED_EXPORT" "$LOCAL_EXPORT.partial" && chmod -R u+w "$LOCAL_EXPORT.partial"
      rm -rf "$LOCAL_EXPORT" && mv "$LOCAL_EXPORT.partial" "$LOCAL_EXPORT"
    fi
    echo "using the export of the pinned commit: $SHARED_EXPORT, copied to $LOCAL_EXPORT"
    SD_SCRIPTS=$LOCAL_EXPORT
  elif ! timeout 300 git submodule update --init sd-scripts 2>/tmp/lora-pipeline-submodule.err; then
    echo "could not fetch sd-scripts from GitHub ($(tail -n 1 /tmp/lora-pipeline-submodule.err))."
    echo "Without it nothing can be trained. Either run 'git submodule update --init' where GitHub is"
    echo "reachable, or get kohya-ss/sd-scripts at commit $PINNED_SD_SCRIPTS some other way and"
    echo "export LORA_PIPELINE_SD_SCRIPTS=/path/to/it before running this script again."
  fi
fi

if [ -f "$SD_SCRIPTS/train_network.py" ]; then
  say "trainer environment (.venv-trainer): sd-scripts' own pinned requirements"
  [ -x .venv-trainer/bin/python ] || "$PYTHON" -m venv .venv-trainer
  .venv-trainer/bin/python -m pip install -q --upgrade pip
  # shellcheck disable=SC2086
  have_torch .venv-trainer/bin/python || .venv-trainer/bin/python -m pip install -q $TORCH_SPEC
  # requirements.txt ends with "-e ." (sd-scripts' library package): install from inside the checkout.
  (cd "$SD_SCRIPTS" && "$ROOT/.venv-trainer/bin/python" -m pip install -q -r requirements.txt)
else
  say "trainer environment skipped: no sd-scripts checkout at $SD_SCRIPTS (training commands will say so)"
fi

say "doctor"
.venv/bin/lora-pipeline doctor
