#!/usr/bin/env bash
# SMTP: 50 concurrent senders of 10 KB messages (closed loop), then an open-loop run at a fixed
# offered rate, against tidings (127.0.0.1:12525) and a private Postfix instance (127.0.0.1:2525,
# its own config directory, queue and Maildirs under a temp dir, fsync as shipped) delivering to
# virtual mailboxes in Maildir format.
#
# Note what 250 means to each: to tidings the message is durably in the recipient's mailbox; to
# Postfix it is durably in the queue, and delivery to the Maildir happens after (on the same CPUs).
#
# Needs root and the Debian package postfix (installed when missing). Appends to $RESULTS.
source "$(dirname "$0")/lib.sh"
command -v postfix > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix; }

USERS=10
CONNECTIONS=${CONNECTIONS:-50}
SIZE=${SIZE:-10240}
RATE=${RATE:-500}

# --- tidings ---
start_tidings
tidings_accounts "$USERS"
measure "SMTP 50 senders × 10 KB, closed loop (msgs/s)" tidings \
  smtp --server 127.0.0.1:12525 --connections "$CONNECTIONS" --size "$SIZE" --duration "$SECS" $(users --to bench @mmsys.upenn.edu $USERS)
measure "SMTP open loop $RATE msgs/s offered, 10 KB (latency)" tidings \
  smtp --server 127.0.0.1:12525 --connections "$CONNECTIONS" --size "$SIZE" --duration "$SECS" --rate "$RATE" $(users --to bench @mmsys.upenn.edu $USERS)
kill "$TIDINGS_PID"; wait "$TIDINGS_PID" 2>/dev/null || true

# --- Postfix: a private instance (postfix -c DIR) ---
PF="$WORK/postfix"
mkdir -p "$PF/mail"
id tbench > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tbench
chown tbench:tbench "$PF/mail"
cp /etc/postfix/master.cf "$PF/master.cf"
# No chroot (the queue is not under /var/spool/postfix), SMTP on 127.0.0.1:2525 only.
sed -i -E 's/^(smtp +inet +[^ ]+ +[^ ]+ +)[yn-]/\1n/; s/^smtp( +inet)/127.0.0.1:2525\1/' "$PF/master.cf"
sed -i -E '/^[a-z0-9.:]+ +(unix|inet|fifo|pass|unix-dgram) /s/^([^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +)y/\1n/' "$PF/master.cf"
for i in $(seq 0 $((USERS - 1))); do echo "bench$i@bench.example bench.example/bench$i/"; done > "$PF/vmailbox"
cat > "$PF/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
myhostname = mx.postfix.bench.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
smtpd_banner = \$myhostname ESMTP
virtual_mailbox_domains = bench.example
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_uid_maps = static:$(id -u tbench)
virtual_gid_maps = static:$(id -g tbench)
virtual_minimum_uid = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
CF
mkdir -p "$PF/queue" "$PF/data"
chown postfix "$PF/data"
script -qec "postfix -c $PF check" /dev/null
script -qec "postfix -c $PF start" /dev/null || { cat "$PF/maillog" >&2; exit 1; }
CLEANUP_EXTRA="postfix -c '$PF' stop >/dev/null 2>&1"
wait_port 2525
measure "SMTP 50 senders × 10 KB, closed loop (msgs/s)" postfix \
  smtp --server 127.0.0.1:2525 --connections "$CONNECTIONS" --size "$SIZE" --duration "$SECS" $(users --to bench @bench.example $USERS)
measure "SMTP open loop $RATE msgs/s offered, 10 KB (latency)" postfix \
  smtp --server 127.0.0.1:2525 --connections "$CONNECTIONS" --size "$SIZE" --duration "$SECS" --rate "$RATE" $(users --to bench @bench.example $USERS)
# Wait (at most 60 s) for the queue to drain, and say how many messages reached the Maildirs.
for i in $(seq 600); do
  [ -z "$(find "$PF/queue/active" "$PF/queue/incoming" -type f 2>/dev/null | head -1)" ] && break
  sleep 0.1
done
echo "postfix: $(find "$PF/mail" -path '*/new/*' -type f | wc -l) messages delivered to Maildir" >&2
