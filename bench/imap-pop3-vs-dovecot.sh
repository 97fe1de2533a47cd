#!/usr/bin/env bash
# IMAP and POP3 against tidings (IMAP 11143, POP3 11110) and a private Dovecot instance (IMAP
# 10143, POP3 10110, its own config, base_dir and Maildirs under a temp dir, settings as shipped
# otherwise). Both get the same mailboxes, filled over IMAP APPEND: $USERS users with $MESSAGES
# messages of 10 KB each. Loads: POP3 logins/s, POP3 RETR messages/s, IMAP logins/s, IMAP FETCH
# BODY[] messages/s, IMAP SELECT+FETCH+STORE mix commands/s.
#
# Needs root and the Debian packages dovecot-imapd and dovecot-pop3d (installed when missing).
source "$(dirname "$0")/lib.sh"
[ -x /usr/lib/dovecot/pop3 ] && [ -x /usr/lib/dovecot/imap ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dovecot-imapd dovecot-pop3d; }

USERS=${USERS:-8}
MESSAGES=${MESSAGES:-200}

run_loads() { # SERVER IMAP POP3 DOMAIN
  local server=$1 imap=$2 pop3=$3 domain=$4
  measure "fill: $USERS mailboxes × $MESSAGES × 10 KB over IMAP APPEND (msgs/s)" "$server" \
    fill --server "$imap" $(users --user bench "@$domain" "$USERS") --password CIS505 --messages "$MESSAGES"
  measure "POP3 logins/s, $USERS connections" "$server" \
    pop3 --server "$pop3" --mode login --connections "$USERS" --duration "$SECS" $(users --user bench "@$domain" "$USERS") --password CIS505
  measure "POP3 RETR 10 KB (msgs/s), $USERS connections" "$server" \
    pop3 --server "$pop3" --connections "$USERS" --duration "$SECS" $(users --user bench "@$domain" "$USERS") --password CIS505
  measure "IMAP logins/s, $USERS connections" "$server" \
    fetch --server "$imap" --mode login --connections "$USERS" --duration "$SECS" $(users --user bench "@$domain" "$USERS") --password CIS505
  measure "IMAP FETCH BODY[] 10 KB (msgs/s), $USERS connections" "$server" \
    fetch --server "$imap" --connections "$USERS" --duration "$SECS" $(users --user bench "@$domain" "$USERS") --password CIS505
  measure "IMAP SELECT+FETCH+STORE mix (commands/s), $USERS connections" "$server" \
    fetch --server "$imap" --mode mix --connections "$USERS" --duration "$SECS" $(users --user bench "@$domain" "$USERS") --password CIS505
}

# --- tidings ---
start_tidings
tidings_accounts "$USERS"
run_loads tidings 127.0.0.1:11143 127.0.0.1:11110 mmsys.upenn.edu
kill "$TIDINGS_PID"; wait "$TIDINGS_PID" 2>/dev/null || true

# --- Dovecot: a private instance (dovecot -c FILE) ---
DV="$WORK/dovecot"
mkdir -p "$DV/run" "$DV/home"
id tbench > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tbench
chown tbench:tbench "$DV/home"
for i in $(seq 0 $((USERS - 1))); do echo "bench$i@bench.example:{PLAIN}CIS505"; done > "$DV/passwd"
cat > "$DV/dovecot.conf" <<CONF
protocols = imap pop3
listen = 127.0.0.1
base_dir = $DV/run
log_path = $DV/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN $DV/passwd
}
userdb {
  driver = static
  args = uid=tbench gid=tbench home=$DV/home/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = 10143
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = 10110
  }
  inet_listener pop3s {
    port = 0
  }
}
CONF
/usr/sbin/dovecot -c "$DV/dovecot.conf"
CLEANUP_EXTRA="/usr/sbin/dovecot -c '$DV/dovecot.conf' stop 2>/dev/null"
wait_port 10143
wait_port 10110
run_loads dovecot 127.0.0.1:10143 127.0.0.1:10110 bench.example
