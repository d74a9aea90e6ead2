#!/usr/bin/env bash
# Benchmark: `procpool flip` against Pillow on multiprocessing.Pool (the
# tutorial's image_flipper), both on 2 processes, on the tutorial's station
# photos copied 10 times (100 images), for pdf, png and jpg.
#
#   bench/flip.sh [REPEATS] [PHOTOS_DIR]      (defaults: 7, ../shared/data/stations)
#
# Each repeat runs both programs in turn into fresh output folders. Two
# throughputs are reported, as medians over the repeats:
#   end-to-end: images / wall time of the whole command (start-up included),
#   map:        images / time inside the map (procpool's --json elapsed_ms,
#               Python's timing around pool.map; pool start-up excluded).
# Needs: python3 with Pillow (pip install pillow).
set -euo pipefail
cd "$(dirname "$0")/.."

repeats=${1:-7}
photos=${2:-../shared/data/stations}
[ -n "${2:-}" ] || [ -d "$photos" ] || photos=../../shared/data/stations   # from a worktree
[ -d "$photos" ] || { echo "bench/flip.sh: no photos folder $photos" >&2; exit 2; }
processes=2

cargo build --release --quiet
bin=target/release/procpool
python3 -c 'import PIL' 2>/dev/null || { echo "bench/flip.sh needs Pillow: pip install pillow" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/in"
for copy in $(seq -w 1 10); do
  for photo in "$photos"/*.jpg; do
    name=$(basename "$photo" .jpg)
    cp "$photo" "$work/in/${name}_$copy.jpg"
  done
done
images=$(ls "$work/in" | wc -l)
echo "$images images from $photos, $processes processes, $repeats repeats, $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '\n%-6s %-9s %14s %14s\n' format program "end-to-end/s" "map/s"
for format in pdf png jpg; do
  : >"$work/rust_wall" >"$work/rust_map" >"$work/py_wall" >"$work/py_map"
  for _ in $(seq "$repeats"); do
    rm -rf "$work/out" && mkdir "$work/out"
    start=$(now)
    "$bin" -p "$processes" --json flip --format "$format" --out "$work/out" "$work/in" >"$work/json"
    end=$(now)
    echo "$end - $start" | bc -l >>"$work/rust_wall"
    tail -n 1 "$work/json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["elapsed_ms"] / 1e3)' >>"$work/rust_map"
    [ "$(ls "$work/out" | wc -l)" -eq "$images" ] || { echo "procpool wrote $(ls "$work/out" | wc -l) of $images" >&2; exit 1; }

    rm -rf "$work/out" && mkdir "$work/out"
    start=$(now)
    python3 bench/flip_baseline.py "$format" "$work/out" "$processes" "$work"/in/*.jpg >>"$work/py_map"
    end=$(now)
    echo "$end - $start" | bc -l >>"$work/py_wall"
    [ "$(ls "$work/out" | wc -l)" -eq "$images" ] || { echo "python wrote $(ls "$work/out" | wc -l) of $images" >&2; exit 1; }
  done
  rate() { echo "$images / $(median <"$1")" | bc -l; }
  rw=$(rate "$work/rust_wall"); rm_=$(rate "$work/rust_map")
  pw=$(rate "$work/py_wall"); pm=$(rate "$work/py_map")
  printf '%-6s %-9s %14.0f %14.0f\n' "$format" procpool "$rw" "$rm_"
  printf '%-6s %-9s %14.0f %14.0f\n' "$format" python "$pw" "$pm"
  printf '%-6s %-9s %13.2fx %13.2fx\n' "$format" ratio "$(echo "$rw / $pw" | bc -l)" "$(echo "$rm_ / $pm" | bc -l)"
done
