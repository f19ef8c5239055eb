#!/usr/bin/env bash
# The speed suite for one CUDA GPU (H100/H200 class), sized to finish in under 9 minutes,
# writing one Markdown file of tables to $OUT/gpu_suite.md:
#   1. one DQN update (2x256 MLP on the room observation): eager, compiled and CUDA-graph
#      replayed, at batch 64 to 65,536;
#   2. one hierarchical round (Ind-hDQN: four low-level steps and one high-level step),
#      eager, compiled and replayed;
#   3. time to solve room (greedy reward sum >= 0.95, mean length <= 40), Ind-hDQN and
#      hQmix, 3 seeds, replayed from CUDA graphs at 32 copies and at 1,024 copies
#      (batch 16,384); the eager figure to compare with is in docs/research/large_batches_room.md;
#   4. LB-SAC against SAC-N, wall clock to the same score, on a small HalfCheetah-v5
#      dataset collected here (needs the mujoco extra; skipped without it).
#
#   bash benchmarks/gpu_suite.sh
#   OUT=results STAGES="update round" bash benchmarks/gpu_suite.sh
#
# It installs the package (pip install -e ".[dev]") when hmarl does not import, or from
# WHEELS (a folder of wheels, no index) on a machine without a network. STAGES picks
# stages (default: update round room lbsac); each stage has a time limit that keeps the
# whole under 9 minutes, and a stage that runs out says so in the file.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_suite}
STAGES=${STAGES:-"update round room lbsac"}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYTHONUNBUFFERED=1
REPORT="$OUT/gpu_suite.md"
log() { echo "== $(date +%T) $*" >&2; }
wants() { [[ " $STAGES " == *" $1 "* ]]; }

if ! "$PYTHON" -c "import hmarl.envs, hmarl.trainers" 2>/dev/null; then
  log install
  if [[ -n "${WHEELS:-}" ]]; then
    "$PYTHON" -m pip install --no-deps --no-index -q "$WHEELS"/*.whl
    "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e .
  else
    "$PYTHON" -m pip install -q -e ".[dev]"
  fi
fi
if ! "$PYTHON" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "gpu_suite: $PYTHON needs torch with CUDA and a visible GPU" >&2
  exit 1
fi

# One stage: a title, a time limit (seconds) and a command whose stdout goes in the report.
stage() {
  local title=$1 limit=$2
  shift 2
  log "$title"
  {
    echo
    echo "## $title"
    echo
    echo '```'
    echo "\$ $*"
    timeout "$limit" "$@" 2>"$OUT/last_stage.err"
    local status=$?
    [[ $status == 124 ]] && echo "(stopped at its ${limit} s limit)"
    [[ $status != 0 && $status != 124 ]] && { echo "(failed with status $status)"; tail -5 "$OUT/last_stage.err"; }
    echo '```'
  } >>"$REPORT"
}

{
  echo "# GPU suite"
  echo
  "$PYTHON" - <<'PY'
import torch
print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
} >"$REPORT"

if wants update; then
  stage "DQN update: eager, compiled, replayed from CUDA graphs" 120 \
    "$PYTHON" benchmarks/update_throughput.py --devices cuda --batch-sizes 64 1024 16384 65536 \
    --modes none default default+graphs --repeats 3 --seconds 0.3
fi
if wants round; then
  stage "Hierarchical round (Ind-hDQN on room)" 75 \
    "$PYTHON" benchmarks/hier_round.py --device cuda --modes none default default+graphs --fill-steps 5000 --rounds 20 --repeats 3
fi
if wants room; then
  for trainer in ind_hdqn hqmix; do
    stage "Time to solve room, $trainer, 3 seeds" 110 \
      "$PYTHON" benchmarks/room_speed.py --device cuda --trainer "$trainer" --seeds 3 \
      --configs graphs wide1024_graphs --out "$OUT/room_speed_$trainer.jsonl" --root "$OUT/room_speed"
  done
fi
if wants lbsac; then
  if "$PYTHON" -c "import mujoco" 2>/dev/null; then
    stage "LB-SAC against SAC-N, wall clock to the same score" 90 \
      "$PYTHON" benchmarks/lb_sac.py --device cuda --collect-steps 20000 --collect-transitions 20000 \
      --collect-hidden-sizes 64 64 --hidden-sizes 64 64 --time-budget 30 --eval-seconds 6 --eval-episodes 3 \
      --data-dir "$OUT/datasets"
  else
    printf '\n## LB-SAC against SAC-N\n\nskipped: mujoco is not installed (pip install -e ".[mujoco]")\n' >>"$REPORT"
  fi
fi
log "done: $REPORT"
