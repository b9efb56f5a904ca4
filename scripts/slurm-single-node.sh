#!/usr/bin/env bash
# Make this machine a one-node Slurm cluster (Debian 12's Slurm 22.05 and MUNGE), for trying
# `cargo xtask compare --executor slurm` without a real cluster, and for CI.
#
#   sudo scripts/slurm-single-node.sh         # install if needed, configure, start; wait for the node
#   sudo scripts/slurm-single-node.sh stop    # stop slurmd, slurmctld and munged
#
# Idempotent: when the daemons are already up with this configuration and the node is usable, it
# says so and exits 0. There is no systemd here (containers, CI): the daemons are started directly
# and stopped through their pid files. Everything runs as root (SlurmUser=root); no cgroups are
# used (proctrack/linuxproc, task/none), so Slurm 22.05 needs no cgroup.conf.
#
# Files: /etc/slurm/slurm.conf, /etc/munge/munge.key, logs in /var/log/slurm/{slurmctld,slurmd}.log
# and /var/log/munge/munged.log, state in /var/lib/slurm/{slurmctld,slurmd}.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
STATEDIR=/var/lib/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
MUNGE_KEY=/etc/munge/munge.key
WAIT_S=${SLURM_SINGLE_NODE_WAIT:-60}

log() { printf 'slurm-single-node: %s\n' "$*"; }
die() {
  printf 'slurm-single-node: error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (sudo $0)"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Pid from a pid file if that process is alive, else nothing.
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

stop_one() { # name pidfile
  local pid i
  if alive "$2"; then
    pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 did not stop in 10 s; killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$2"
}

stop_all() {
  stop_one slurmd "$SLURMD_PID"
  stop_one slurmctld "$CTLD_PID"
  stop_one munged "$MUNGE_PID"
}

show_logs() {
  local f
  for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" /var/log/munge/munged.log; do
    if [ -f "$f" ]; then
      printf '\n--- tail of %s ---\n' "$f" >&2
      tail -n 25 "$f" >&2
    fi
  done
}

# The node's state as sinfo prints it, without the flag suffixes (*, ~, #, ...).
node_state() { sinfo -h -N -o %T 2>/dev/null | head -n 1 | tr -d '*~#!%$@^-' || true; }

case "${1:-start}" in
  stop)
    stop_all
    log "stopped"
    exit 0
    ;;
  start | "") ;;
  *) die "usage: $0 [start|stop]" ;;
esac

# --- packages ---------------------------------------------------------------------------------
need=()
for p in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' init scripts from starting the daemons (this script starts them, its own
  # way); a container usually has this file already.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    remove_policy=1
  fi
  # Wait for another apt/dpkg run to finish rather than fail on its lock.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ "${remove_policy:-0}" -eq 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
fi

# --- configuration ----------------------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc --all)
mem_total=$(free -m | awk '/^Mem:/ {print $2}')
margin=$((mem_total / 20))
[ "$margin" -ge 512 ] || margin=512
real_mem=$((mem_total - margin))
[ "$real_mem" -ge 256 ] || die "only ${mem_total} MB of memory; Slurm needs more than ${margin} MB spare"
# Jobs that give no --mem get an equal share per CPU (not the whole node, which would run them
# one at a time).
def_mem=$((real_mem / cpus))

mkdir -p /etc/slurm "$LOGDIR" "$STATEDIR/slurmctld" "$STATEDIR/slurmd"
new_conf=$(mktemp)
trap 'rm -f "$new_conf"' EXIT
cat >"$new_conf" <<EOF
# Written by genopred's scripts/slurm-single-node.sh: a one-node cluster on this machine.
ClusterName=genopred-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=${def_mem}
ReturnToService=2
MailProg=/bin/true
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
StateSaveLocation=${STATEDIR}/slurmctld
SlurmdSpoolDir=${STATEDIR}/slurmd
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mem} State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
conf_changed=0
if ! cmp -s "$new_conf" "$CONF"; then
  if [ -f "$CONF" ]; then log "updating $CONF"; else log "writing $CONF"; fi
  install -m 0644 "$new_conf" "$CONF"
  conf_changed=1
fi

# --- already up? ------------------------------------------------------------------------------
if [ "$conf_changed" -eq 0 ] && alive "$MUNGE_PID" && alive "$CTLD_PID" && alive "$SLURMD_PID"; then
  state=$(node_state)
  case "$state" in
    idle | mixed | allocated | completing)
      log "already running: node ${host} is ${state} (Slurm $(sinfo -V | awk '{print $2}'))"
      exit 0
      ;;
  esac
fi
if [ "$conf_changed" -eq 1 ] || ! alive "$CTLD_PID" || ! alive "$SLURMD_PID"; then
  # A new configuration, or one daemon gone: start both afresh. (Both up but the node down or
  # drained: the wait below resumes it.)
  stop_one slurmd "$SLURMD_PID"
  stop_one slurmctld "$CTLD_PID"
fi

# --- munge ------------------------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s "$MUNGE_KEY" ]; then
  log "creating $MUNGE_KEY"
  (umask 077 && dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none)
fi
chown munge:munge /etc/munge "$MUNGE_KEY" /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge
chmod 0400 "$MUNGE_KEY"
chmod 0755 /run/munge
if ! alive "$MUNGE_PID"; then
  rm -f "$MUNGE_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
fi
for i in $(seq 1 50); do
  munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
  [ "$i" -lt 50 ] || {
    show_logs
    die "munged does not answer"
  }
  sleep 0.2
done

# --- slurmctld, slurmd ------------------------------------------------------------------------
# Both fork into the background; the child writes the pid file a moment later.
start_daemon() { # name pidfile
  local i
  alive "$2" && return 0
  log "starting $1"
  rm -f "$2"
  "/usr/sbin/$1" || {
    show_logs
    die "$1 did not start"
  }
  for i in $(seq 1 100); do
    alive "$2" && return 0
    sleep 0.1
  done
  show_logs
  die "$1 is not running 10 s after starting it"
}
start_daemon slurmctld "$CTLD_PID"
start_daemon slurmd "$SLURMD_PID"

# --- wait for the node ------------------------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
next_resume=0
state=
while [ "$SECONDS" -lt "$deadline" ]; do
  alive "$CTLD_PID" || {
    show_logs
    die "slurmctld exited"
  }
  alive "$SLURMD_PID" || {
    show_logs
    die "slurmd exited"
  }
  state=$(node_state)
  case "$state" in
    idle | mixed | allocated | completing)
      log "ready: node ${host} is ${state}, ${cpus} CPUs, ${real_mem} MB (Slurm $(sinfo -V | awk '{print $2}'))"
      exit 0
      ;;
    down | drained | draining | drain | fail | failing)
      if [ "$SECONDS" -ge "$next_resume" ]; then
        log "node ${host} is ${state} ($(sinfo -h -N -o %E 2>/dev/null | head -n 1)); resuming it"
        scontrol update nodename="$host" state=resume 2>/dev/null || true
        next_resume=$((SECONDS + 10))
      fi
      ;;
  esac
  sleep 1
done
show_logs
die "node ${host} not idle after ${WAIT_S} s (state: ${state:-unknown}; sinfo -R: $(sinfo -h -R 2>/dev/null | head -n 1))"
