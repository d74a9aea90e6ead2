#!/usr/bin/env bash
# Benchmark: `procpool flip` against Pillow on multiprocessing.Pool (the
# tutorial's image_flipper), both on 2 processes, on the tutorial's station
# photos copied 10 times (100 images), for pdf, png and jpg. procpool runs in
# both builds: the default one (pure-Rust JPEG) and `--features turbojpeg`
# (libjpeg-turbo; skipped when cmake is not installed).
#
#   bench/flip.sh [REPEATS] [PHOTOS_DIR]      (defaults: 7, ../shared/data/stations)
#
# Each repeat runs every program in turn into fresh output folders. Two
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

python3 -c 'import PIL' 2>/dev/null || { echo "bench/flip.sh needs Pillow: pip install pillow" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/in"

# Each build's binary, copied aside: program name -> binary.
cargo build --release --quiet
cp target/release/procpool "$work/procpool-rust"
programs=(rust)
if command -v cmake >/dev/null; then
  cargo build --release --quiet --features turbojpeg
  cp target/release/procpool "$work/procpool-turbo"
  programs+=(turbo)
else
  echo "cmake is not installed: the turbojpeg build is skipped" >&2
fi
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

printf '\n%-6s %-15s %14s %14s\n' format program "end-to-end/s" "map/s"
for format in pdf png jpg; do
  for program in "${programs[@]}" python; do
    : >"$work/${program}_wall"; : >"$work/${program}_map"
  done
  for _ in $(seq "$repeats"); do
    for program in "${programs[@]}"; do
      rm -rf "$work/out" && mkdir "$work/out"
      start=$(now)
      "$work/procpool-$program" -p "$processes" --json flip --format "$format" --out "$work/out" "$work/in" >"$work/json"
      end=$(now)
      echo "$end - $start" | bc -l >>"$work/${program}_wall"
      tail -n 1 "$work/json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["elapsed_ms"] / 1e3)' >>"$work/${program}_map"
      [ "$(ls "$work/out" | wc -l)" -eq "$images" ] || { echo "procpool ($program) wrote $(ls "$work/out" | wc -l) of $images" >&2; exit 1; }
    done

    rm -rf "$work/out" && mkdir "$work/out"
    start=$(now)
    python3 bench/flip_baseline.py "$format" "$work/out" "$processes" "$work"/in/*.jpg >>"$work/python_map"
    end=$(now)
    echo "$end - $start" | bc -l >>"$work/python_wall"
    [ "$(ls "$work/out" | wc -l)" -eq "$images" ] || { echo "python wrote $(ls "$work/out" | wc -l) of $images" >&2; exit 1; }
  done
  rate() { echo "$images / $(median <"$1")" | bc -l; }
  pw=$(rate "$work/python_wall"); pm=$(rate "$work/python_map")
  for program in "${programs[@]}"; do
    name="procpool $program"
    printf '%-6s %-15s %14.0f %14.0f\n' "$format" "$name" "$(rate "$work/${program}_wall")" "$(rate "$work/${program}_map")"
  done
  printf '%-6s %-15s %14.0f %14.0f\n' "$format" python "$pw" "$pm"
  for program in "${programs[@]}"; do
    rw=$(rate "$work/${program}_wall"); rm_=$(rate "$work/${program}_map")
    printf '%-6s %-15s %13.2fx %13.2fx\n' "$format" "ratio $program" "$(echo "$rw / $pw" | bc -l)" "$(echo "$rm_ / $pm" | bc -l)"
  done
done
