#!/usr/bin/env bash
# The protocol runs across sittings of a machine that keeps only the git repository between them.
#
#   benchmarks/protocols/sitting.sh start   # rebuild each carried run directory, then run the queue in the background
#   benchmarks/protocols/sitting.sh stop    # stop the queue and pack every unfinished run into benchmarks/carry/
#   benchmarks/protocols/sitting.sh status  # what runs, and how many rows each carried run holds per method
#
# A run's rows are committed per batch, so a stop loses at most the batch in progress. Each job runs the package as it
# was at the commit its JOBS line names (a git worktree put first on PYTHONPATH, checked before the job starts), so that
# main may change meanwhile. A finished run is packed too until its results are committed to benchmarks/results/ (then
# remove its carry folder). Only row counts are shown: the runs are blind until they end (tools/carry.py reads no value).
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
CARRY=$ROOT/benchmarks/carry
LOG=$ROOT/runs/sitting.log
export IMPERCEPTIBLE_IMAGENET_COMPATIBLE=${IMPERCEPTIBLE_IMAGENET_COMPATIBLE:-$ROOT/../shared/data/imagenet-compatible}

# the queue: NAME|CODE COMMIT|COMMAND (run in the repository root; NAME is the run directory under runs/protocol/)
JOBS=(
  "test-effnet-200|f59b660|-m imperceptible bench minimal --protocol benchmarks/protocols/minimal.toml --run effnet-200 --stage test --out runs/protocol/test-effnet-200"
)

worktree() {  # the package at commit $1, as a detached worktree beside the repository (refused if it is not)
  local dir
  dir=$(cd "$ROOT/.." && pwd)/pinned-$1
  if [ ! -d "$dir/src" ]; then
    git worktree prune
    git worktree add --detach "$dir" "$1" >/dev/null || return 1
  fi
  [ "$(git -C "$dir" rev-parse HEAD)" = "$(git rev-parse "$1^{commit}")" ] || return 1
  [ -z "$(git -C "$dir" status --porcelain)" ] || return 1
  local got
  got=$(PYTHONPATH=$dir/src "$PY" -c "import imperceptible; print(imperceptible.__file__)") || return 1
  [ "$got" = "$dir/src/imperceptible/__init__.py" ] || return 1
  echo "$dir/src"
}

run_queue() {
  for job in "${JOBS[@]}"; do
    IFS='|' read -r name commit cmd <<<"$job"
    if [ -f "runs/protocol/$name/summary.json" ]; then continue; fi
    echo "$(date -Is) start $name (code $commit)" >>"$LOG"
    local src
    if ! src=$(worktree "$commit"); then
      echo "$(date -Is) FAILED $name: no clean worktree of $commit whose package Python imports" >>"$LOG"
      return 1
    fi
    # shellcheck disable=SC2086
    if PYTHONPATH=$src nice -n 5 "$PY" $cmd >>"runs/protocol/$name.out" 2>&1; then
      echo "$(date -Is) done $name" >>"$LOG"
    else
      echo "$(date -Is) FAILED $name (rc $?)" >>"$LOG"
      return 1
    fi
  done
}

case "${1:-}" in
  start)
    mkdir -p runs/protocol
    for c in "$CARRY"/*/; do
      [ -d "$c" ] || continue
      name=$(basename "$c")
      if [ ! -e "runs/protocol/$name" ]; then
        "$PY" tools/carry.py unpack "$c" "runs/protocol/$name"
      fi
    done
    if pgrep -f "sitting.sh run-queue" >/dev/null; then echo "the queue already runs"; exit 0; fi
    setsid nohup "$SELF" run-queue >>"$LOG" 2>&1 &
    echo "queue started; log: $LOG"
    ;;
  run-queue)
    run_queue
    ;;
  stop)
    pkill -f "sitting.sh run-queue" || true
    pkill -TERM -f "imperceptible bench minimal --protocol" || true  # a background job ignores SIGINT; rows are per batch
    for _ in $(seq 60); do pgrep -f "imperceptible bench minimal --protocol" >/dev/null || break; sleep 1; done
    pkill -KILL -f "imperceptible bench minimal --protocol" || true
    for job in "${JOBS[@]}"; do
      IFS='|' read -r name _ _ <<<"$job"
      if [ -f "runs/protocol/$name/results.sqlite" ]; then
        "$PY" tools/carry.py pack "runs/protocol/$name" "$CARRY/$name"
      fi
    done
    ;;
  status)
    pgrep -af "imperceptible bench minimal --protocol" || echo "no protocol run is running"
    for d in runs/protocol/*/; do
      [ -f "$d/results.sqlite" ] || continue
      echo "$d"
      "$PY" -c "import sqlite3,sys; c=sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True); \
print('\n'.join(f'  {m}: {n}' for m, n in c.execute('SELECT method, COUNT(*) FROM results GROUP BY method')))" \
        "$d/results.sqlite"
    done
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
