#!/usr/bin/env bash
# The protocol runs across sittings of a machine that keeps only the git repository between them.
#
#   benchmarks/protocols/sitting.sh start   # rebuild each carried run directory, then run the queue in the background
#   benchmarks/protocols/sitting.sh stop    # stop the queue and pack every run of the queue into benchmarks/carry/
#   benchmarks/protocols/sitting.sh status  # what runs, and how many rows each carried run holds per method
#
# A run's rows are committed per batch, so a stop loses at most the batch in progress. Each job runs the package as it
# was at the commit its JOBS line names (a git worktree put first on PYTHONPATH, checked before the job starts), so that
# main may change meanwhile. A finished run is packed too until benchmarks/protocols/finish.py has committed its results
# (benchmarks/results/protocol_NAME.*, NAME's first '-' an '_': protocol_test_effnet-200.json); from then on it is done
# and never packed again (remove its carry folder in the same commit). Only row counts are shown: the runs are blind
# until they end (tools/carry.py reads no value).
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
CARRY=$ROOT/benchmarks/carry
LOG=$ROOT/runs/sitting.log
export IMPERCEPTIBLE_IMAGENET_COMPATIBLE=${IMPERCEPTIBLE_IMAGENET_COMPATIBLE:-$ROOT/../shared/data/imagenet-compatible}

# the queue: NAME|CODE COMMIT|COMMAND, in order. A run NAME writes runs/protocol/NAME and is done when its summary.json
# exists; choose-RUN appends the tune stage's choices for RUN to the protocol's [chosen] tables and commits the file
# (done when they are there), so that RUN's test stage, which refuses a run without them, runs on committed choices.
MINIMAL="-m imperceptible bench minimal --protocol benchmarks/protocols/minimal.toml"
JOBS=(
  "test-effnet-200|f59b660|$MINIMAL --run effnet-200 --stage test --out runs/protocol/test-effnet-200"
  "fairness-protocol|6be541e|-m imperceptible fairness --protocol benchmarks/protocols/fairness.toml --out runs/protocol/fairness-protocol --worlds-per-call 2"
)
for run in mnist-cnn-100 mnist-cnn-b-100 mnist-cnn-robust-100 mnist-cnn-200 mnist-cnn-b-200 mnist-cnn-robust-200 \
           mnist-cnn-1000 mnist-cnn-b-1000 mnist-cnn-robust-1000; do  # amendment a2: the MNIST runs on fe5d1e3
  JOBS+=("tune-$run|fe5d1e3|$MINIMAL --run $run --stage tune --out runs/protocol/tune-$run"
         "choose-$run|fe5d1e3|choose $run"
         "test-$run|fe5d1e3|$MINIMAL --run $run --stage test --out runs/protocol/test-$run")
done
PATTERN="imperceptible (bench minimal|fairness) --protocol"

choose() {  # $1: the run; $2: the package's source folder at the job's commit
  "$PY" "$2/../benchmarks/protocols/write_chosen.py" benchmarks/protocols/minimal.toml "runs/protocol/tune-$1" || return 1
  git commit -q benchmarks/protocols/minimal.toml -m "Protocol minimal: the tune stage's choices for $1 \
(runs/protocol/tune-$1/tuning.json, written by write_chosen.py at the run's code), committed before its test stage"
}

committed() {  # where finish.py commits a run's summary (its where(); tests/test_protocol.py checks the two agree)
  echo "benchmarks/results/protocol_${1/-/_}.json"
}

done_job() {  # a run is done when its summary exists here or has been committed (its carry folder then removed)
  case "$1" in
    choose-*) grep -q "^\[chosen\.${1#choose-}\." benchmarks/protocols/minimal.toml ;;
    *) [ -f "runs/protocol/$1/summary.json" ] || [ -f "$(committed "$1")" ] ;;
  esac
}

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

run_queue() {  # passes over the queue until every job is done (the fairness study goes on a few worlds per pass)
  while :; do
    local ran=0
    for job in "${JOBS[@]}"; do
      IFS='|' read -r name commit cmd <<<"$job"
      if done_job "$name"; then continue; fi
      ran=1
      echo "$(date -Is) start $name (code $commit)" >>"$LOG"
      local src
      if ! src=$(worktree "$commit"); then
        echo "$(date -Is) FAILED $name: no clean worktree of $commit whose package Python imports" >>"$LOG"
        return 1
      fi
      local ok=0
      if [[ $cmd == choose* ]]; then
        PYTHONPATH=$src choose "${cmd#choose }" "$src" >>"runs/protocol/$name.out" 2>&1 || ok=$?
      else
        # shellcheck disable=SC2086
        PYTHONPATH=$src nice -n 5 "$PY" $cmd >>"runs/protocol/$name.out" 2>&1 || ok=$?
      fi
      if [ "$ok" != 0 ]; then
        echo "$(date -Is) FAILED $name (rc $ok)" >>"$LOG"
        return 1
      elif done_job "$name"; then
        echo "$(date -Is) done $name" >>"$LOG"
      else
        echo "$(date -Is) paused $name (rc 0, unfinished: it goes on in the next pass)" >>"$LOG"
      fi
    done
    if [ "$ran" = 0 ]; then echo "$(date -Is) every job is done" >>"$LOG"; return 0; fi
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
    pkill -TERM -f "$PATTERN" || true  # a background job ignores SIGINT; rows and records are kept as they finish
    for _ in $(seq 60); do pgrep -f "$PATTERN" >/dev/null || break; sleep 1; done
    pkill -KILL -f "$PATTERN" || true
    for job in "${JOBS[@]}"; do
      IFS='|' read -r name _ _ <<<"$job"
      if [ -f "runs/protocol/$name/fingerprint.json" ] && [ ! -f "$(committed "$name")" ]; then
        "$PY" tools/carry.py pack "runs/protocol/$name" "$CARRY/$name" || echo "NOT PACKED: runs/protocol/$name" >&2
      fi
    done
    ;;
  where)  # where a job's summary is committed (done when it is there)
    committed "${2:?usage: $0 where NAME}"
    ;;
  status)
    pgrep -af "$PATTERN" || echo "no protocol run is running"
    tail -n 5 "$LOG" 2>/dev/null || true
    for d in runs/protocol/*/; do
      if [ -d "$d/algorithm3" ] || [ -d "$d/pretrain" ]; then
        echo "$d: $(find "$d/pretrain" -name 'r*.json' 2>/dev/null | wc -l) pre-trained models, $(find "$d/algorithm3" \
-name '*.json' 2>/dev/null | wc -l) Algorithm 3 models"
        continue
      fi
      [ -f "$d/results.sqlite" ] || continue
      echo "$d"
      "$PY" -c "import sqlite3,sys; c=sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True); \
print('\n'.join(f'  {m}: {n}' for m, n in c.execute('SELECT method, COUNT(*) FROM results GROUP BY method')))" \
        "$d/results.sqlite"
    done
    ;;
  *)
    echo "usage: $0 start|stop|status|where NAME" >&2
    exit 2
    ;;
esac
