#!/usr/bin/env bash
# Real restores as the oracle of critq check (issue 16): each scenario starts
# a small process tree on this machine, dumps it with CRIU, changes the host
# in one way (or not), asks `critq check` for a prediction, then restores with
# CRIU and records what CRIU did. One TSV line per scenario on stdout:
#
#   scenario  critq-check-exit  critq-check-first-problem  criu-restore-rc  criu-error
#
# Needs root, a CRIU that passes `criu check` (scripts/build-criu.sh), python3
# and gcc. Not run by .ci/run.
#
#   scripts/restore-scenarios.sh CRIU CRITQ [WORKDIR]
set -uo pipefail
py=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a shim that forks it
criu=${1:?usage: restore-scenarios.sh CRIU CRITQ [WORKDIR]}
critq=${2:?usage: restore-scenarios.sh CRIU CRITQ [WORKDIR]}
base=${3:-$(mktemp -d /tmp/critq-restore.XXXXXX)}
mkdir -p "$base"

pids_to_kill=()
cleanup() { for p in "${pids_to_kill[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

# start NAME CMD...: runs CMD in $base/NAME/work as a new session, prints its pid.
start() {
	local name=$1; shift
	mkdir -p "$base/$name/work" "$base/$name/dump"
	(cd "$base/$name/work" || exit; setsid "$@" </dev/null >/dev/null 2>&1 & echo $! >"$base/$name/pid")
	sleep 1.5
	cat "$base/$name/pid"
}

# scenario NAME DUMPOPTS RESTOREOPTS CHECKOPTS CHANGE: dump, change, check, restore.
scenario() {
	local name=$1 dumpopts=$2 restoreopts=$3 checkopts=$4 change=$5 pid=$6
	local d=$base/$name/dump
	# shellcheck disable=SC2086
	if ! "$criu" dump -t "$pid" -D "$d" -o dump.log -v4 $dumpopts; then
		printf '%s\tdump failed\t%s\n' "$name" "$(grep -m1 Error "$d/dump.log")"
		return
	fi
	# A dumped tree is killed by CRIU: wait until its pid is gone.
	case " $dumpopts " in *" --leave-running "*) ;; *)
		for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done ;;
	esac
	(cd "$base/$name/work" && eval "$change")
	local out code first
	out=$("$critq" check "$checkopts" "$d" 2>&1); code=$?
	first=$(printf '%s\n' "$out" | grep -m1 -E 'FAIL|no problem' | sed 's/^ *//')
	# shellcheck disable=SC2086
	"$criu" restore -D "$d" -d -o restore.log -v4 $restoreopts; local rc=$?
	local err
	err=$(grep -E 'Error \(' "$d/restore.log" | grep -v -e 'rlimit: ' -e 'Restoring FAILED' | head -1 | sed 's/^.*Error ([^)]*): //' | cut -c1-120)
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$code" "$first" "$rc" "${err:--}"
	# The restored tree, if any, is killed.
	if [ "$rc" = 0 ]; then
		local root
		root=$("$critq" --format raw 'tasks[0].pid' "$d" 2>/dev/null)
		[ -n "$root" ] && kill -9 "$root" 2>/dev/null
	fi
}

printf 'scenario\tcheck-exit\tcheck-first\tcriu-rc\tcriu-error\n'

p=$(start ok-plain sleep 1000)
scenario ok-plain "" "" "--criu-options=" "true" "$p"

for s in file-renamed file-grown file-chmod; do
	mkdir -p "$base/$s/work"; echo data >"$base/$s/work/data.txt"
	p=$(start $s sh -c 'exec 3<data.txt; exec sleep 1000')
	case $s in
	file-renamed) change='mv data.txt data.old' ;;
	file-grown) change='echo more >>data.txt' ;;
	file-chmod) change='chmod 600 data.txt' ;;
	esac
	scenario $s "" "" "--criu-options=" "$change" "$p"
done

mkdir -p "$base/cwd-removed/work/sub"
p=$(start cwd-removed sh -c 'cd sub && exec sleep 1000')
scenario cwd-removed "" "" "--criu-options=" "rmdir sub" "$p"

p=$(start port-taken "$py" -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 47601)); s.listen(); time.sleep(1000)')
scenario port-taken "" "" "--criu-options=" "("$py" -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", 47601)); s.listen(); time.sleep(60)' & echo \$! > ../squatter; sleep 1.5)" "$p"
pids_to_kill+=("$(cat "$base/port-taken/squatter" 2>/dev/null)")

p=$(start port-free "$py" -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 47602)); s.listen(); time.sleep(1000)')
scenario port-free "" "" "--criu-options=" "true" "$p"

p=$(start pid-in-use sleep 1000)
pids_to_kill+=("$p")
scenario pid-in-use "--leave-running" "" "--criu-options=" "true" "$p"

mkdir -p "$base/shell-job/work" "$base/shell-job-opt/work"
for s in shell-job shell-job-opt; do
	start $s bash -c 'sleep 1000 & echo $! > child; wait' >/dev/null
	pids_to_kill+=("$(cat "$base/$s/pid")")
done
ropt=""; copt="--criu-options="
scenario shell-job "--shell-job" "$ropt" "$copt" "true" "$(cat "$base/shell-job/work/child")"
scenario shell-job-opt "--shell-job" "--shell-job" "--criu-options=--shell-job" "true" "$(cat "$base/shell-job-opt/work/child")"

tcp='import socket,time
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", PORT)); l.listen()
c=socket.create_connection(("127.0.0.1", PORT)); a,_=l.accept(); c.send(b"hello"); time.sleep(1000)'
p=$(start tcp-no-opt "$py" -c "${tcp//PORT/47603}")
scenario tcp-no-opt "--tcp-established --network-lock skip" "--network-lock skip" "--criu-options=--network-lock skip" "true" "$p"
p=$(start tcp-opt "$py" -c "${tcp//PORT/47604}")
scenario tcp-opt "--tcp-established --network-lock skip" "--tcp-established --network-lock skip" "--criu-options=--tcp-established --network-lock skip" "true" "$p"

p=$(start unix-path-taken "$py" -c 'import socket,time; s=socket.socket(socket.AF_UNIX); s.bind("srv.sock"); s.listen(); time.sleep(1000)')
scenario unix-path-taken "" "" "--criu-options=" "rm -f srv.sock && echo x > srv.sock" "$p"

mkdir -p "$base/exe-rebuilt/work"
printf '#include <unistd.h>\nint main(void){for(;;)sleep(1000);}\n' >"$base/exe-rebuilt/work/prog.c"
gcc -O1 -o "$base/exe-rebuilt/work/prog" "$base/exe-rebuilt/work/prog.c"
p=$(start exe-rebuilt ./prog)
scenario exe-rebuilt "" "" "--criu-options=" "printf '#include <unistd.h>\nint main(void){for(;;)pause();return 1;}\n' > prog.c && gcc -O1 -o prog prog.c" "$p"
