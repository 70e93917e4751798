#!/usr/bin/env bash
# A real one-node Slurm cluster on loopback (Debian's slurm-wlm and munge, from a slurm.conf generated here) runs a
# sharded `kvlens solve` and a sharded `kvlens embed` as `sbatch --array=0-2` jobs with the job script the README
# documents (scripts/slurm/kvlens-array.sbatch). Task 1 of the solve array is requeued (scontrol requeue) while it
# runs, after it has written rows: started again, it must keep them and do only the rest. Then kvlens merge combines
# each array's shards and the result is compared with the unsharded run of the same command: the solve rows and
# summary byte for byte less the fields that time the run, the embeddings byte for byte.
# Needs root (the daemons run as root here) and the packages (scripts/install-deps.sh): else it skips (77) and says
# why. Every wait is bounded; every daemon it starts is stopped on exit, also on failure (trap).
set -u
BIN=$(realpath "${KVL_BIN:-build/kvlens}")
SRC=$(realpath "${KVL_SRC:-.}")
MODEL=$SRC/models/kvlens-think-2-q8_0.gguf
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "the test cluster's daemons run as root; this is uid $(id -u)"
for c in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v "$c" >/dev/null || skip "no $c (apt-get install slurm-wlm munge; scripts/install-deps.sh)"
done
[ -f "$MODEL" ] || skip "no $MODEL"
if ldd "$BIN" 2>/dev/null | grep -q libasan; then
    skip "a sanitizer build: the scheduler test runs with the release build (tests/cli_shard.sh covers the same paths)"
fi
T=$(mktemp -d /tmp/kvl-slurm.XXXXXX)
chmod 755 "$T" # munged wants the socket's directory searchable by all
export SLURM_CONF=$T/slurm.conf
PIDS=()
cleanup() {
    if [ -f "$SLURM_CONF" ]; then
        timeout 10 scancel --quiet --full "${JOBS[@]:-0}" 2>/dev/null
        timeout 10 scontrol shutdown >/dev/null 2>&1
    fi
    sleep 1
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munged.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 1
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munged.pid"; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
JOBS=()
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
die() { echo "FAIL: $*" >&2; for l in "$T"/*.log; do echo "--- $l"; tail -n 15 "$l"; done >&2; exit 1; }
untimed() { sed -E 's/"(time_s|tok_s|prompt_tokens)": ([0-9.e+-]+|null)//g; s/"device": ("[^"]*"|null)//g; /^device  /d' "$1"; }
t0=$(date +%s)

# --- the cluster: munge, slurmctld and slurmd on 127.0.0.1, ports picked at random
dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$T/munge.key"
timeout 20 munged --force --socket="$T/munge.sock" --key-file="$T/munge.key" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munged.seed" || die "munged did not start"
P=$((20000 + RANDOM % 20000))
mkdir -p "$T/state" "$T/spool" "$T/run"
cat >"$SLURM_CONF" <<CONF
ClusterName=kvltest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$P
SlurmdPort=$((P + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MinJobAge=600
NodeName=kvlnode NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=kvlnode Default=YES MaxTime=30 State=UP
CONF
timeout 30 slurmctld -f "$SLURM_CONF" || die "slurmctld did not start"
timeout 30 slurmd -f "$SLURM_CONF" -N kvlnode || die "slurmd did not start"
for _ in $(seq 60); do
    [ "$(timeout 5 sinfo -h -o %T 2>/dev/null)" = idle ] && break
    sleep 0.5
done
[ "$(timeout 5 sinfo -h -o %T 2>/dev/null)" = idle ] || die "the node did not come up: $(timeout 5 sinfo 2>&1)"
echo "cluster up in $(($(date +%s) - t0)) s (ports $P, $((P + 1)))"

# wait_array JOB SECONDS: every task of the array finished; 0 when all COMPLETED
wait_array() {
    local end=$(($(date +%s) + $2)) states
    while [ "$(date +%s)" -lt "$end" ]; do
        states=$(timeout 10 squeue -h -j "$1" -t all -o %T 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
        if [ -n "$states" ] && ! grep -qE 'PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUE|SUSPENDED' <<<"$states"; then
            echo "array $1: $states"
            ! grep -qvE '^ ?[0-9]+ COMPLETED;?$' <<<"$(tr ';' '\n' <<<"$states" | grep .)"
            return
        fi
        sleep 1
    done
    echo "array $1 still running after $2 s: $states" >&2
    return 1
}

cd "$T/run" || exit 1
head -n 9 "$SRC/data/easy.jsonl" >"$T/run/d.jsonl"
SOLVE=(solve -m "$MODEL" --data "$T/run/d.jsonl" --think fast --max-tokens 40 --json -t 1)
KVL_PROGRESS=0 "$BIN" "${SOLVE[@]}" --out "$T/ref-solve.jsonl" >"$T/ref-solve.sum" 2>"$T/ref.err" || die "reference solve: $(cat "$T/ref.err")"
"$BIN" convert "$SRC/tests/fixtures/qwen3/hf" "$T/q3.gguf" --no-vocab --type f32 >/dev/null 2>&1 || die "convert"
awk 'BEGIN { s = 5; for (i = 0; i < 20; i++) { printf "%d", 5 + i % 7; for (j = 0; j < 3 + i % 4; j++) {
    s = (s * 1103515245 + 12345) % 2147483648; printf ",%d", 3 + int(s / 65536) % 150 } printf "\n" } }' >"$T/run/ids.txt"
EMBED=(embed -m "$T/q3.gguf" --input "$T/run/ids.txt" --format ids --layers last:2 -t 1)
"$BIN" "${EMBED[@]}" -o "$T/ref-emb" 2>"$T/ref.err" || die "reference embed: $(cat "$T/ref.err")"

SB=(sbatch --parsable --array=0-2 --cpus-per-task=1 --time=10 -D "$T/run")
# solve: slowed to 0.7 s a row so that task 1 is still running when it is requeued
J1=$(timeout 20 "${SB[@]}" -o "$T/run/solve-%A_%a.log" --export=ALL,KVLENS="$BIN",KVL_PROGRESS=0,KVL_TEST_ROW_SLEEP_MS=700 \
    "$SRC/scripts/slurm/kvlens-array.sbatch" "${SOLVE[@]}" --out "$T/run/solve.jsonl") || die "sbatch solve"
JOBS+=("$J1")
S1=$T/run/solve.shard-1-of-3.jsonl
end=$(($(date +%s) + 120))
while [ "$(date +%s)" -lt "$end" ] && ! { [ -s "$S1" ] && [ "$(grep -c . "$S1")" -ge 1 ]; }; do sleep 0.2; done
before=$(grep -c . "$S1" 2>/dev/null || echo 0)
grep -qE '"complete":[[:space:]]*false' "$S1.kvlens-run.json" 2>/dev/null && [ "$before" -ge 1 ] && [ "$before" -lt 3 ] && ok ||
    bad "task 1 was not caught mid-run ($before rows)"
timeout 10 scontrol requeue "${J1}_1" || bad "scontrol requeue ${J1}_1"
# a requeued job is held back (BeginTime) before it may start again: once it is pending, let it start now
end=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt "$end" ]; do
    st=$(timeout 10 squeue -h -j "${J1}_1" -t all -o "%T %r" 2>/dev/null)
    case "$st" in
    "PENDING BeginTime"*) timeout 10 scontrol update JobId="${J1}_1" StartTime=now 2>/dev/null ;;
    RUNNING* | COMPLETED* | FAILED* | CANCELLED*) break ;;
    esac
    sleep 0.5
done
echo "task 1 requeued with $before rows written"
J2=$(timeout 20 "${SB[@]}" -o "$T/run/embed-%A_%a.log" --export=ALL,KVLENS="$BIN" "$SRC/scripts/slurm/kvlens-array.sbatch" \
    "${EMBED[@]}" -o "$T/run/emb") || die "sbatch embed"
JOBS+=("$J2")
wait_array "$J1" 180 && ok || bad "solve array $J1 did not complete"
wait_array "$J2" 120 && ok || bad "embed array $J2 did not complete"
L1=$T/run/solve-${J1}_1.log
grep -q "restart 1" "$L1" && grep -q "$before of 3 problems already in" "$L1" && ok ||
    bad "task 1 did not resume its shard after the requeue: $(cat "$L1")"
grep -q "shard 1/3 from the environment: SLURM_ARRAY_TASK_ID=1" "$L1" && ok || bad "task 1 log: $(cat "$L1")"

KVL_PROGRESS=0 "$BIN" merge "$T/run/solve.jsonl" >"$T/solve.sum" 2>"$T/merge.err" || bad "merge solve: $(cat "$T/merge.err")"
"$BIN" merge "$T/run/emb" 2>"$T/merge.err" || bad "merge embed: $(cat "$T/merge.err")"
if cmp -s <(untimed "$T/ref-solve.jsonl") <(untimed "$T/run/solve.jsonl"); then ok; else
    bad "solve rows: sharded on Slurm + merged differ from one run: $(diff <(untimed "$T/ref-solve.jsonl") <(untimed "$T/run/solve.jsonl") | head -c 500)"
fi
if cmp -s <(untimed "$T/ref-solve.sum") <(untimed "$T/solve.sum"); then ok; else
    bad "solve summary differs: $(cat "$T/ref-solve.sum") vs $(cat "$T/solve.sum")"
fi
cmp -s "$T/ref-emb.npy" "$T/run/emb.npy" && ok || bad "embeddings: sharded on Slurm + merged differ from one run"
echo "slurm_cluster: $checks checks, $fails failed ($(($(date +%s) - t0)) s; solve 9 rows and embed 20 texts as 3 array tasks each, task 1 of solve requeued after $before rows)"
[ $fails -eq 0 ]
