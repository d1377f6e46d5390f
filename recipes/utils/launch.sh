#!/usr/bin/env bash
# The one job launcher of the recipes (DESIGN.md convention 7), after Kaldi's run.pl/slurm.pl.
# Runs a command as jobs 1..N locally or as one Slurm array, one log each, reports which
# jobs failed (with the tail of the first failed job's log) and can rerun only those.
set -euo pipefail

me=launch.sh
usage="usage: $me [--backend local|slurm] [--max-jobs N] [--rerun all|failed|unfinished]
                 [--slurm-opts \"OPTS\"] JOB=1:N LOGFILE COMMAND [ARG...]
Runs COMMAND once per job number (JOB=A:B, or JOB=I for one job; leaving JOB=.. out runs
one job). Every occurrence of the string JOB in LOGFILE, COMMAND and ARGs becomes the job
number. COMMAND runs through bash in the caller's directory and environment, stdin from
/dev/null. With a single COMMAND argument that argument is a bash command line, so write
pipes and redirections as one quoted argument:  $me JOB=1:4 log/x.JOB.log \"a JOB | b > o.JOB\"
With several arguments each is one word (quoted for bash, so paths with spaces or shell
characters are safe); only arguments that are exactly | || && ; > >> < 2> 2>&1 stay operators.

Each job writes LOGFILE (its directory is created): a header with the command and the start
time, the job's stdout and stderr, a footer with the elapsed time and exit code; then, last
and atomically, LOGFILE.done holding the exit code.

Options:
  --backend local|slurm  local: background processes on this machine (default);
                         slurm: one 'sbatch --array' job, polled until all tasks end.
  --max-jobs N           jobs at once (local default: the CPUs it may use; slurm: array %N
                         throttle, none by default).
  --rerun all            run every job (default: a plain invocation always starts afresh).
  --rerun failed         run only jobs whose LOGFILE.done is missing or non-zero, so after
                         one failure a rerun repeats only that job.
  --rerun unfinished     run only jobs without LOGFILE.done (killed or never started); jobs
                         that ended with an error are not rerun and still count as failed.
  --slurm-opts \"OPTS\"    extra sbatch options, split on blanks (e.g. \"-p gpu --gres=gpu:1 -t 60\");
                         may be repeated, adding up. Inside a \$cmd string that the shell splits
                         on blanks, give one option each: --slurm-opts=--partition=gpu --slurm-opts=--time=60
  --help                 this text.
Exit status: 0 iff all jobs A..B succeeded (skipped jobs count by their marker); 1 otherwise,
after one line on stderr naming the failed jobs and the last 20 lines of the lowest failed
job's log; 2 on a usage error.
Recipes set it in cmd.sh:  export cmd=\"utils/launch.sh --backend local --max-jobs 4\"
and call:  \$cmd JOB=1:\$nj \$dir/log/extract.JOB.log audiotok extract-feats --shard JOB/\$nj ..."

die_usage() { echo "$me: $* (see $me --help)" >&2; exit 2; }
die() { echo "$me: $*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

backend=local
max_jobs=
rerun=all
slurm_opts=
while [ $# -gt 0 ]; do
  case $1 in
    --help|-h) printf '%s\n' "$usage"; exit 0 ;;
    --*=*) opt=${1%%=*}; val=${1#*=}; shift ;;
    --*) opt=$1; [ $# -ge 2 ] || die_usage "option $1 needs a value"; val=$2; shift 2 ;;
    *) break ;;
  esac
  case ${opt//_/-} in
    --backend) backend=$val ;;
    --max-jobs) max_jobs=$val ;;
    --rerun) rerun=$val ;;
    --slurm-opts) slurm_opts+="${slurm_opts:+ }$val" ;;
    *) die_usage "unknown option $opt" ;;
  esac
done
case $backend in local|slurm) ;; *) die_usage "--backend must be local or slurm, not '$backend'" ;; esac
case $rerun in all|failed|unfinished) ;; *) die_usage "--rerun must be all, failed or unfinished, not '$rerun'" ;; esac
if [ -n "$max_jobs" ] && { ! is_uint "$max_jobs" || [ "$max_jobs" -lt 1 ]; }; then
  die_usage "--max-jobs must be a positive integer, not '$max_jobs'"
fi

# Job range: JOB=A:B, JOB=I, or nothing (one job, nothing substituted).
first=1 last=1 has_range=false
if [[ ${1:-} == JOB=* ]]; then
  spec=${1#JOB=}; shift; has_range=true
  if [[ $spec =~ ^([0-9]+):([0-9]+)$ ]]; then first=$((10#${BASH_REMATCH[1]})); last=$((10#${BASH_REMATCH[2]}))
  elif is_uint "$spec"; then first=$((10#$spec)); last=$first
  else die_usage "bad job range 'JOB=$spec' (want JOB=A:B or JOB=I)"; fi
  [ "$first" -ge 1 ] && [ "$last" -ge "$first" ] || die_usage "bad job range 'JOB=$spec' (want 1 <= A <= B)"
fi
[ $# -ge 2 ] || die_usage "need a LOGFILE and a COMMAND"
log_template=$1; shift
if [ "$last" -gt "$first" ] && [[ $log_template != *JOB* ]]; then
  die_usage "LOGFILE '$log_template' must contain JOB when running several jobs"
fi

# The command line bash runs. One argument: taken as written. Several: each quoted, except
# bare shell operators (Kaldi recipes write 'cmd1 \| cmd2').
if [ $# -eq 1 ]; then
  command_line=$1
else
  command_line=
  for arg in "$@"; do
    case $arg in
      '|'|'||'|'&&'|';'|'>'|'>>'|'<'|'2>'|'2>&1') word=$arg ;;
      *) printf -v word '%q' "$arg" ;;
    esac
    command_line+="${command_line:+ }$word"
  done
fi

log_of() { local f=$log_template; $has_range && f=${f//JOB/$1}; printf '%s' "$f"; }

# The per-job script, shared by both backends so their logs are identical. It takes the job
# number as $1 or from Slurm's SLURM_ARRAY_TASK_ID.
log1=$(log_of "$first")
qdir=$(dirname "$log1")/q
name=$(basename "$log_template")
name=${name%.log}
mkdir -p "$qdir"
job_script=$qdir/$name.sh
{
  echo '#!/usr/bin/env bash'
  echo "# Written by $me: one job of the command below; the job number is \$1 or \$SLURM_ARRAY_TASK_ID."
  printf 'cmd=%q\nlog=%q\nsubstitute=%s\n' "$command_line" "$log_template" "$has_range"
  cat <<'EOS'
set -u
id=${1:-${SLURM_ARRAY_TASK_ID:?no job number}}
if $substitute; then cmd=${cmd//JOB/$id}; log=${log//JOB/$id}; fi
mkdir -p "$(dirname "$log")" || exit 1
rm -f "$log.done"
start=$(date +%s)
printf '# %s\n# Started at %s\n#\n' "$cmd" "$(date)" > "$log" || exit 1
# SIGUSR1 means the launcher died (its death signal, set by setpriv): stop the whole job, as an
# interrupted launcher would. The command runs in the background so that the trap runs at once.
trap 'kill -TERM -- -$$ 2>/dev/null; exit 143' USR1
bash -c "$cmd" </dev/null >>"$log" 2>&1 &
wait $!
rc=$?
printf '# Accounting: time=%s threads=1\n# Ended (code %s) at %s\n' "$(( $(date +%s) - start ))" "$rc" "$(date)" >>"$log"
# The marker comes last and atomically: its presence means the job ran to its end.
printf '%s\n' "$rc" >"$log.done.tmp" && mv -f "$log.done.tmp" "$log.done"
exit "$rc"
EOS
} >"$job_script.tmp"
mv -f "$job_script.tmp" "$job_script"

# The exit code recorded by job $1, or empty when it has none.
marker_code() {
  local m
  m=$(log_of "$1").done
  [ -f "$m" ] && head -n 1 "$m" || true
}

# Which jobs to run.
todo=()
for ((id = first; id <= last; id++)); do
  case $rerun in
    all) todo+=("$id") ;;
    failed) [ "$(marker_code "$id")" = 0 ] || todo+=("$id") ;;
    unfinished) [ -n "$(marker_code "$id")" ] || todo+=("$id") ;;
  esac
done
total=$((last - first + 1))

# "1 3 4 5 9" -> "1,3-5,9", for messages and sbatch --array.
compress() {
  local out='' start='' prev=''
  for n in "$@" ''; do
    if [ -n "$prev" ] && [ "$n" = $((prev + 1)) ]; then prev=$n; continue; fi
    if [ -n "$start" ]; then
      out+="${out:+,}$start"
      [ "$prev" = "$start" ] || out+="-$prev"
    fi
    start=$n prev=$n
  done
  printf '%s' "$out"
}

if [ ${#todo[@]} -lt "$total" ]; then
  echo "$me: --rerun $rerun: running ${#todo[@]} of $total jobs${todo[0]:+ ($(compress "${todo[@]}"))}; the others already ran" >&2
fi

# shellcheck disable=SC2329  # called from the trap below
stop_local_jobs() {
  local pid
  for pid in $(jobs -p); do kill -- "-$pid" 2>/dev/null || true; done
}

run_local() {
  # The CPUs this process may use (OMP_NUM_THREADS, which path.sh sets to 1, is not a CPU count).
  local max=${max_jobs:-$(OMP_NUM_THREADS='' nproc)} id death=()
  # Each job leads its own process group, so that an interrupted launcher stops whole jobs,
  # the commands' children included; and each gets SIGUSR1 when the launcher dies, even by
  # kill -9, so no job outlives it (a rerun would race it on the same files).
  command -v setpriv >/dev/null && death=(setpriv --pdeathsig USR1)
  trap 'stop_local_jobs; exit 130' INT TERM
  for id in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$max" ]; do wait -n || true; done
    setsid -w "${death[@]+"${death[@]}"}" bash "$job_script" "$id" &
  done
  wait || true
  trap - INT TERM
}

run_slurm() {
  command -v sbatch >/dev/null || die "--backend slurm: sbatch is not on PATH"
  local opts=() array jobid out errors=0
  read -r -a opts <<<"$slurm_opts"
  array=$(compress "$@")${max_jobs:+%$max_jobs}
  # Slurm's own output only catches what the job script cannot log (e.g. a failed mkdir).
  jobid=$(sbatch --parsable --job-name="$name" --array="$array" --output="$qdir/$name.%a.slurm.out" \
    "${opts[@]+"${opts[@]}"}" "$job_script") || die "sbatch failed (array $array)"
  jobid=${jobid%%;*}
  trap 'scancel "$jobid" 2>/dev/null; exit 130' INT TERM
  # Poll squeue: sbatch --wait sleeps 2, 8, 32 s between checks. No slurmdbd is needed: the
  # exit codes come from the markers the tasks write.
  while :; do
    if out=$(squeue -h -r -j "$jobid" -o '%T' 2>&1); then
      [ -n "$out" ] || break
      errors=0
    elif [[ $out == *"Invalid job id"* ]]; then
      break
    else
      errors=$((errors + 1))
      [ "$errors" -le 120 ] || die "squeue keeps failing for job $jobid: $out"
    fi
    sleep 0.5
  done
  trap - INT TERM
  find "$qdir" -maxdepth 1 -name "$name.*.slurm.out" -empty -delete
  # A shared file system may show a task's marker a little later than squeue forgets the task.
  local id tries=0
  for id in "$@"; do
    while [ -z "$(marker_code "$id")" ] && [ "$tries" -lt 10 ]; do sleep 0.5; tries=$((tries + 1)); done
  done
}

# Forget the old outcome of every job about to run, so a launcher killed midway leaves them
# unfinished rather than looking done from an earlier run.
for id in "${todo[@]+"${todo[@]}"}"; do rm -f "$(log_of "$id").done"; done
if [ ${#todo[@]} -gt 0 ]; then
  if [ "$backend" = local ]; then run_local "${todo[@]}"; else run_slurm "${todo[@]}"; fi
fi

# Report over the whole range, skipped jobs included.
failed=()
for ((id = first; id <= last; id++)); do
  [ "$(marker_code "$id")" = 0 ] || failed+=("$id")
done
[ ${#failed[@]} -eq 0 ] && exit 0
first_log=$(log_of "${failed[0]}")
code=$(marker_code "${failed[0]}")
echo "$me: ${#failed[@]} of $total jobs failed: $(compress "${failed[@]}") (see $first_log)" >&2
if [ -z "$code" ]; then
  echo "$me: job ${failed[0]} left no exit code ($first_log.done missing: killed or never started)" >&2
fi
if [ -f "$first_log" ]; then
  echo "$me: last 20 lines of $first_log:" >&2
  tail -n 20 "$first_log" >&2
fi
exit 1
