# Shared by the bench/*.sh scripts (sourced, not run): the tidings binary, a private tidings node
# on loopback, and `measure`, which runs one `tidings bench` load and appends its JSON report to
# the results file that bench/run-all.sh turns into bench/RESULTS.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BIN=${TIDINGS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/tidings}
# One line per measurement: label <TAB> server <TAB> command <TAB> JSON report.
RESULTS=${RESULTS:-$BENCH_DIR/out/results.tsv}
# Seconds each load runs (the issue asks for short runs; override for longer ones).
SECS=${SECS:-15}
KEEP=${KEEP:-}
WORK=$(mktemp -d /tmp/tidings-bench.XXXXXX)
# The peers drop privileges: they must reach their directories under it.
chmod 755 "$WORK"
PIDS=()
mkdir -p "$(dirname "$RESULTS")"

if [ ! -x "$BIN" ]; then
  echo "$BIN is missing: cargo build --release -p tidings first" >&2
  exit 1
fi

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${CLEANUP_EXTRA:-}" ] && eval "$CLEANUP_EXTRA" || true
  [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# wait_port PORT: waits (at most 30 s) until something listens on 127.0.0.1:PORT.
wait_port() {
  local i
  for i in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# start_tidings: a demo node (domain mmsys.upenn.edu) on the script's data directory (fresh at the
# first start; a restart keeps it), cleartext
# listeners on 12525 (SMTP), 11110 (POP3), 11143 (IMAP), 16667 (IRC), 18080 (HTTP: the chat
# WebSocket), flood limits off, connection limits raised for the loads; sets TIDINGS_PID and
# TIDINGS_DATA.
start_tidings() {
  local dir="$WORK/tidings"
  mkdir -p "$dir"
  rm -f "$dir/ready"
  cat > "$dir/tidings.toml" <<TOML
[server]
hostname = "mx.bench.example"
[udp]
enabled = false
[smtp]
connections_per_ip_max = 1000
[pop3]
connections_per_ip_max = 1000
[imap]
connections_per_ip_max = 1000
[chat]
connections_per_ip_max = 300000
connections_max = 300000
[irc]
flood_lines_per_sec = 0
# Idle loads do not answer PINGs: as ngircd and InspIRCd are set up, ten minutes before the first.
ping_interval_secs = 600
[web]
flood_requests_per_sec = 0
[[listener]]
service = "smtp"
address = "127.0.0.1:12525"
tls = "none"
[[listener]]
service = "pop3"
address = "127.0.0.1:11110"
tls = "none"
[[listener]]
service = "imap"
address = "127.0.0.1:11143"
tls = "none"
[[listener]]
service = "irc"
address = "127.0.0.1:16667"
tls = "none"
[[listener]]
service = "http"
address = "127.0.0.1:18080"
tls = "none"
TOML
  TIDINGS_DATA="$dir/data"
  "$BIN" serve --demo -c "$dir/tidings.toml" --data "$TIDINGS_DATA" --ready-file "$dir/ready" >> "$dir/log" 2>&1 &
  TIDINGS_PID=$!
  PIDS+=("$TIDINGS_PID")
  local i
  for i in $(seq 300); do [ -f "$dir/ready" ] && return 0; sleep 0.1; done
  echo "tidings did not start:" >&2; cat "$dir/log" >&2; return 1
}

# tidings_accounts N: creates bench0..bench(N-1)@mmsys.upenn.edu, password CIS505.
tidings_accounts() {
  local i
  for i in $(seq 0 $(($1 - 1))); do
    echo CIS505 | "$BIN" account --data "$TIDINGS_DATA" add "bench$i@mmsys.upenn.edu" --password-stdin > /dev/null
  done
}

# users PREFIX SUFFIX N: the --user/--to arguments for PREFIX0SUFFIX .. PREFIX(N-1)SUFFIX.
users() {
  local flag=$1 prefix=$2 suffix=$3 n=$4 i
  for i in $(seq 0 $((n - 1))); do printf -- '%s %s%s%s ' "$flag" "$prefix" "$i" "$suffix"; done
}

# measure LABEL SERVER ARGS...: runs `tidings bench --json ARGS...`, prints the text report line,
# and appends the result to $RESULTS.
measure() {
  local label=$1 server=$2; shift 2
  local json
  echo "== $label on $server: tidings bench $*" >&2
  # A failed load costs its own row only: the script goes on with the others.
  json=$("$BIN" bench --json "$@") || { echo "   failed (exit $?): its row is missing" >&2; return 0; }
  printf '%s\t%s\t%s\t%s\n' "$label" "$server" "tidings bench $*" "$json" >> "$RESULTS"
  echo "$json" | python3 -c 'import json, sys; r = json.load(sys.stdin); l = r.get("latency_ms") or {}; print("   %.0f/s over %s s; latency ms p50 %s p99 %s" % (r["per_sec"], r["seconds"], l.get("p50"), l.get("p99")))' >&2
}
