#!/usr/bin/env bash
# CUDA checks for a machine with an NVIDIA GPU and a Python that has torch with CUDA:
# a short run of each hierarchical trainer on CUDA, the update benchmark, the room batch
# ablation and the test suite with CUDA as the default device. Results go to $OUT.
#
#   OUT=results bash .ci/cuda_checks.sh
#   WHEELS=wheels STAGES="throughput ablation" bash .ci/cuda_checks.sh
#
# The package and its dependencies must be installed (the README's set-up), or WHEELS names
# a folder of wheels to install them from without an index, on a machine with no network
# (pettingzoo, gymnasium, farama-notifications, pygame-ce, supersuit, tinyscaler). The
# interoperability tests run where torchrl, tianshou and mpe2 are installed.
# STAGES picks stages (default: all); SEEDS, ABLATIONS and the *_TIMEOUT variables size them.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-cuda_checks}
STAGES=${STAGES:-"smoke throughput ablation tests"}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYTHONUNBUFFERED=1
scratch=$(mktemp -d)
log() { echo "== $(date +%T) $*"; }
wants() { [[ " $STAGES " == *" $1 "* ]]; }

if [[ -n "${WHEELS:-}" ]]; then
  log install
  "$PYTHON" -m pip install --no-deps --no-index -q "$WHEELS"/*.whl
  "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e .
  if ! "$PYTHON" -c "import hmarl.envs, hmarl.trainers" 2>/dev/null; then
    # Without the build tools for an editable install: the package tree as pyproject.toml
    # maps it (envs, trainers and assets are subpackages of hmarl), on PYTHONPATH.
    log "editable install failed; importing a copy of the package tree"
    shim="$scratch/shim"
    mkdir -p "$shim" && cp -r hmarl "$shim/" && cp -r envs "$shim/hmarl/envs" && cp -r trainers "$shim/hmarl/trainers" \
      && cp -r assets "$shim/hmarl/assets"
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
if ! "$PYTHON" -c "import torch, hmarl.envs; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "cuda_checks: $PYTHON needs hmarl installed (pip install -e \".[dev]\", or WHEELS=dir) and torch with CUDA" >&2
  exit 1
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu,memory.used --format=csv

if wants smoke; then
  log smoke
  for learner in ind_hdqn hcom hqmix low_level_only; do
    timeout "${SMOKE_TIMEOUT:-90}" "$PYTHON" -m hmarl.trainers."$learner" --device cuda --total-steps 4000 \
      --learning-starts 500 --high-level-starts 1000 --eval-every 2000 --eval-episodes 8 --no-progress \
      --run-name "smoke_$learner" --log-dir "$scratch/runs" --checkpoint-dir "$scratch/checkpoints" 2>&1 | tail -1
  done | tee "$OUT/smoke.txt"
fi

if wants throughput; then
  log throughput
  timeout "${THROUGHPUT_TIMEOUT:-120}" "$PYTHON" benchmarks/update_throughput.py --devices cuda \
    --batch-sizes 64 256 1024 4096 16384 65536 2>&1 | tee "$OUT/update_throughput.txt"
fi

if wants ablation; then
  log ablation
  # One process per seed, side by side on the GPU, each on its own core.
  core=0
  for seed in ${SEEDS:-0 1 2}; do
    timeout "${ABLATION_TIMEOUT:-420}" taskset -c "$core" "$PYTHON" benchmarks/reproduce_tang2018.py \
      --suite ablations --device cuda --ablations ${ABLATIONS:-default batch64 batch4096_every8} \
      --first-seed "$seed" --seeds 1 --out "$scratch/ablation_seed$seed.jsonl" \
      --log-dir "$scratch/runs" --checkpoint-dir "$scratch/checkpoints" > "$scratch/ablation_seed$seed.log" 2>&1 &
    core=$((core + 1))
  done
  wait
  cat "$scratch"/ablation_seed*.log > "$OUT/ablation.log"
  cat "$scratch"/ablation_seed*.jsonl > "$OUT/ablation.jsonl"
  "$PYTHON" benchmarks/reproduce_tang2018.py --table-only --out "$OUT/ablation.jsonl" | tee "$OUT/ablation.txt"
fi

if wants tests; then
  log tests
  # -v names every test as it ends, so a run cut short still says which ones failed.
  skip=()
  "$PYTHON" -c "import torchrl, tianshou, mpe2" 2>/dev/null || skip=(--ignore=tests/test_interop.py)
  timeout "${TESTS_TIMEOUT:-300}" "$PYTHON" -m pytest -v -p no:cacheprovider -n "${TEST_WORKERS:-8}" \
    "${skip[@]}" -rfE > "$OUT/pytest.txt" 2>&1
  grep -E "FAILED|ERROR" "$OUT/pytest.txt" | sort -u | head -40
  tail -3 "$OUT/pytest.txt"
fi
log done
