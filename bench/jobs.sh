#!/usr/bin/env bash
# Per-job overhead of `procpool jobs` against `xargs -P 2 sh -c` (and GNU
# parallel when installed): N `true` jobs on 2 processes, several repeats
# interleaved, medians. procpool also writes the status TSV and two log files
# per job; `xargs+logs` gives xargs the same log files, for a like-for-like
# comparison.
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
for ((i = 0; i < jobs; i++)); do echo true; done > "$work/jobs.txt"

# Wall seconds of one run of "$@", output discarded.
seconds() {
    local start=$EPOCHREALTIME
    "$@" > /dev/null 2>&1
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }'
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Each run writes its logs to a new directory: deleting thousands of files
# just before a run slows the file system down for the next one, so the old
# directories are removed only at the end.
run=0
logs() { echo "$work/logs-$run"; }
run_procpool() {
    "$procpool" -p 2 jobs "$work/jobs.txt" --status "$work/status.tsv" --logs "$(logs)"
}
run_xargs() { xargs -P 2 -I{} sh -c {} < "$work/jobs.txt"; }
run_xargs_logs() {
    mkdir "$(logs)"
    xargs -P 2 -I{} sh -c '{} > "$0/$$.out" 2> "$0/$$.err"' "$(logs)" < "$work/jobs.txt"
}
run_parallel() { parallel -j 2 < "$work/jobs.txt"; }

tools=(procpool xargs xargs_logs)
command -v parallel > /dev/null && tools+=(parallel)

declare -A times
for ((r = 1; r <= repeats; r++)); do
    for tool in "${tools[@]}"; do
        run=$((run + 1))
        times[$tool]+="$(seconds "run_$tool") "
    done
done
rows=$(wc -l < "$work/status.tsv")
if [[ $rows -ne $((jobs + 1)) ]]; then
    echo "procpool wrote $rows status lines, expected $((jobs + 1))" >&2
    exit 1
fi

echo "$jobs 'true' jobs, 2 processes, $repeats interleaved repeats, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); medians:"
printf '%-11s %8s %8s %9s   %s\n' tool seconds ms/job "vs xargs" "all runs (s)"
base=$(tr ' ' '\n' <<< "${times[xargs]}" | grep . | median)
for tool in "${tools[@]}"; do
    med=$(tr ' ' '\n' <<< "${times[$tool]}" | grep . | median)
    awk -v t="${tool/_/+}" -v m="$med" -v n="$jobs" -v b="$base" -v all="${times[$tool]}" \
        'BEGIN { printf "%-11s %8.3f %8.3f %8.2fx   %s\n", t, m, m * 1000 / n, m / b, all }'
done
