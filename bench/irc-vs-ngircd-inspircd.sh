#!/usr/bin/env bash
# IRC fan-out: $CONNECTIONS connections over $ROOMS channels, each member sending $RATE PRIVMSGs
# per second, against tidings (16667), ngircd (16668) and InspIRCd (16669), each with a private
# config on loopback with flood limits off for the load (ngircd: MaxPenaltyTime = 0; InspIRCd: a
# connect class without fakelag and with a high command rate), then the memory per registered
# idle connection.
#
# Needs root and the Debian packages ngircd and inspircd (installed when missing).
source "$(dirname "$0")/lib.sh"
command -v ngircd > /dev/null && command -v inspircd > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ngircd inspircd; }

CONNECTIONS=${CONNECTIONS:-1000}
ROOMS=${ROOMS:-10}
RATE=${RATE:-1}
IDLE=${IDLE:-5000}

run_loads() { # SERVER ADDRESS PID [IDLE]
  measure "IRC fan-out $CONNECTIONS conns / $ROOMS channels, $RATE msg/s each (deliveries/s)" "$1" \
    irc --server "$2" --connections "$CONNECTIONS" --rooms "$ROOMS" --rate "$RATE" --duration "$SECS"
  measure "IRC idle registered connections (octets per connection)" "$1" \
    idle --irc --server "$2" --pid "$3" --connections "${4:-$IDLE}" --sources 8
}

# --- tidings ---
start_tidings
run_loads tidings 127.0.0.1:16667 "$TIDINGS_PID"
kill "$TIDINGS_PID"; wait "$TIDINGS_PID" 2>/dev/null || true

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
ngircd --nodaemon -f "$NG/ngircd.conf" > "$NG/log" 2>&1 &
NGPID=$!
PIDS+=("$NGPID")
wait_port 16668
run_loads ngircd 127.0.0.1:16668 "$NGPID"
kill "$NGPID"; wait "$NGPID" 2>/dev/null || true

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
inspircd --nofork --runasroot --config="$IN/inspircd.conf" > "$IN/out" 2>&1 &
INPID=$!
PIDS+=("$INPID")
wait_port 16669 || { cat "$IN/out" >&2; exit 1; }
# InspIRCd took about a second per sequential registration here (cause not found yet): its idle
# measurement uses 100 connections.
run_loads inspircd 127.0.0.1:16669 "$INPID" 100
