# The job guard (see guard.rs): reads "GROUP TOKEN" lines; when its input
# ends, stops the last group and the processes carrying the last token.
trap '' INT TERM HUP
g=0 t=
while read -r line tok; do g=$line; t=$tok; done
[ "$g" -gt 0 ] 2>/dev/null || exit 0
escaped() {
  for f in $(grep -laF "PROCPOOL_JOB_TOKEN=$t" /proc/[0-9]*/environ 2>/dev/null); do
f=${f#/proc/}; echo "${f%/environ}"
  done
}
stop() { kill -$1 -$g 2>/dev/null; for p in $(escaped); do kill -$1 "$p" 2>/dev/null; done; }
alive() { kill -0 -$g 2>/dev/null || [ -n "$(escaped)" ]; }
stop TERM
stop CONT
n=$1
while [ "$n" -gt 0 ] && alive; do sleep 0.05; n=$((n-1)); done
stop KILL
exit 0
