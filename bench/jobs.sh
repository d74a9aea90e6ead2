#!/usr/bin/env bash
# Per-job overhead of `procpool jobs` against `xargs -P 2 sh -c` (and GNU
# parallel when installed): N `true` jobs on 2 processes, several repeats,
# medians. procpool also writes the status TSV and two log files per job,
# which the others do not.
#
#   bench/jobs.sh [JOBS=1000] [REPEATS=7]
#   PROCPOOL=target/release/procpool bench/jobs.sh
set -euo pipefail

jobs=${1:-1000}
repeats=${2:-7}
here=$(cd "$(dirname "$0")/.." && pwd)
procpool=${PROCPOOL:-$here/target/release/procpool}
if [[ ! -x $procpool ]]; then
    echo "building $procpool" >&2
    (cd "$here" && cargo build --release --quiet --bin procpool)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
yes true | head -n "$jobs" > "$work/jobs.txt"

# Wall seconds of one run of "$@", output discarded.
seconds() {
    local start=$EPOCHREALTIME
    "$@" > /dev/null 2>&1
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }'
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

run_procpool() {
    rm -rf "$work/logs"
    "$procpool" -p 2 jobs "$work/jobs.txt" --status "$work/status.tsv" --logs "$work/logs"
}
run_xargs() { xargs -P 2 -I{} sh -c {} < "$work/jobs.txt"; }
run_parallel() { parallel -j 2 < "$work/jobs.txt"; }

tools=(procpool xargs)
command -v parallel > /dev/null && tools+=(parallel)

declare -A times
for ((r = 1; r <= repeats; r++)); do
    for tool in "${tools[@]}"; do
        times[$tool]+="$(seconds "run_$tool") "
    done
done
rows=$(wc -l < "$work/status.tsv")
if [[ $rows -ne $((jobs + 1)) ]]; then
    echo "procpool wrote $rows status lines, expected $((jobs + 1))" >&2
    exit 1
fi

echo "$jobs 'true' jobs, 2 processes, $repeats repeats, $(nproc) cores; medians:"
printf '%-10s %10s %12s %10s   %s\n' tool seconds ms/job "vs xargs" "all runs (s)"
base=$(tr ' ' '\n' <<< "${times[xargs]}" | grep . | median)
for tool in "${tools[@]}"; do
    med=$(tr ' ' '\n' <<< "${times[$tool]}" | grep . | median)
    awk -v t="$tool" -v m="$med" -v n="$jobs" -v b="$base" -v all="${times[$tool]}" \
        'BEGIN { printf "%-10s %10.3f %12.3f %9.2fx   %s\n", t, m, m * 1000 / n, m / b, all }'
done
