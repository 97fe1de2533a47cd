#!/usr/bin/env bash
# IRC fan-out: $CONNECTIONS connections over $ROOMS channels, each member sending PRIVMSGs at a
# fixed rate, against tidings (16667), ngircd (16668) and InspIRCd (16669), each with a private
# config on loopback with flood limits off for the load (ngircd: MaxPenaltyTime = 0; InspIRCd: a
# connect class without fakelag and with a high command rate). Per server:
#
# 1. a fan-out at $RATE msg/s per member (the same offered load everywhere);
# 2. a sweep of per-member rates ($RATES, ascending) that stops at the first rate the server does
#    not keep up with: a step keeps up when every delivery arrives and the deliveries per second
#    reach 95% of those offered. The server's saturation is the best step that kept up;
# 3. once the peers are swept, a run of tidings and of each peer at half the better peer's
#    saturation, to compare their latencies at the same offered load;
# 4. the memory per registered idle connection ($IDLE connections on each server), and on tidings
#    alone with as many as the open files limit allows, up to $IDLE_MAX.
#
# tidings alone also runs the fan-out of 1. over its WebSocket chat API (the peers have none).
#
# Needs root and the Debian packages ngircd and inspircd (installed when missing).
source "$(dirname "$0")/lib.sh"
command -v ngircd > /dev/null && command -v inspircd > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ngircd inspircd; }

CONNECTIONS=${CONNECTIONS:-1000}
ROOMS=${ROOMS:-10}
RATE=${RATE:-1}
RATES=${RATES:-0.5 1 2 4 8 16 24 32 48 64}
IDLE=${IDLE:-5000}
IDLE_MAX=${IDLE_MAX:-250000}
# One line per sweep step: server <TAB> rate per member <TAB> JSON report (run-all.sh tabulates it).
SWEEP=${SWEEP:-$(dirname "$RESULTS")/sweep.tsv}
: > "$SWEEP"
FANOUT="$CONNECTIONS conns / $ROOMS channels"
# reg SERVER: registrations in progress at once. InspIRCd takes about a second over each here
# (cause not found): many at once; ngircd drops connections that come 250 at once (its listen
# backlog, it seems).
reg() { if [ "$1" = inspircd ]; then echo "--parallel-registrations 250"; else echo "--parallel-registrations 50"; fi; }

# Every connection is a descriptor, on both sides: take what the hard limit allows (only an
# administrator can raise the hard limit itself).
want=$(( (IDLE_MAX > IDLE ? IDLE_MAX : IDLE) + 1000 ))
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$want" ] || ulimit -Hn "$want" 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
declare -A SATURATION  # server -> per-member rate of its best step that kept up

# sweep SERVER ADDRESS: the fan-out at each rate of $RATES until the server falls behind; every
# step goes to $SWEEP, the best step that kept up to the results as its saturation.
sweep() {
  local rate json best="" kept="" error
  for rate in $RATES; do
    echo "== IRC sweep on $1: $rate msg/s per member" >&2
    if ! json=$("$BIN" bench --json irc --server "$2" --connections "$CONNECTIONS" --rooms "$ROOMS" \
      --rate "$rate" --duration "$SECS" $(reg "$1") 2> "$WORK/sweep.err"); then
      error=$(tail -1 "$WORK/sweep.err")
      echo "   failed: $error" >&2
      printf '%s\t%s\t%s\n' "$1" "$rate" "$(python3 -c 'import json, sys; print(json.dumps({"failed": sys.argv[1]}))' "$error")" >> "$SWEEP"
      kept=no
      break
    fi
    kept=$(echo "$json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
offered = r["expected"] / r["duration"]
print("yes" if r["missing"] == 0 and r["per_sec"] >= 0.95 * offered else "no")')
    printf '%s\t%s\t%s\n' "$1" "$rate" "$json" >> "$SWEEP"
    echo "   $(echo "$json" | python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.0f deliveries/s, p99 %s ms" % (r["per_sec"], r["latency_ms"]["p99"]))'); kept up: $kept" >&2
    [ "$kept" = yes ] || break
    best=$json
  done
  if [ -n "$best" ]; then
    # Kept up at the highest rate of the sweep: its saturation is at least that much.
    [ "$kept" = yes ] && best=$(echo "$best" | python3 -c 'import json, sys; r = json.load(sys.stdin); r["capped"] = True; print(json.dumps(r))')
    SATURATION[$1]=$(echo "$best" | python3 -c 'import json, sys; print(json.load(sys.stdin)["rate_per_member"])')
    printf '%s\t%s\t%s\t%s\n' "IRC fan-out saturation, $FANOUT (deliveries/s at the highest rate kept up)" "$1" \
      "tidings bench irc --server $2 --connections $CONNECTIONS --rooms $ROOMS --rate R --duration $SECS $(reg "$1"), R in $RATES" \
      "$best" >> "$RESULTS"
  fi
}

# half_load SERVER ADDRESS RATE LABEL: the fan-out at RATE msg/s per member; compared by p99.
half_load() {
  local json
  echo "== $4 on $1" >&2
  json=$("$BIN" bench --json irc --server "$2" --connections "$CONNECTIONS" --rooms "$ROOMS" --rate "$3" \
    --duration "$SECS" $(reg "$1")) || return 0
  json=$(echo "$json" | python3 -c 'import json, sys; r = json.load(sys.stdin); r["compare"] = "p99"; print(json.dumps(r))')
  printf '%s\t%s\t%s\t%s\n' "$4" "$1" "tidings bench irc --server $2 --connections $CONNECTIONS --rooms $ROOMS --rate $3 --duration $SECS $(reg "$1")" "$json" >> "$RESULTS"
  echo "   $(echo "$json" | python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.0f deliveries/s, p50 %s p99 %s ms" % (r["per_sec"], r["latency_ms"]["p50"], r["latency_ms"]["p99"]))')" >&2
}

# The three servers run side by side (an idle server costs the others nothing); the loads go to
# one at a time.
start_tidings

# --- ngircd ---
NG="$WORK/ngircd"
mkdir -p "$NG"
cat > "$NG/ngircd.conf" <<CONF
[Global]
Name = ngircd.bench.example
Info = bench
Listen = 127.0.0.1
Ports = 16668
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
CONF
# start_ngircd: sets NGPID.
start_ngircd() {
  ngircd --nodaemon -f "$NG/ngircd.conf" >> "$NG/log" 2>&1 &
  NGPID=$!
  PIDS+=("$NGPID")
  wait_port 16668
}

# --- InspIRCd ---
IN="$WORK/inspircd"
mkdir -p "$IN"
chown irc "$IN" 2>/dev/null || true
cat > "$IN/inspircd.conf" <<CONF
<server name="inspircd.bench.example" description="bench" network="bench" id="97B">
<admin name="bench" nick="bench" email="bench@bench.example">
<bind address="127.0.0.1" port="16669" type="clients">
<connect name="bench" allow="127.0.0.0/8" maxchans="20" timeout="60" pingfreq="600" hardsendq="67108864" softsendq="16777216" recvq="65536" threshold="1000000" commandrate="100000000" fakelag="no" localmax="1000000" globalmax="1000000" maxconnwarn="no" resolvehostnames="no" useident="no" limit="1000000">
<performance netbuffersize="10240" somaxconn="4096" softlimit="1000000" clonesonconnect="no" timeskipwarn="0" nouserdns="yes">
<options prefixquit="Quit: " suffixquit="" fixedquit="" hostintopic="yes" pingwarning="15" splitwhois="no" defaultmodes="nt">
<security hidesplits="no" hideulines="no" announceinvites="dynamic" maxtargets="20" customversion="">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="10" maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxgecos="128" maxaway="200">
<pid file="$IN/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$IN/log">
CONF
chown irc "$IN/inspircd.conf" 2>/dev/null || true
# start_inspircd: sets INPID.
start_inspircd() {
  inspircd --nofork --runasroot --config="$IN/inspircd.conf" >> "$IN/out" 2>&1 &
  INPID=$!
  PIDS+=("$INPID")
  wait_port 16669 || { cat "$IN/out" >&2; return 1; }
}

# stop PID: ends a server (one that already died is fine).
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

start_ngircd
start_inspircd

for server in ngircd:127.0.0.1:16668 inspircd:127.0.0.1:16669 tidings:127.0.0.1:16667; do
  name=${server%%:*} address=${server#*:}
  measure "IRC fan-out $FANOUT, $RATE msg/s each (deliveries/s)" "$name" \
    irc --server "$address" --connections "$CONNECTIONS" --rooms "$ROOMS" --rate "$RATE" --duration "$SECS" $(reg "$name")
  sweep "$name" "$address"
done

# The same fan-out over tidings' WebSocket chat API (ngircd and InspIRCd have none). Its deliveries
# include each sender's own copy (the API sends a room message to every member): it offers
# connections × rate × members deliveries/s.
measure "WebSocket chat fan-out $CONNECTIONS conns / $ROOMS rooms, $RATE msg/s each (deliveries/s)" tidings \
  ws --server 127.0.0.1:18080 --connections "$CONNECTIONS" --rooms "$ROOMS" --rate "$RATE" --duration "$SECS"

peer_rate=$(printf '%s\n%s\n' "${SATURATION[ngircd]:-}" "${SATURATION[inspircd]:-}" | { grep . || true; } | sort -g | tail -1)
if [ -n "$peer_rate" ]; then
  half=$(python3 -c "print($peer_rate / 2)")
  label="IRC fan-out at half the better peer's saturation ($half msg/s per member), latency"
  for server in tidings:127.0.0.1:16667 ngircd:127.0.0.1:16668 inspircd:127.0.0.1:16669; do
    half_load "${server%%:*}" "${server#*:}" "$half" "$label"
  done
fi

# Memory per idle connection, each server restarted first so that memory the loads above left in
# its allocator does not absorb the new connections.
stop "$TIDINGS_PID"; stop "$NGPID"; stop "$INPID"
start_tidings
start_ngircd
start_inspircd
idle_label="IRC idle registered connections (octets per connection)"
measure "$idle_label" tidings idle --irc --server 127.0.0.1:16667 --pid "$TIDINGS_PID" --connections "$IDLE" --sources 8
measure "$idle_label" ngircd idle --irc --server 127.0.0.1:16668 --pid "$NGPID" --connections "$IDLE" --sources 8
measure "$idle_label" inspircd idle --irc --server 127.0.0.1:16669 --pid "$INPID" --connections "$IDLE" --sources 8 --parallel 250

# tidings alone at as many idle connections as the open files limit allows (both this script's
# generator and the server need one descriptor per connection), up to $IDLE_MAX; restarted again.
# Sources: at least 8, so that client ports the loads above left in TIME_WAIT do not run out.
stop "$TIDINGS_PID"
start_tidings
most=$(( $(ulimit -n) - 500 ))
[ "$most" -lt "$IDLE_MAX" ] || most=$IDLE_MAX
measure "IRC idle registered connections, tidings at the open files limit ($(ulimit -n)) or $IDLE_MAX (octets per connection)" \
  tidings idle --irc --server 127.0.0.1:16667 --pid "$TIDINGS_PID" --connections "$most" --sources "$((most / 10000 + 8))" --parallel 64
