#!/usr/bin/env bash
# A real single-node Slurm on localhost (munged + slurmctld + slurmd, no systemd, no slurmdbd)
# so that launch.sh --backend slurm can be tested; the recipe of /work/shared/notes/SLURM.md.
set -euo pipefail

me=slurm_local.sh
usage="usage: $me start|stop|status
  start   install slurm-wlm and munge if missing (apt-get, as root), write /etc/slurm/slurm.conf
          (one node 'localhost', partition 'debug'), start munged, slurmctld and slurmd, and
          wait until the node is usable. Does nothing when they already run. Exits 1 with the
          reason when it cannot (not root, no apt-get, install failed, a daemon did not start).
  stop    stop the three daemons (SIGTERM by PID file) and wait until they are gone.
  status  exit 0 when this test cluster runs: our slurm.conf, the controller answers and
          the node takes jobs; else 1.
For tests only: it refuses to touch an /etc/slurm/slurm.conf that it did not write."

conf=/etc/slurm/slurm.conf
tag="# Written by audiotok recipes/utils/slurm_local.sh (a test cluster); safe to overwrite."
node=localhost   # hostname-independent: slurmd runs with -N localhost
startlog=/var/log/slurm/slurm_local.start.log
pidfiles=(/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid)

fail() { echo "$me: cannot start Slurm: $*" >&2; exit 1; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
ours() { [ ! -e "$conf" ] || grep -qxF "$tag" "$conf"; }
node_ready() { sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
controller_up() { scontrol ping 2>/dev/null | grep -q UP; }

write_conf() {
  local ncpu mem
  ncpu=$(nproc)
  # Total memory (stable across runs, unlike available memory) with headroom: slurmd drains a
  # node whose configured RealMemory exceeds what it finds.
  mem=$(($(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo) * 8 / 10))
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat >"$conf.tmp" <<EOC
$tag
ClusterName=localcluster
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
# Without it, array tasks start in rounds 3 s apart.
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOC
  if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; return 1; fi
  mv -f "$conf.tmp" "$conf"
}

# Print the last lines of the daemon logs, to say why something did not come up.
show_logs() {
  local f
  for f in "$startlog" /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
    [ -s "$f" ] && { echo "--- last lines of $f:"; tail -n 5 "$f"; }
  done >&2
  return 0
}

start() {
  [ "$(id -u)" = 0 ] || fail "needs root (it installs packages, writes $conf and starts daemons)"
  ours || fail "$conf exists and was not written by $me; not touching a real cluster's configuration"
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || fail "slurm-wlm and munge are not installed and there is no apt-get"
    echo "$me: installing slurm-wlm and munge" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
      >/tmp/slurm_local.apt.log 2>&1 || fail "apt-get install slurm-wlm munge failed (see /tmp/slurm_local.apt.log)"
  fi
  local changed=false
  write_conf && changed=true
  : >"$startlog"

  # munge: the Debian postinst writes the key; without systemd nobody creates /run/munge.
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key >>"$startlog" 2>&1 \
    || fail "cannot create /etc/munge/munge.key"
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
  # The daemons fork and keep their stdio: point it at a file, not at a caller's pipe.
  munge -n >/dev/null 2>&1 || runuser -u munge -- /usr/sbin/munged </dev/null >>"$startlog" 2>&1 \
    || { show_logs; fail "munged did not start"; }
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || { show_logs; fail "munge does not work (munge -n | unmunge)"; }

  if controller_up; then
    $changed && scontrol reconfigure >>"$startlog" 2>&1
  else
    slurmctld </dev/null >>"$startlog" 2>&1 || { show_logs; fail "slurmctld did not start"; }
  fi
  running /run/slurmd.pid || slurmd -N "$node" </dev/null >>"$startlog" 2>&1 || { show_logs; fail "slurmd did not start"; }

  local i
  for ((i = 0; i < 60; i++)); do
    node_ready && return 0
    sleep 0.5
  done
  show_logs
  fail "node $node is not idle after 30 s: $(sinfo -h -N -o '%T %E' 2>&1 | head -n 1)"
}

stop() {
  ours || { echo "$me: $conf was not written by $me; not stopping anything" >&2; exit 1; }
  local p pid pids=()
  # SIGTERM all three at once (each takes ~2 s to exit), then wait for them.
  for p in "${pidfiles[@]}"; do
    running "$p" || continue
    pid=$(cat "$p")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "$me: process $pid did not stop in 10 s" >&2; exit 1; }
  done
  return 0
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) ours && command -v scontrol >/dev/null && controller_up && node_ready ;;
  --help|-h) printf '%s\n' "$usage" ;;
  *) echo "$me: need start, stop or status (see $me --help)" >&2; exit 2 ;;
esac
