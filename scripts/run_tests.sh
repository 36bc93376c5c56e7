#!/usr/bin/env bash
# The test command of the README (and of CI): set up what the tests need, then run them all.
# Tests that need the real sd-scripts, chromium or PostgreSQL skip and say why when those are absent.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests || exit $?
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
