# kestrel inside Slurm jobs (docs/scale-out.md), on a one-node Slurm that
# this test starts on this machine (munged, slurmctld and slurmd, each with
# its own files in $work, on free ports of 127.0.0.1; proctrack/linuxproc,
# task/none, select/cons_tres with CR_CPU: what a container allows):
# 1. `srun kestrel run` passes both streams through and srun exits with the
#    program's status; the VM's name carries the node; the task's slots are
#    its own pool; a kept VM holds none of the step's output open.
# 2. `scancel` of a batch job in the middle of a 100 s test: the run ends as
#    interrupted (not as a VM failure: QEMU lets the SIGTERM meant for the
#    job pass) and within KillWait + 5 s no QEMU and no deployment directory
#    of the job's is left.
# 3. A failed test's VM held with the job (`kestrel hold`), reached with the
#    printed `srun --jobid J --overlap` command, removed by scancel.
# 4. A CTest suite as a 2-task job array (examples/slurm): the merged JUnit
#    report lists every test once, as a one-machine run does.
# kestrel-test-timeout: 300
source "$(dirname "$0")/lib.sh"

# slurmd starts each job as its user: only root can (CI runs as root).
[ "$(id -u)" = 0 ] || skip "slurmd needs root to start jobs as their users"
for tool in munged slurmctld slurmd srun sbatch scancel squeue sinfo; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run ./dev setup (Debian: slurmctld slurmd slurm-client munge)"
done

s=$work/slurm
mkdir -p "$s/state" "$s/spool"
ports=$(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for x in socks: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in socks))')
read -r ctld_port slurmd_port <<<"$ports"
host=$(hostname -s)
kill_wait=10
export SLURM_CONF=$s/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=kestrel-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$s/munge.sock
CredType=cred/munge
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmctldLogFile=$s/slurmctld.log
SlurmdLogFile=$s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=$kill_wait
NodeName=kt-node NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
head -c 1024 /dev/urandom >"$s/munge.key"
chmod 600 "$s/munge.key"

stop_slurm() {
  scancel --full --quiet --partition=test 2>/dev/null || true
  for pid_file in "$s"/slurmd.pid "$s"/slurmctld.pid "$s"/munged.pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  sleep 0.5
  for pid_file in "$s"/slurmd.pid "$s"/slurmctld.pid "$s"/munged.pid; do
    [ -f "$pid_file" ] && kill -9 "$(cat "$pid_file")" 2>/dev/null || true
  done
}
trap 'stop_slurm; finish' EXIT

munged --force --socket="$s/munge.sock" --key-file="$s/munge.key" --log-file="$s/munged.log" \
  --pid-file="$s/munged.pid" --seed-file="$s/munged.seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N kt-node
for _ in $(seq 100); do
  [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] && break
  sleep 0.2
done
[ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] ||
  fail "the test's Slurm did not come up: $(sinfo -N 2>&1; tail -5 "$s"/slurmctld.log "$s"/slurmd.log)"

# scancel_and_wait JOB WHAT LOG LINE: cancels JOB; within KillWait + 5 s no
# QEMU and no deployment directory is left, and LOG then says LINE.
scancel_and_wait() {
  local start deadline
  start=$(now_ms)
  scancel "$1"
  deadline=$((start + (kill_wait + 5) * 1000))
  while [ -n "$(our_qemus)$(deployments)" ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.1; done
  [ -z "$(our_qemus)" ] || fail "QEMU still runs $((kill_wait + 5)) s after scancel ($2): $(our_qemus)"
  [ -z "$(deployments)" ] || fail "deployment dirs left $((kill_wait + 5)) s after scancel ($2): $(deployments)"
  echo "scancel: $2 was gone after $(($(now_ms) - start)) ms"
  for _ in $(seq 100); do
    grep -qF "$4" "$3" 2>/dev/null && return
    sleep 0.1
  done
  fail "after scancel ($2), no '$4': $(cat "$3")"
}

# 1. srun: streams, status, the node in the name, the task's own slots.
status=0
srun -n1 -c1 "$KESTREL" run --keep never -- sh -c 'echo out; echo err >&2; exit 7' >"$work/srun.out" 2>"$work/srun.err" ||
  status=$?
expect_eq "srun's status" 7 "$status"
expect_eq "srun's stdout" out "$(cat "$work/srun.out")"
grep -qx err "$work/srun.err" || fail "no err on srun's stderr: $(cat "$work/srun.err")"
grep -Eq '^kestrel: VM sh-kt-node-[0-9a-f]{6}, deployment dir ' "$work/srun.err" ||
  fail "the VM's name lacks the node: $(cat "$work/srun.err")"
ls "$KESTREL_RUNTIME_DIR/.slots" | grep -Eq '^slurm-[0-9]+\.0\.0$' ||
  fail "no slot pool of the task's own: $(ls "$KESTREL_RUNTIME_DIR/.slots")"
# A kept VM holds none of the step's output open: srun (which waits for its
# tasks' stdout and stderr to close) returns once kestrel does.
timeout 60 srun -n1 "$KESTREL" run --keep always -- true >"$work/kept.out" 2>"$work/kept.err" ||
  fail "srun with a kept VM did not return (status $?): $(cat "$work/kept.err")"
kept=$(start_dir "$work/kept.err")
[ -n "$kept" ] && [ -n "$(our_qemus)" ] || fail "no kept VM: $(cat "$work/kept.err")"
"$KESTREL" destroy -f "$kept" >/dev/null

# 2. scancel in the middle of a 100 s test.
job=$(sbatch --parsable -o "$work/job.out" -e "$work/job.err" \
  --wrap "exec $KESTREL run -- sh -c 'echo ready; sleep 100'")
for _ in $(seq 600); do
  grep -q ready "$work/job.out" 2>/dev/null && break
  sleep 0.1
done
grep -q ready "$work/job.out" || fail "the job's program never started: $(cat "$work"/job.* 2>&1)"
qemu=$(our_qemus)
[ -n "$qemu" ] || fail "no QEMU while the job runs"
# scancel signals every process of the job, in no set order: QEMU lets a
# SIGTERM pass (kestrel ends it), so its death never reads as a VM failure.
kill -TERM $qemu
for _ in $(seq 30); do
  # (pgrep lists no zombie: a QEMU that ended is gone from it at once)
  our_qemus | grep -qx "$qemu" || fail "QEMU ended on a SIGTERM of its own: $(cat "$work/job.err")"
  sleep 0.1
done
scancel_and_wait "$job" "the job's VM" "$work/job.err" "interrupted by SIGTERM"
grep -q "stopped while the program ran" "$work/job.err" && fail "a cancelled job read as a VM failure: $(cat "$work/job.err")"

# 3. A failed test in a batch job that ends with `kestrel hold`: its VM lives
# with the job, the printed srun command reaches it from outside the job, and
# scancel removes it.
job=$(sbatch --parsable -o "$work/hold.out" -e "$work/hold.err" \
  --wrap "$KESTREL run -- sh -c 'exit 3'; exec $KESTREL hold")
for _ in $(seq 600); do
  grep -q "holding while 1 kept VM" "$work/hold.err" 2>/dev/null && break
  sleep 0.1
done
grep -q "holding while 1 kept VM(s) of Slurm job $job remain" "$work/hold.err" ||
  fail "no hold: $(cat "$work"/hold.* 2>&1)"
line=$(grep -m1 '^kestrel:   from a login node:  srun ' "$work/hold.err") || fail "no srun command: $(cat "$work/hold.err")"
name=$(sed -n 's/^kestrel: test failed (exit status 3); VM \([a-z0-9-]*\) remains running.*/\1/p' "$work/hold.err")
[ -n "$name" ] || fail "no kept VM: $(cat "$work/hold.err")"
dir=$(sed -n 's/.* -f \(.*\)$/\1/p' <<<"$line")
expect_eq "the printed command" \
  "kestrel:   from a login node:  srun --jobid $job --overlap -w kt-node kestrel exec $name 'CMD' -f $dir" "$line"
out=$(srun --jobid "$job" --overlap -w kt-node kestrel exec "$name" hostname -f "$dir")
expect_eq "hostname through srun --overlap into the held job" "$name" "$out"
sleep 2  # the hold outlives the exec
expect_eq "the job after the exec" RUNNING "$(squeue -h -j "$job" -o %T)"
scancel_and_wait "$job" "the held job's kept VM" "$work/hold.err" "interrupted by SIGTERM: destroying 1 kept VM(s)"

# 4. examples/cmake-gtest's suite as a 2-task job array (examples/slurm): the
# shards' JUnit reports merged list every test once, as a one-machine run does.
cmake -S "$KESTREL_SOURCE_DIR/examples/cmake-gtest" -B "$work/build" -G Ninja \
  -DCMAKE_CROSSCOMPILING_EMULATOR="kestrel;run;--" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configure failed"; }
KESTREL_QEMU=/bin/false cmake --build "$work/build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "build failed"; }
(cd "$work/build" && ctest --output-junit "$work/one.xml" >"$work/one.log" 2>&1) || fail "one-machine ctest: $(cat "$work/one.log")"
sbatch --wait --array=0-1 -o "$work/shard-%a.out" --export="ALL,BUILD=$work/build,REPORTS=$work/reports" \
  "$KESTREL_SOURCE_DIR/examples/slurm/ctest-shards.sbatch" >/dev/null || fail "the array failed: $(cat "$work"/shard-*.out)"
python3 "$KESTREL_SOURCE_DIR/examples/slurm/merge-junit.py" "$work/merged.xml" "$work"/reports/shard-*.xml >/dev/null
cases() { python3 -c '
import sys, xml.etree.ElementTree as ET
for c in ET.parse(sys.argv[1]).getroot().iter("testcase"): print(c.get("name"), c.get("status"))' "$1" | sort; }
expect_eq "test cases of one machine" "Calc.Adds run
Vm.RunsInAKestrelVm run
all_in_one_vm run" "$(cases "$work/one.xml")"
expect_eq "test cases of the merged shards" "$(cases "$work/one.xml")" "$(cases "$work/merged.xml")"
for k in 0 1; do [ -n "$(cases "$work/reports/shard-$k.xml")" ] || fail "shard $k ran no test"; done
[ -z "$(our_qemus)$(deployments)" ] || fail "left behind: $(our_qemus) $(deployments)"
echo PASS
