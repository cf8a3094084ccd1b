#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the main job: the two-stage
# recipe (SFT, then GSPO) on the built-in tiny model (examples/sft_then_gspo). Extra arguments go to
# the program (e.g. --set gspo_max_steps=20, --output runs/mine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec ./build/examples/sft_then_gspo/sft_then_gspo "$@"
