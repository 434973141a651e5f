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
#
# Two lanes run the queue, each taking the next job that is ready (every earlier job of its group done: a MNIST run's
# tune, choose and test stages are one group) and that the other lane does not hold (a claim folder per group). The
# effnet test stage runs alone on every core (the second lane waits for it); every other job runs on one thread, two at
# a time: on this 2-core machine the small models gain 1.4-1.5x from a second thread, two one-thread jobs 2x
# (measured 2026-12-06: ours on 64 MNIST digits at 100 passes, 2.3 s on 2 threads, 3.5 s on 1, 3.5 s each for two at
# once). A run's config.json records its threads (machine.cpu_threads), and a job resumes with its run's count.
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
CARRY=$ROOT/benchmarks/carry
LOG=$ROOT/runs/sitting.log
CLAIMS=$ROOT/runs/protocol/.claims
export IMPERCEPTIBLE_IMAGENET_COMPATIBLE=${IMPERCEPTIBLE_IMAGENET_COMPATIBLE:-$ROOT/../shared/data/imagenet-compatible}

# the queue: NAME|CODE COMMIT|COMMAND, in order. A run NAME writes runs/protocol/NAME and is done when its summary.json
# exists; choose-RUN appends the tune stage's choices for RUN to its protocol's [chosen] tables and commits the file
# (done when they are there), so that RUN's test stage, which refuses a run without them, runs on committed choices.
# A run's protocol: minimal-2.toml for the runs named p2-*, else minimal.toml (protocol_file).
MINIMAL="-m imperceptible bench minimal --protocol benchmarks/protocols/minimal.toml"
MINIMAL2="-m imperceptible bench minimal --protocol benchmarks/protocols/minimal-2.toml"
JOBS=(
  "test-effnet-200|f59b660|$MINIMAL --run effnet-200 --stage test --out runs/protocol/test-effnet-200"
  "fairness-protocol|6be541e|-m imperceptible fairness --protocol benchmarks/protocols/fairness.toml --out runs/protocol/fairness-protocol --worlds-per-call 2"
)
# The order is the queue's, not the protocol's (which fixes what each run computes, not when): mnist-cnn-1000 moved
# up on 2026-12-06 to follow the runs already started (mnist-cnn-200 and mnist-cnn-b-200, carried), so that one
# 1000-pass run (issue 34's pass ratios at 1000 passes) comes before mnist-cnn-robust-200.
protocol_jobs() {  # the tune, choose and test jobs of runs $3... of the protocol command $1, on the code of commit $2
  local cmd=$1 commit=$2 run
  shift 2
  for run in "$@"; do
    JOBS+=("tune-$run|$commit|$cmd --run $run --stage tune --out runs/protocol/tune-$run"
           "choose-$run|$commit|choose $run"
           "test-$run|$commit|$cmd --run $run --stage test --out runs/protocol/test-$run")
  done
}
# minimal-heldout-1's MNIST runs on the code of its amendment a2 (fe5d1e3); minimal-heldout-2's (committed in 0ffef14
# before any of them) on the code its amendment b2 names (f29e311)
minimal1() { protocol_jobs "$MINIMAL" fe5d1e3 "$@"; }
minimal2() { protocol_jobs "$MINIMAL2" f29e311 "$@"; }
minimal1 mnist-cnn-100 mnist-cnn-b-100 mnist-cnn-robust-100 mnist-cnn-200 mnist-cnn-b-200 mnist-cnn-1000 \
  mnist-cnn-robust-200
# Moved on 2026-12-06 (queue order only; neither protocol changes): minimal-heldout-2's three 200-pass runs, which its
# claim needs together, before minimal-heldout-1's last two 1000-pass runs (about 10 h each at one thread), whose
# tier already has mnist-cnn-1000.
minimal2 p2-mnist-cnn-200 p2-mnist-cnn-b-200 p2-mnist-cnn-robust-200
minimal1 mnist-cnn-b-1000 mnist-cnn-robust-1000
minimal2 p2-mnist-cnn-100 p2-mnist-cnn-b-100 p2-mnist-cnn-robust-100
PATTERN="imperceptible (bench minimal|fairness) --protocol"

protocol_file() {  # the protocol that governs run $1
  case "$1" in p2-*) echo benchmarks/protocols/minimal-2.toml ;; *) echo benchmarks/protocols/minimal.toml ;; esac
}

choose() {  # $1: the run; $2: the package's source folder at the job's commit
  local file
  file=$(protocol_file "$1")
  if ! grep -q "^\[chosen\.$1\." "$file"; then  # written but not committed: commit only
    "$PY" "$2/../benchmarks/protocols/write_chosen.py" "$file" "runs/protocol/tune-$1" || return 1
  fi
  local _
  for _ in $(seq 20); do  # a commit made by hand at the same moment holds git's index lock: try again
    git commit -q "$file" -m "Protocol $(basename "$file" .toml): the tune stage's choices for $1 \
(runs/protocol/tune-$1/tuning.json, written by write_chosen.py at the run's code), committed before its test stage" \
      && return 0
    sleep 15
  done
  return 1
}

committed() {  # where finish.py commits a run's summary (its where(); tests/test_protocol.py checks the two agree)
  echo "benchmarks/results/protocol_${1/-/_}.json"
}

done_job() {  # a run is done when its summary exists here or has been committed (its carry folder then removed)
  case "$1" in
    # committed; grep reads the whole file (no -q): with -q it may exit before git show has written the rest, which
    # then dies of SIGPIPE, and pipefail read a committed choice as missing (on 2026-12-06 a lane skipped two ready
    # test stages so)
    choose-*) git show "HEAD:$(protocol_file "${1#choose-}")" | grep "^\[chosen\.${1#choose-}\." >/dev/null ;;
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

group() {  # the jobs that must run in order, one at a time: a MNIST run's tune, choose and test stages
  case "$1" in tune-*|choose-*|test-mnist-*|test-p2-*) echo "${1#*-}" ;; *) echo "$1" ;; esac
}

threads() {  # the CPU threads a job runs with: those its run started with (config.json's machine.cpu_threads, kept
  # on every resume), else the effnet stage on every core and the rest one each, two at a time
  local cfg=runs/protocol/$1/config.json
  if [ -f "$cfg" ]; then
    "$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['machine']['cpu_threads'])" "$cfg" && return 0
  fi
  case "$1" in test-effnet-*) nproc ;; *) echo 1 ;; esac
}

ready() {  # every earlier job of $1's group is done
  local g job other
  g=$(group "$1")
  for job in "${JOBS[@]}"; do
    IFS='|' read -r other _ _ <<<"$job"
    [ "$other" = "$1" ] && return 0
    if [ "$(group "$other")" = "$g" ] && ! done_job "$other"; then return 1; fi
  done
}

run_queue() {  # lane $1 passes over the queue until every job is done, taking each group's claim while it runs a job
  local lane=$1
  if [ "$lane" != A ]; then  # the effnet stage runs alone, on every core; the second lane waits for it
    while ! done_job test-effnet-200; do
      if ! pgrep -f "$SELF run-queue A" >/dev/null; then
        echo "$(date -Is) lane $lane: lane A ended before the effnet stage was done; this lane ends too" >>"$LOG"
        return 1
      fi
      sleep 60
    done
  fi
  while :; do
    local left=0 ran=0
    for job in "${JOBS[@]}"; do
      IFS='|' read -r name commit cmd <<<"$job"
      if done_job "$name"; then continue; fi
      left=1
      ready "$name" || continue
      local claim
      claim=$CLAIMS/$(group "$name")
      mkdir "$claim" 2>/dev/null || continue  # the other lane runs this group now
      if done_job "$name" || ! ready "$name"; then rmdir "$claim"; continue; fi  # it finished meanwhile
      ran=1
      local n
      n=$(threads "$name")
      echo "$(date -Is) lane $lane: start $name (code $commit, threads $n)" >>"$LOG"
      local started=$SECONDS
      local src ok=0 wt=0
      exec 8>"$CLAIMS/.worktree.lock"  # one lane builds a worktree at a time (both may want the same commit)
      flock 8
      src=$(worktree "$commit") || wt=1
      flock -u 8
      exec 8>&-
      if [ "$wt" != 0 ]; then
        echo "$(date -Is) lane $lane: FAILED $name: no clean worktree of $commit whose package Python imports" >>"$LOG"
        rmdir "$claim"
        return 1
      fi
      if [[ $cmd == choose* ]]; then
        (flock 9 && PYTHONPATH=$src choose "${cmd#choose }" "$src") 9>"$CLAIMS/.choose.lock" \
          >>"runs/protocol/$name.out" 2>&1 || ok=$?  # one lane's choices at a time
      else
        # shellcheck disable=SC2086
        PYTHONPATH=$src OMP_NUM_THREADS=$n MKL_NUM_THREADS=$n nice -n 5 "$PY" $cmd >>"runs/protocol/$name.out" 2>&1 \
          || ok=$?
      fi
      rmdir "$claim"
      if [ "$ok" != 0 ]; then
        echo "$(date -Is) lane $lane: FAILED $name (rc $ok)" >>"$LOG"
        return 1
      elif done_job "$name"; then
        echo "$(date -Is) lane $lane: done $name" >>"$LOG"
      else
        echo "$(date -Is) lane $lane: paused $name (rc 0, unfinished: it goes on in the next pass)" >>"$LOG"
        if [ $((SECONDS - started)) -lt 60 ]; then sleep 60; fi  # a job that pauses at once does not spin the lane
      fi
      # the next job is chosen by the script as it is now: a queue reordered while this job ran (a new file moved in
      # place) takes effect here, not at the next start (on 2026-12-06 a lane started earlier took a job in the old order)
      exec "$SELF" run-queue "$lane"
    done
    if [ "$left" = 0 ]; then echo "$(date -Is) lane $lane: every job is done" >>"$LOG"; return 0; fi
    if [ "$ran" = 0 ]; then sleep 60; fi  # what is left waits for the other lane
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
    if pgrep -f "$SELF run-queue" >/dev/null; then echo "the queue already runs"; exit 0; fi
    if pgrep -f "$PATTERN" >/dev/null; then echo "a protocol job still runs without its queue: $0 stop first" >&2; exit 1; fi
    rm -rf "$CLAIMS" && mkdir -p "$CLAIMS"  # no lane runs: every claim left is stale
    for lane in A B; do setsid nohup "$SELF" run-queue "$lane" >>"$LOG" 2>&1 & done
    echo "queue started (two lanes); log: $LOG"
    ;;
  run-queue)
    run_queue "${2:?usage: $0 run-queue LANE}"
    ;;
  stop)
    pkill -f "$SELF run-queue" || true
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
    pgrep -af "$SELF run-queue" || echo "no lane is running"
    [ -d "$CLAIMS" ] && echo "groups held: $(ls "$CLAIMS" | tr '\n' ' ')"
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
