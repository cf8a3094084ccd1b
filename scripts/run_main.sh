#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the main job.
# Until the two-stage recipe lands, the main job is the actor-system tour.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec ./build/examples/actor_system/actor_system "$@"
