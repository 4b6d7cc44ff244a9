#!/usr/bin/env bash
# End-to-end test of the image and deploy/docker-compose.yml, run by CI:
#
#   1. removes leftovers of earlier runs that crashed;
#   2. runs the commands of docs/operations.md, "Deploy with Docker Compose"
#      (build the image, up -d, ps, Set, Check, Status, healthcheck, logs),
#      under a project name of its own and checking each "# expect:" line;
#   3. waits (with a deadline) until all three containers are healthy;
#   4. docker-kills the leader's container, checks that a read sent during
#      the election never answers ALLOW, that both survivors elect a leader,
#      still answer DECISION_DENY and accept a new write, then starts the
#      killed node again and checks that it catches up;
#   5. runs the doc's "down" + "up -d", checks the data survived, and its
#      "down -v", checks nothing is left.
#
# Cleans up its containers, network and volumes on success, failure and
# Ctrl-C. Skips (exit 0) without a Docker daemon or docker-compose. Prints
# PASS and exits 0, or prints FAIL and why and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

compose_file=deploy/docker-compose.yml
doc=docs/operations.md
doc_section="## Deploy with Docker Compose"
prefix=optoutdtest
project="$prefix$$"
nodes=(n1 n2 n3)
t0=$(date +%s)

# Progress goes to stderr, so that functions whose stdout is captured can log.
log() { printf '[compose-test t+%ss] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
failure=""
fail() {
	failure="$*"
	log "FAIL: $*"
	exit 1
}
skip() {
	log "SKIP: $*"
	exit 0
}

command -v docker >/dev/null 2>&1 || skip "no docker CLI"
docker info >/dev/null 2>&1 || skip "no Docker daemon answers ('docker info' fails)"
command -v docker-compose >/dev/null 2>&1 || skip "no docker-compose (the v1 CLI) on PATH"
for tool in curl timeout awk; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed"
done

compose() { docker-compose -f "$compose_file" -p "$project" "$@"; }

# project_objects P: the ids of every container, network and volume that
# docker-compose labelled as belonging to project P.
project_objects() {
	local f="label=com.docker.compose.project=$1"
	docker ps -aq --filter "$f"
	docker network ls -q --filter "$f"
	docker volume ls -q --filter "$f"
}

# remove_project P: compose down -v, then anything still labelled P.
remove_project() {
	local p=$1 f="label=com.docker.compose.project=$1"
	docker-compose -f "$compose_file" -p "$p" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
	docker ps -aq --filter "$f" | xargs -r docker rm -f >/dev/null 2>&1 || true
	docker network ls -q --filter "$f" | xargs -r docker network rm >/dev/null 2>&1 || true
	docker volume ls -q --filter "$f" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
}

# Leftovers: projects named $prefix<pid> whose compose-test is gone.
remove_leftovers() {
	local p pid
	for p in $({
		docker ps -a --format '{{.Label "com.docker.compose.project"}}'
		docker network ls --format '{{.Label "com.docker.compose.project"}}'
		docker volume ls --format '{{.Label "com.docker.compose.project"}}'
	} | grep -E "^${prefix}[0-9]+\$" | sort -u); do
		pid=${p#"$prefix"}
		if [ "$pid" != $$ ] && kill -0 "$pid" 2>/dev/null && grep -qa compose-test "/proc/$pid/cmdline" 2>/dev/null; then
			log "project $p belongs to a compose-test that is still running (pid $pid); leaving it alone"
			continue
		fi
		log "removing leftovers of an earlier run: project $p"
		remove_project "$p"
	done
}

diagnostics() {
	[ -n "$(project_objects "$project")" ] || return 0
	log "diagnostics for project $project:"
	compose ps 2>&1 | sed 's/^/    /' || true
	local n id
	for n in "${nodes[@]}"; do
		id=$(compose ps -q "$n" 2>/dev/null || true)
		[ -n "$id" ] || continue
		echo "    --- $n: last health checks"
		docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}' "$id" 2>&1 | tail -n 3 | sed 's/^/    /' || true
		echo "    --- $n: last log lines"
		docker logs --tail 15 "$id" 2>&1 | sed 's/^/    /' || true
	done
}

cleaned=0
cleanup() {
	local rc=$?
	trap '' INT TERM
	[ "$cleaned" = 0 ] || exit "$rc"
	cleaned=1
	case $rc in 0 | 130 | 143) ;; *) diagnostics ;; esac
	log "cleaning up project $project"
	remove_project "$project"
	if [ -n "$(project_objects "$project")" ]; then
		log "WARNING: could not remove everything of project $project:"
		project_objects "$project" | sed 's/^/    /'
		[ "$rc" != 0 ] || rc=1
	fi
	# Repeat the reason last, where a CI log is read first.
	if [ -n "$failure" ]; then
		log "FAIL: $failure"
	elif [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; then
		log "FAIL (exit status $rc): the reason is above"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

remove_leftovers

# --- ports: the documented 127.0.0.1:7001-7003 unless something uses them.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A port
want=7001
for n in "${nodes[@]}"; do
	p=$want
	while port_busy "$p"; do p=$((20000 + RANDOM % 30000)); done
	[ "$p" = "$want" ] || log "127.0.0.1:$want is busy; publishing $n on 127.0.0.1:$p instead"
	port[$n]=$p
	want=$((want + 1))
done
export OPTOUT_N1_PORT=${port[n1]} OPTOUT_N2_PORT=${port[n2]} OPTOUT_N3_PORT=${port[n3]}
unset OPTOUT_IMAGE

# --- running the doc's commands ------------------------------------------

# doc_block SUB: the lines of the ```sh blocks under "### SUB" of the
# compose section of docs/operations.md.
doc_block() {
	awk -v sec="$doc_section" -v want="### $1" '
		/^```/ { if (fence) { fence = 0; sh = 0 } else { fence = 1; sh = ($0 == "```sh" && insub) }; next }
		fence { if (sh) print; next }
		/^## / { insec = ($0 == sec); insub = 0; next }
		/^### / { insub = insec && ($0 == want); next }
	' "$doc"
}

# doc_subsections: the "###" headings of the compose section that hold a
# ```sh block.
doc_subsections() {
	awk -v sec="$doc_section" '
		/^```/ { if (fence) { fence = 0 } else { fence = 1; if ($0 == "```sh" && insec && subname != "") print subname }; next }
		fence { next }
		/^## / { insec = ($0 == sec); subname = ""; next }
		/^### / { subname = substr($0, 5); next }
	' "$doc" | sort -u
}

# rewrite CMD: the doc's command aimed at this test's project and ports.
rewrite() {
	local c=$1
	if [[ $c =~ (^|[^-])docker[[:space:]] ]]; then
		fail "the doc runs a plain docker command, which this test will not run: $c"
	fi
	if [[ $c == *docker-compose* ]]; then
		[[ $c == *"docker-compose -f deploy/docker-compose.yml -p optoutd "* ]] ||
			fail "a docker-compose command in the doc does not start with 'docker-compose -f deploy/docker-compose.yml -p optoutd': $c"
		c=${c//"-p optoutd "/"-p $project "}
	fi
	c=${c//"127.0.0.1:7001"/"127.0.0.1:${port[n1]}"}
	c=${c//"127.0.0.1:7002"/"127.0.0.1:${port[n2]}"}
	c=${c//"127.0.0.1:7003"/"127.0.0.1:${port[n3]}"}
	printf '%s' "$c"
}

nospace() { tr -d '[:space:]'; }

# run_doc SUB: runs every command of "### SUB" in order; each must exit 0
# and print its "# expect:" text (compared without whitespace).
run_doc() {
	local sub=$1 line trimmed cur="" i c out
	local -a cmds=() expects=()
	while IFS= read -r line; do
		trimmed="${line#"${line%%[![:space:]]*}"}"
		case $trimmed in
		"# expect:"*)
			[ ${#cmds[@]} -gt 0 ] || fail "docs: '# expect:' before any command in '### $sub'"
			expects[${#cmds[@]}-1]="${trimmed#"# expect:"}"
			;;
		"#"* | "") ;;
		*)
			if [[ $line == *\\ ]]; then
				cur+="${line%\\} "
			else
				cmds+=("$cur$line")
				expects+=("")
				cur=""
			fi
			;;
		esac
	done < <(doc_block "$sub")
	[ ${#cmds[@]} -gt 0 ] || fail "$doc has no commands under '### $sub' of '$doc_section'"
	out=$(mktemp)
	for i in "${!cmds[@]}"; do
		c=$(rewrite "${cmds[$i]}")
		log "doc: ${cmds[$i]}"
		if ! timeout --foreground 600 bash -c "$c" >"$out" 2>&1; then
			sed 's/^/    /' "$out"
			rm -f "$out"
			fail "the documented command failed: $c"
		fi
		if [ -n "${expects[$i]}" ] && [[ "$(nospace <"$out")" != *"$(printf '%s' "${expects[$i]}" | nospace)"* ]]; then
			sed 's/^/    /' "$out"
			rm -f "$out"
			fail "the output of '$c' lacks the documented '${expects[$i]# }'"
		fi
	done
	rm -f "$out"
}

# --- talking to the nodes --------------------------------------------------

# api NODE METHOD JSON: POST to the Connect JSON API of NODE.
api() {
	curl -sS -m 8 -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:${port[$1]}/$2" 2>&1
}

# field NAME: the first string value of "NAME" in the JSON on stdin.
field() { nospace | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4 || true; }

container_of() { compose ps -q "$1"; }

# wait_healthy LIMIT NODES...: until Docker reports every node healthy.
wait_healthy() {
	local limit=$1 start now last=0 all summary n id st
	shift
	start=$(date +%s)
	while :; do
		all=1 summary=""
		for n in "$@"; do
			id=$(container_of "$n" 2>/dev/null || true)
			st=missing
			[ -z "$id" ] || st=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)
			summary+="$n=$st "
			[ "$st" = healthy ] || all=0
		done
		now=$(date +%s)
		if [ "$all" = 1 ]; then
			log "healthy after $((now - start))s: $summary"
			return 0
		fi
		[ $((now - start)) -lt "$limit" ] || fail "not all healthy after ${limit}s: $summary"
		if [ $((now - last)) -ge 3 ]; then
			log "waiting for health: $summary"
			last=$now
		fi
		sleep 1
	done
}

# leader_seen_by LIMIT NOT NODES...: the leader every one of NODES reports,
# once they agree on one that is not NOT.
leader_seen_by() {
	local limit=$1 not=$2 start l seen ok n
	shift 2
	start=$(date +%s)
	while :; do
		seen="" ok=1
		for n in "$@"; do
			l=$(api "$n" optout.v1.ClusterService/Status '{}' | field leaderId)
			if [ -z "$l" ] || [ "$l" = "$not" ] || { [ -n "$seen" ] && [ "$l" != "$seen" ]; }; then ok=0; fi
			seen=${seen:-$l}
		done
		if [ "$ok" = 1 ]; then
			printf '%s' "$seen"
			return 0
		fi
		[ $(($(date +%s) - start)) -lt "$limit" ] || return 1
		sleep 0.2
	done
}

# expect_deny LIMIT NODE SUBJECT: Check on NODE until it answers. DENY
# passes; ALLOW fails at once (an acknowledged opt-out lost, or a stale
# read); errors (unavailable during an election) are retried.
expect_deny() {
	local limit=$1 n=$2 s=$3 start r first=""
	start=$(date +%s)
	while :; do
		r=$(api "$n" optout.v1.OptOutService/Check "{\"subjectId\":\"$s\",\"purpose\":\"email_marketing\"}")
		case $(printf '%s' "$r" | nospace) in
		*'"decision":"DECISION_DENY"'*)
			log "$n: Check $s -> DECISION_DENY ($(($(date +%s) - start))s${first:+; first answer: $first})"
			return 0
			;;
		*'"decision":'*) fail "$n answered Check $s with something other than DENY: $r" ;;
		esac
		first=${first:-$(printf '%s' "$r" | tr -s '[:space:]' ' ' | cut -c1-160)}
		[ $(($(date +%s) - start)) -lt "$limit" ] || fail "$n: no answer to Check $s within ${limit}s; last: $r"
		sleep 0.5
	done
}

# opt_out LIMIT NODE SUBJECT: Set SUBJECT opted out through NODE, retrying
# errors under one idempotency key; prints the write's version (log index).
opt_out() {
	local limit=$1 n=$2 s=$3 start r v
	start=$(date +%s)
	while :; do
		r=$(api "$n" optout.v1.OptOutService/Set "{\"subjectId\":\"$s\",\"purpose\":\"email_marketing\",\"state\":\"STATE_OPTED_OUT\",\"source\":\"compose-test\",\"idempotencyKey\":\"compose-test-$project-$s\"}")
		v=$(printf '%s' "$r" | field version)
		if [[ $(printf '%s' "$r" | nospace) == *'"state":"STATE_OPTED_OUT"'* && -n $v ]]; then
			log "$n: Set $s opted out -> version $v ($(($(date +%s) - start))s)"
			printf '%s' "$v"
			return 0
		fi
		[ $(($(date +%s) - start)) -lt "$limit" ] || fail "$n: Set $s not acknowledged within ${limit}s; last: $r"
		sleep 0.5
	done
}

# --- the test ---------------------------------------------------------------

log "project $project, API ports ${port[n1]} ${port[n2]} ${port[n3]}"

# Every compose block of the doc is run here, except the one that runs
# this script.
ran_subsections=("Start the cluster" "Use it" "Stop and resume" "Remove the cluster and its data")
expected=$(printf '%s\n' "${ran_subsections[@]}" "When a node fails" | sort -u)
[ "$(doc_subsections)" = "$expected" ] ||
	fail "the sh blocks of '$doc_section' in $doc are under: $(doc_subsections | paste -sd, -); this test runs: $(printf '%s\n' "${ran_subsections[@]}" | paste -sd, -)"

build_start=$(date +%s)
run_doc "Start the cluster"
log "image built and cluster created in $(($(date +%s) - build_start))s"
wait_healthy 90 "${nodes[@]}"
run_doc "Use it"

# Failover: kill the leader's container.
leader=$(leader_seen_by 20 "" "${nodes[@]}") || fail "the three nodes do not agree on a leader"
case $leader in n1 | n2 | n3) ;; *) fail "leaderId '$leader' is not a service of $compose_file" ;; esac
victim=$(container_of "$leader")
docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$victim" | grep -qx "OPTOUT_ID=$leader" ||
	fail "container $victim of service $leader does not run node $leader"
survivors=()
for n in "${nodes[@]}"; do [ "$n" = "$leader" ] || survivors+=("$n"); done
log "leader is $leader; docker kill ${victim:0:12}"
docker kill "$victim" >/dev/null
kill_ms=$(date +%s%3N)
# A read sent during the election may fail, but must never answer ALLOW.
early=$(mktemp)
{
	api "${survivors[0]}" optout.v1.OptOutService/Check '{"subjectId":"u1","purpose":"email_marketing"}'
	echo " ($(($(date +%s%3N) - kill_ms)) ms after the kill)"
} >"$early" &
early_pid=$!
new_leader=$(leader_seen_by 30 "$leader" "${survivors[@]}") || fail "the survivors elected no new leader within 30s"
log "both survivors report the new leader $new_leader $(($(date +%s%3N) - kill_ms)) ms after the kill"
for n in "${survivors[@]}"; do expect_deny 30 "$n" u1; done
wait "$early_pid" || true
early_answer=$(tr -s '[:space:]' ' ' <"$early" | cut -c1-200)
rm -f "$early"
case $(printf '%s' "$early_answer" | nospace) in
*'"decision":"DECISION_DENY"'*)
	log "${survivors[0]}: Check u1 sent during the election -> $early_answer"
	;;
*'"decision":'*) fail "${survivors[0]} answered a Check sent during the election with a decision other than DENY: $early_answer" ;;
*) log "${survivors[0]}: Check u1 sent during the election failed, which is allowed (no stale answer): $early_answer" ;;
esac
v2=$(opt_out 30 "${survivors[0]}" u2)
expect_deny 10 "${survivors[1]}" u2

# The killed node comes back and catches up.
log "docker-compose start $leader"
compose start "$leader" >/dev/null 2>&1 || fail "could not start $leader again"
wait_healthy 60 "$leader"
applied=$(api "$leader" optout.v1.ClusterService/Status '{}' | field appliedIndex)
if ! [[ $applied =~ ^[0-9]+$ ]] || [ "$applied" -lt "$v2" ]; then
	fail "$leader is healthy but has applied up to '$applied', before the write at $v2 it missed"
fi
log "$leader applied up to $applied (the write it missed is at $v2)"
expect_deny 10 "$leader" u2
leader_seen_by 20 "" "${nodes[@]}" >/dev/null || fail "the restarted node does not agree on the leader"

# Stop and resume from the volumes.
run_doc "Stop and resume"
wait_healthy 90 "${nodes[@]}"
for n in "${nodes[@]}"; do
	expect_deny 20 "$n" u1
	expect_deny 20 "$n" u2
done

run_doc "Remove the cluster and its data"
left=$(project_objects "$project")
[ -z "$left" ] || fail "'down -v' left objects of project $project: $left"

log "PASS in $(($(date +%s) - t0))s: healthy start, reads and a write through the survivors of a leader kill, catch-up of the restarted node, data kept across down/up, nothing left after down -v"
