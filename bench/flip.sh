#!/usr/bin/env bash
# Benchmark: `procpool flip` against Pillow on multiprocessing.Pool (the
# tutorial's image_flipper), both on 2 processes, on the tutorial's station
# photos copied 10 times (100 images), for pdf, png and jpg. procpool runs in
# both builds: the default one (pure-Rust JPEG) and `--features turbojpeg`
# (libjpeg-turbo; skipped when cmake is not installed).
#
#   bench/flip.sh [REPEATS] [PHOTOS_DIR]      (defaults: 7, ../shared/data/stations)
#
# Each repeat runs every program in turn (interleaved) into fresh output
# folders, after a sync (so no run pays for writing back an earlier run's
# files: png's 30 MB slowed the jpg runs after them). Reported as medians
# over the repeats:
#   end-to-end: images / wall time of the whole command (start-up included),
#   map:        images / time inside the map (procpool's --json elapsed_ms,
#               Python's timing around pool.map; pool start-up excluded),
#   cpu:        user + system milliseconds per image of the whole command,
#               its worker processes included (getrusage of the children:
#               microseconds, where GNU time gives hundredths),
# then each procpool build's ratio to Python (throughput: higher is better;
# CPU: Python's CPU time over procpool's, higher is better).
# BEFORE=/path/to/procpool adds that binary as program "before" (to compare
# with an earlier build). BUILDS="rust" skips the turbojpeg build (default: both when cmake exists).
# FORMATS="pdf jpg" picks the formats (default: pdf png jpg).
# Needs: python3 with Pillow (pip install pillow).
set -euo pipefail
cd "$(dirname "$0")/.."

repeats=${1:-7}
photos=${2:-../shared/data/stations}
[ -n "${2:-}" ] || [ -d "$photos" ] || photos=../../shared/data/stations   # from a worktree
[ -d "$photos" ] || { echo "bench/flip.sh: no photos folder $photos" >&2; exit 2; }
processes=2
builds=${BUILDS:-rust turbo}

python3 -c 'import PIL' 2>/dev/null || { echo "bench/flip.sh needs Pillow: pip install pillow" >&2; exit 2; }
# The interpreter itself, not a launcher such as pyenv's shim (a shell
# script that runs helpers first: 40 ms of CPU time a run, counted against
# Python's end-to-end time and CPU time).
python=$(python3 -c 'import sys; print(sys.executable)')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/in"

# Each build's binary, copied aside: program name -> binary.
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
cp "$target/release/procpool" "$work/procpool-rust"
programs=(rust)
if [[ " $builds " == *" turbo "* ]]; then
  if command -v cmake >/dev/null; then
    cargo build --release --quiet -p procpool-cli --features turbojpeg
    cp "$target/release/procpool" "$work/procpool-turbo"
    programs+=(turbo)
    cargo build --release --quiet   # leave the default build in place
  else
    echo "cmake is not installed: the turbojpeg build is skipped" >&2
  fi
fi
if [ -n "${BEFORE:-}" ]; then
  cp "$BEFORE" "$work/procpool-before"
  programs+=(before)
fi
for copy in $(seq -w 1 10); do
  for photo in "$photos"/*.jpg; do
    name=$(basename "$photo" .jpg)
    cp "$photo" "$work/in/${name}_$copy.jpg"
  done
done
images=$(ls "$work/in" | wc -l)
echo "$images images from $photos, $processes processes, $repeats repeats, $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Runs a command, appending its wall seconds to $1_wall and its CPU seconds
# (user + system, children included) to $1_cpu, both to the microsecond.
timed() {
  local name=$1; shift
  "$python" -c '
import resource, subprocess, sys, time
def cpu():  # what this process inherited counts too: take the difference
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
before, start = cpu(), time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall, used = time.perf_counter() - start, cpu() - before
with open(sys.argv[1], "w") as out:
    print(f"{wall:.6f} {used:.6f}", file=out)
sys.exit(code)
' "$work/time" "$@"
  awk '{ print $1 }' "$work/time" >>"$work/${name}_wall"
  awk '{ print $2 }' "$work/time" >>"$work/${name}_cpu"
}

printf '\n%-6s %-15s %14s %10s %12s\n' format program "end-to-end/s" "map/s" "cpu ms/img"
for format in ${FORMATS:-pdf png jpg}; do
  for program in "${programs[@]}" python; do
    : >"$work/${program}_wall"; : >"$work/${program}_map"; : >"$work/${program}_cpu"
  done
  for _ in $(seq "$repeats"); do
    for program in "${programs[@]}"; do
      rm -rf "$work/out" && mkdir "$work/out" && sync
      timed "$program" "$work/procpool-$program" -p "$processes" --json flip --format "$format" --out "$work/out" "$work/in" >"$work/json"
      tail -n 1 "$work/json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["elapsed_ms"] / 1e3)' >>"$work/${program}_map"
      [ "$(ls "$work/out" | wc -l)" -eq "$images" ] || { echo "procpool ($program) wrote $(ls "$work/out" | wc -l) of $images" >&2; exit 1; }
    done

    rm -rf "$work/out" && mkdir "$work/out" && sync
    timed python "$python" bench/flip_baseline.py "$format" "$work/out" "$processes" "$work"/in/*.jpg >>"$work/python_map"
    [ "$(ls "$work/out" | wc -l)" -eq "$images" ] || { echo "python wrote $(ls "$work/out" | wc -l) of $images" >&2; exit 1; }
  done
  rate() { echo "$images / $(median <"$1")" | bc -l; }
  per_image() { echo "1000 * $(median <"$1") / $images" | bc -l; }
  for program in "${programs[@]}" python; do
    printf '%-6s %-15s %14.0f %10.0f %12.2f\n' "$format" "$program" \
      "$(rate "$work/${program}_wall")" "$(rate "$work/${program}_map")" "$(per_image "$work/${program}_cpu")"
  done
  pw=$(rate "$work/python_wall"); pm=$(rate "$work/python_map"); pc=$(per_image "$work/python_cpu")
  for program in "${programs[@]}"; do
    printf '%-6s %-15s %13.2fx %9.2fx %11.2fx\n' "$format" "ratio $program" \
      "$(echo "$(rate "$work/${program}_wall") / $pw" | bc -l)" \
      "$(echo "$(rate "$work/${program}_map") / $pm" | bc -l)" \
      "$(echo "$pc / $(per_image "$work/${program}_cpu")" | bc -l)"
  done
done
