//! The session driven without sockets: lines in, reply lines and hub events out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings_core::{Address, Frontend, MessageKind, RoomName};
use tidings_store::{LoginError, SqliteStore, StoreConfig};

use super::Session;
use crate::hub::{Hub, HubLimits, Identity};
use crate::irc::{IrcConfig, IrcService, IrcSettings, LoginFuture, Logins};
use crate::outbox::Received;
use crate::session::{Flow, LineSession};

/// Accepts password `pw` for any user (a bare name is taken in `example.org`).
struct Table;

impl Logins for Table {
    fn login<'a>(&'a self, user: &'a str, password: &'a str) -> LoginFuture<'a> {
        Box::pin(async move {
            if password != "pw" {
                return Err(LoginError::Invalid);
            }
            Ok(match user.split_once('@') {
                Some((local, domain)) => Address::from_parts(local, domain),
                None => Address::from_parts(user, "example.org"),
            })
        })
    }
}

struct Node {
    service: Arc<IrcService>,
    hub: Arc<Hub>,
}

fn node(name: &str, config: IrcConfig) -> Node {
    let dir = std::env::temp_dir().join(format!("tidings-irc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(SqliteStore::open(&dir, &StoreConfig::default()).expect("store"));
    let hub = Hub::new(store, HubLimits::default());
    let settings = IrcSettings {
        hostname: "irc.test".into(),
        config,
        logins: Arc::new(Table),
        plaintext_auth: tidings_net::PlaintextAuth::Loopback,
        auth_failure_delay: Duration::ZERO,
    };
    Node { service: IrcService::new(Arc::clone(&hub), settings), hub }
}

struct Client {
    session: Session,
}

impl Client {
    fn new(node: &Node) -> Client {
        Client::from(node, "127.0.0.1:40000")
    }

    fn from(node: &Node, peer: &str) -> Client {
        let peer: SocketAddr = peer.parse().unwrap();
        Client { session: Session::new(Arc::clone(&node.service.shared), peer, false, Instant::now()) }
    }

    /// Sends lines; returns what came back (replies, then queued hub events), one string a line.
    async fn send(&mut self, lines: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for line in lines {
            let flow = self.session.handle(line.as_bytes(), Instant::now()).await;
            out.extend(self.output());
            if let Flow::Close(reason) = flow {
                out.push(format!("<closed: {reason}>"));
                break;
            }
        }
        out
    }

    fn output(&mut self) -> Vec<String> {
        let mut bytes = self.session.take_output();
        if let Some(conn) = self.session.conn().cloned()
            && let Received::Events(events) = conn.outbox().take()
        {
            for event in events {
                let _ = self.session.event(&event, &mut bytes);
            }
        }
        lines(&bytes)
    }

    async fn register(node: &Node, nick: &str) -> Client {
        let mut client = Client::new(node);
        let out = client.send(&[&format!("NICK {nick}"), "USER u 0 * :Real Name"]).await;
        assert!(out.iter().any(|l| l.contains(" 001 ")), "{out:?}");
        client
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 output");
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    text.split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn has(out: &[String], needle: &str) -> bool {
    out.iter().any(|l| l.contains(needle))
}

#[tokio::test]
async fn registration_sends_the_welcome_burst_with_isupport_lusers_and_motd() {
    let node = node("welcome", IrcConfig::default());
    let mut client = Client::new(&node);
    assert!(client.send(&["NICK alice"]).await.is_empty());
    let out = client.send(&["USER al 0 * :Alice"]).await;
    for numeric in ["001", "002", "003", "004", "005", "251", "255", "375", "372", "376"] {
        assert!(out.iter().any(|l| l.starts_with(&format!(":irc.test {numeric} alice "))), "{numeric}: {out:?}");
    }
    assert!(has(&out, "CHATHISTORY=100") && has(&out, "MSGREFTYPES=msgid,timestamp") && has(&out, "NETWORK=tidings"));
    assert!(has(&out, ":Welcome to the tidings IRC Network alice!al@127.0.0.1"));
}

#[tokio::test]
async fn commands_before_registration_get_451_and_unknown_ones_421() {
    let node = node("unregistered", IrcConfig::default());
    let mut client = Client::new(&node);
    assert_eq!(client.send(&["JOIN #a"]).await, vec![":irc.test 451 * :You have not registered"]);
    let mut client = Client::register(&node, "bob").await;
    assert_eq!(client.send(&["FROB x"]).await, vec![":irc.test 421 bob FROB :Unknown command"]);
    assert_eq!(client.send(&["USER a b c d"]).await, vec![":irc.test 462 bob :You may not reregister"]);
}

#[tokio::test]
async fn nicknames_are_unique_case_insensitively_and_must_be_valid() {
    let node = node("nicks", IrcConfig::default());
    let _alice = Client::register(&node, "Alice").await;
    let mut other = Client::new(&node);
    assert_eq!(other.send(&["NICK aLiCe"]).await, vec![":irc.test 433 * aLiCe :Nickname is already in use"]);
    assert_eq!(other.send(&["NICK 9x"]).await, vec![":irc.test 432 * 9x :Erroneous nickname"]);
    assert_eq!(other.send(&["NICK"]).await, vec![":irc.test 431 * :No nickname given"]);
    // A name a member of another front-end uses now is taken too.
    let line = node.hub.connect(Identity {
        nick: "carol".into(),
        user: "line".into(),
        host: "127.0.0.1".into(),
        account: None,
        via: Frontend::Line,
    });
    assert!(has(&other.send(&["NICK Carol"]).await, " 433 "));
    node.hub.disconnect(&line, "gone");
    assert!(other.send(&["NICK Carol"]).await.is_empty());
}

#[tokio::test]
async fn a_nick_change_is_seen_by_the_client_and_its_channels_and_frees_the_old_nick() {
    let node = node("nickchange", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    alice.send(&["JOIN #a"]).await;
    bob.send(&["JOIN #a"]).await;
    alice.output();
    assert_eq!(alice.send(&["NICK alicia"]).await, vec![":alice!u@127.0.0.1 NICK alicia"]);
    assert_eq!(bob.output(), vec![":alice!u@127.0.0.1 NICK alicia"]);
    let mut carol = Client::new(&node);
    assert!(carol.send(&["NICK alice"]).await.is_empty(), "the old nick is free");
}

#[tokio::test]
async fn cap_negotiation_holds_registration_until_end_and_naks_unknown_caps() {
    let node = node("cap", IrcConfig::default());
    let mut client = Client::new(&node);
    let out = client.send(&["CAP LS 302", "NICK n", "USER u 0 * :r"]).await;
    assert_eq!(out.len(), 1, "no welcome while negotiating: {out:?}");
    assert!(
        out[0].starts_with(":irc.test CAP * LS :")
            && out[0].contains("sasl=PLAIN")
            && out[0].contains("draft/chathistory")
    );
    assert_eq!(client.send(&["CAP REQ :server-time bogus"]).await, vec![":irc.test CAP n NAK :server-time bogus"]);
    assert_eq!(client.send(&["CAP REQ :server-time batch"]).await, vec![":irc.test CAP n ACK :server-time batch"]);
    assert_eq!(client.send(&["CAP LIST"]).await, vec![":irc.test CAP n LIST :batch cap-notify server-time"]);
    assert_eq!(client.send(&["CAP FOO"]).await, vec![":irc.test 410 n FOO :Invalid CAP command"]);
    assert!(has(&client.send(&["CAP END"]).await, " 001 n "));
}

#[tokio::test]
async fn sasl_plain_logs_in_and_wrong_passwords_fail_with_904() {
    let node = node("sasl", IrcConfig::default());
    let mut client = Client::new(&node);
    client.send(&["CAP LS 302", "CAP REQ :sasl", "NICK n", "USER u 0 * :r"]).await;
    assert_eq!(client.send(&["AUTHENTICATE PLAIN"]).await, vec!["AUTHENTICATE +"]);
    // "\0ann\0wrong"
    assert_eq!(
        client.send(&["AUTHENTICATE AGFubgB3cm9uZw=="]).await,
        vec![":irc.test 904 n :SASL authentication failed"]
    );
    assert_eq!(
        client.send(&["AUTHENTICATE SCRAM-SHA-1"]).await[0],
        ":irc.test 908 n PLAIN :are available SASL mechanisms"
    );
    client.send(&["AUTHENTICATE PLAIN"]).await;
    // "\0ann\0pw"
    let out = client.send(&["AUTHENTICATE AGFubgBwdw=="]).await;
    assert_eq!(
        out,
        vec![
            ":irc.test 900 n n!u@127.0.0.1 ann@example.org :You are now logged in as ann@example.org",
            ":irc.test 903 n :SASL authentication successful"
        ]
    );
    assert_eq!(
        client.send(&["AUTHENTICATE PLAIN"]).await,
        vec![":irc.test 907 n :You have already authenticated using SASL"]
    );
    let out = client.send(&["CAP END"]).await;
    assert!(has(&out, " 001 n "));
    assert_eq!(client.session.conn().unwrap().identity().account.unwrap().to_string(), "ann@example.org");
}

#[tokio::test]
async fn sasl_is_not_offered_and_refused_without_tls_off_loopback() {
    let node = node("sasltls", IrcConfig::default());
    let mut client = Client::from(&node, "192.0.2.1:5000");
    let out = client.send(&["CAP LS 302"]).await;
    assert!(!out[0].contains("sasl"), "{out:?}");
    assert!(has(&client.send(&["AUTHENTICATE PLAIN"]).await, " 904 "));
}

#[tokio::test]
async fn pass_logs_in_with_account_and_password_or_the_nick() {
    let node = node("pass", IrcConfig::default());
    let mut client = Client::new(&node);
    let out = client.send(&["PASS ann@example.org:pw", "NICK n", "USER u 0 * :r"]).await;
    assert!(has(&out, " 900 n n!u@127.0.0.1 ann@example.org "), "{out:?}");
    let mut client = Client::new(&node);
    let out = client.send(&["PASS pw", "NICK zed", "USER u 0 * :r"]).await;
    assert!(has(&out, " zed@example.org "), "{out:?}");
    let mut client = Client::new(&node);
    let out = client.send(&["PASS nope", "NICK y", "USER u 0 * :r"]).await;
    assert_eq!(out[0], ":irc.test 464 y :Password incorrect");
    assert_eq!(out.last().unwrap(), "<closed: Bad password>");
}

#[tokio::test]
async fn guests_are_refused_when_the_config_says_so() {
    let node = node("noguests", IrcConfig { guests: false, ..IrcConfig::default() });
    let mut client = Client::new(&node);
    let out = client.send(&["NICK g", "USER u 0 * :r"]).await;
    assert!(out[0].starts_with(":irc.test 464 g :Login required"), "{out:?}");
    assert!(out[1].starts_with("ERROR :Closing Link: 127.0.0.1 (Login required)"));
    let mut client = Client::new(&node);
    assert!(has(&client.send(&["PASS a:pw", "NICK h", "USER u 0 * :r"]).await, " 001 h "));
}

#[tokio::test]
async fn join_shows_the_join_topic_and_names_and_others_see_the_join() {
    let node = node("join", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let out = alice.send(&["JOIN #Room"]).await;
    assert_eq!(
        out,
        vec![
            ":alice!u@127.0.0.1 JOIN #room",
            ":irc.test 353 alice = #room :@alice",
            ":irc.test 366 alice #room :End of /NAMES list"
        ]
    );
    alice.send(&["TOPIC #room :hello all"]).await;
    let mut bob = Client::register(&node, "bob").await;
    let out = bob.send(&["JOIN #room"]).await;
    assert_eq!(out[1], ":irc.test 332 bob #room :hello all");
    assert!(out[2].starts_with(":irc.test 333 bob #room alice "));
    assert_eq!(out[3], ":irc.test 353 bob = #room :@alice bob");
    assert_eq!(alice.output(), vec![":bob!u@127.0.0.1 JOIN #room"]);
    let out = bob.send(&["JOIN #ok,x"]).await;
    assert_eq!(out[0], ":bob!u@127.0.0.1 JOIN #ok");
    assert_eq!(out.last().unwrap(), ":irc.test 403 bob x :No such channel");
}

#[tokio::test]
async fn channel_messages_reach_members_and_echo_only_with_echo_message() {
    let node = node("privmsg", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    alice.send(&["JOIN #a"]).await;
    bob.send(&["JOIN #a"]).await;
    alice.output();
    assert!(alice.send(&["PRIVMSG #a :hi bob"]).await.is_empty(), "no echo without echo-message");
    assert_eq!(bob.output(), vec![":alice!u@127.0.0.1 PRIVMSG #a :hi bob"]);
    bob.send(&["CAP REQ :echo-message server-time message-tags"]).await;
    let out = bob.send(&["PRIVMSG #a :\u{1}ACTION waves\u{1}"]).await;
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("@time=") && out[0].contains(";msgid="), "{out:?}");
    assert!(out[0].ends_with(" :bob!u@127.0.0.1 PRIVMSG #a :\u{1}ACTION waves\u{1}"));
    assert_eq!(alice.output(), vec![":bob!u@127.0.0.1 PRIVMSG #a :\u{1}ACTION waves\u{1}"]);
    assert_eq!(alice.send(&["PRIVMSG #nowhere :x"]).await, vec![":irc.test 403 alice #nowhere :No such channel"]);
    assert_eq!(alice.send(&["PRIVMSG #a"]).await, vec![":irc.test 412 alice :No text to send"]);
    assert!(alice.send(&["NOTICE #nowhere :x"]).await.is_empty(), "no error replies to NOTICE");
}

#[tokio::test]
async fn one_message_is_rendered_for_each_members_capabilities_and_own_echo() {
    // Renderings are shared between the members of a fan-out (kept with the event): each member
    // must still get the tags its own capabilities ask for, and the sender its own prefix.
    let node = node("render", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    let mut carol = Client::register(&node, "carol").await;
    bob.send(&["CAP REQ :server-time message-tags"]).await;
    alice.send(&["CAP REQ :echo-message"]).await;
    for client in [&mut alice, &mut bob, &mut carol] {
        client.send(&["JOIN #r"]).await;
    }
    for client in [&mut alice, &mut bob, &mut carol] {
        client.output();
    }
    for text in ["one", "two"] {
        let echo = alice.send(&[&format!("PRIVMSG #r :{text}")]).await;
        let plain = format!(":alice!u@127.0.0.1 PRIVMSG #r :{text}");
        assert_eq!(echo, vec![plain.clone()]);
        assert_eq!(carol.output(), vec![plain.clone()]);
        let tagged = bob.output();
        assert_eq!(tagged.len(), 1);
        assert!(tagged[0].starts_with("@time=") && tagged[0].contains(";msgid="), "{tagged:?}");
        assert!(tagged[0].ends_with(&format!(" {plain}")), "{tagged:?}");
        assert_eq!(carol.output(), Vec::<String>::new(), "rendered once per member");
    }
    // The same text again is a new message: a new id in the tags, not the cached one.
    let first = {
        alice.send(&["PRIVMSG #r :same"]).await;
        bob.output()
    };
    alice.send(&["PRIVMSG #r :same"]).await;
    let second = bob.output();
    assert_ne!(first, second, "each message has its own id");
    assert_eq!(carol.output().len(), 2);
}

#[tokio::test]
async fn n_mode_refuses_outsiders_and_private_messages_go_to_the_nick() {
    let node = node("direct", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    alice.send(&["JOIN #a"]).await;
    assert_eq!(bob.send(&["PRIVMSG #a :let me in"]).await, vec![":irc.test 404 bob #a :Cannot send to channel (+n)"]);
    alice.send(&["AWAY :lunch"]).await;
    assert_eq!(bob.send(&["PRIVMSG Alice :psst"]).await, vec![":irc.test 301 bob alice :lunch"]);
    let out = alice.output();
    assert_eq!(out, vec![":bob!u@127.0.0.1 PRIVMSG alice :psst"]);
    assert_eq!(bob.send(&["PRIVMSG nobody :x"]).await, vec![":irc.test 401 bob nobody :No such nick/channel"]);
}

#[tokio::test]
async fn modes_keys_limits_invites_kicks_and_topic_lock() {
    let node = node("modes", IrcConfig::default());
    let mut op = Client::register(&node, "op").await;
    let mut user = Client::register(&node, "user").await;
    op.send(&["JOIN #m"]).await;
    assert_eq!(op.send(&["MODE #m"]).await[0], ":irc.test 324 op #m :+nt");
    assert_eq!(op.send(&["MODE #m +ikl secret 5"]).await, vec![":op!u@127.0.0.1 MODE #m +ikl secret 5"]);
    assert_eq!(user.send(&["JOIN #m"]).await, vec![":irc.test 473 user #m :Cannot join channel (+i)"]);
    op.send(&["MODE #m -i"]).await;
    assert_eq!(user.send(&["JOIN #m"]).await, vec![":irc.test 475 user #m :Cannot join channel (+k)"]);
    assert_eq!(user.send(&["JOIN #m secret"]).await[0], ":user!u@127.0.0.1 JOIN #m");
    op.output();
    assert_eq!(user.send(&["TOPIC #m :mine"]).await, vec![":irc.test 482 user #m :You're not channel operator"]);
    assert_eq!(user.send(&["MODE #m +t"]).await, vec![":irc.test 482 user #m :You're not channel operator"]);
    op.send(&["MODE #m +v user"]).await;
    assert_eq!(user.output(), vec![":op!u@127.0.0.1 MODE #m +v user"]);
    assert_eq!(op.send(&["MODE #m +x"]).await, vec![":irc.test 472 op x :is unknown mode char to me"]);
    assert_eq!(op.send(&["MODE #m +o ghost"]).await, vec![":irc.test 441 op ghost #m :They aren't on that channel"]);
    assert_eq!(op.send(&["MODE #m b"]).await, vec![":irc.test 368 op #m :End of channel ban list"]);
    op.send(&["KICK #m user :behave"]).await;
    assert_eq!(user.output(), vec![":op!u@127.0.0.1 KICK #m user :behave"]);
    assert!(user.session.conn().unwrap().rooms().is_empty());
    op.send(&["MODE #m +i"]).await;
    assert_eq!(op.send(&["INVITE user #m"]).await, vec![":irc.test 341 op user :#m"]);
    assert_eq!(user.output(), vec![":op!u@127.0.0.1 INVITE user #m"]);
    assert_eq!(user.send(&["JOIN #m"]).await[0], ":user!u@127.0.0.1 JOIN #m", "an invite passes +i and +k");
    assert_eq!(user.send(&["MODE user +i"]).await, vec![":user!u@127.0.0.1 MODE user +i"]);
    assert_eq!(user.send(&["MODE user"]).await, vec![":irc.test 221 user :+i"]);
    assert_eq!(user.send(&["MODE op +i"]).await, vec![":irc.test 502 user :Cant change mode for other users"]);
}

#[tokio::test]
async fn members_of_other_front_ends_appear_with_valid_nicks_and_their_front_end_as_user() {
    let node = node("bridge", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    alice.send(&["JOIN #g"]).await;
    let line = node.hub.connect(Identity {
        nick: "bob smith".into(),
        user: "line".into(),
        host: "127.0.0.1".into(),
        account: None,
        via: Frontend::Line,
    });
    let room = RoomName::parse("#g").unwrap();
    node.hub.join(&line, &room, None, false).await.unwrap();
    node.hub.post(&line, &room, MessageKind::Text, "hi from line").await.unwrap();
    assert_eq!(
        alice.output(),
        vec![":bob_smith!line@127.0.0.1 JOIN #g", ":bob_smith!line@127.0.0.1 PRIVMSG #g :hi from line"]
    );
    node.hub.disconnect(&line, "Connection closed");
    assert_eq!(alice.output(), vec![":bob_smith!line@127.0.0.1 QUIT :Connection closed"]);
}

#[tokio::test]
async fn long_bodies_from_other_front_ends_are_split_into_lines_of_at_most_512_octets() {
    let node = node("split", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    alice.send(&["JOIN #g"]).await;
    let line = node.hub.connect(Identity {
        nick: "l".into(),
        user: "line".into(),
        host: "127.0.0.1".into(),
        account: None,
        via: Frontend::Line,
    });
    let room = RoomName::parse("#g").unwrap();
    node.hub.join(&line, &room, None, false).await.unwrap();
    alice.output();
    let body = "é".repeat(1000);
    node.hub.post(&line, &room, MessageKind::Text, &body).await.unwrap();
    let out = alice.output();
    assert!(out.len() >= 4, "{}", out.len());
    assert!(out.iter().all(|l| l.len() + 2 <= 512));
    let joined: String = out.iter().map(|l| &l[l.find(" :").unwrap() + 2..]).collect();
    let joined: String = joined.split(" :").collect();
    assert_eq!(joined.replace("l!line@127.0.0.1 PRIVMSG #g", ""), body);
}

#[tokio::test]
async fn oversized_input_gets_417_and_the_session_goes_on() {
    let node = node("long", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let long = format!("PRIVMSG #a :{}", "x".repeat(600));
    assert_eq!(alice.send(&[&long]).await, vec![":irc.test 417 alice :Input line was too long"]);
    let tagged = format!("@+draft/x={} PING :t", "y".repeat(3000));
    assert_eq!(alice.send(&[&tagged]).await, vec![":irc.test PONG irc.test :t"]);
    assert_eq!(alice.session.line_too_long(), Flow::Continue);
    assert_eq!(alice.output(), vec![":irc.test 417 alice :Input line was too long"]);
}

#[tokio::test]
async fn invalid_utf8_is_replaced_not_refused() {
    let node = node("utf8", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    alice.send(&["JOIN #u"]).await;
    bob.send(&["JOIN #u"]).await;
    alice.output();
    let flow = bob.session.handle(b"PRIVMSG #u :caf\xe9!", Instant::now()).await;
    assert_eq!(flow, Flow::Continue);
    assert_eq!(alice.output(), vec![":bob!u@127.0.0.1 PRIVMSG #u :caf\u{FFFD}!"]);
}

#[tokio::test]
async fn a_flooding_client_is_disconnected_with_excess_flood() {
    let node = node("flood", IrcConfig { flood_lines_per_sec: 1.0, flood_burst: 5, ..IrcConfig::default() });
    let mut client = Client::new(&node);
    let out = client.send(&["PING a"; 10]).await;
    assert_eq!(out.len(), 7, "{out:?}");
    assert_eq!(out[5], "ERROR :Closing Link: 127.0.0.1 (Excess Flood)");
    assert_eq!(out[6], "<closed: Excess Flood>");
}

#[tokio::test]
async fn idle_clients_are_pinged_then_dropped() {
    let node = node("ping", IrcConfig::default());
    let mut client = Client::register(&node, "p").await;
    assert_eq!(client.session.idle_timeout(), None);
    assert_eq!(client.session.idle(), Flow::Continue);
    assert_eq!(client.output(), vec!["PING irc.test"]);
    assert_eq!(client.session.idle_timeout(), Some(Duration::from_secs(60)));
    assert_eq!(client.session.idle(), Flow::Close("Ping timeout: 60 seconds".into()));
    let mut client = Client::register(&node, "q").await;
    client.session.idle();
    client.send(&["PONG irc.test"]).await;
    assert_eq!(client.session.idle_timeout(), None, "any line answers the PING");
    let mut unregistered = Client::new(&node);
    assert!(matches!(unregistered.session.idle(), Flow::Close(r) if r == "Registration timed out"));
}

#[tokio::test]
async fn quits_are_shown_once_however_many_channels_are_shared() {
    let node = node("quit", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    alice.send(&["JOIN #a,#b"]).await;
    bob.send(&["JOIN #a,#b"]).await;
    alice.output();
    let flow = bob.send(&["QUIT :bye now"]).await;
    assert_eq!(flow, vec!["ERROR :Closing Link: 127.0.0.1 (Quit: bye now)", "<closed: Quit: bye now>"]);
    let conn = bob.session.conn().unwrap().clone();
    node.hub.disconnect(&conn, "Quit: bye now");
    assert_eq!(alice.output(), vec![":bob!u@127.0.0.1 QUIT :Quit: bye now"]);
}

#[tokio::test]
async fn who_whois_names_list_and_lusers_describe_users_and_rooms() {
    let node = node("queries", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    let mut bob = Client::register(&node, "bob").await;
    alice.send(&["JOIN #q", "TOPIC #q :the topic"]).await;
    bob.send(&["JOIN #q", "AWAY :out"]).await;
    alice.output();
    let out = alice.send(&["WHO #q"]).await;
    assert_eq!(
        out,
        vec![
            ":irc.test 352 alice #q u 127.0.0.1 irc.test alice H@ :0 Real Name",
            ":irc.test 352 alice #q u 127.0.0.1 irc.test bob G :0 Real Name",
            ":irc.test 315 alice #q :End of WHO list"
        ]
    );
    let out = alice.send(&["WHOIS bob"]).await;
    assert_eq!(out[0], ":irc.test 311 alice bob u 127.0.0.1 * :Real Name");
    assert_eq!(out[1], ":irc.test 319 alice bob :#q");
    assert!(has(&out, " 301 alice bob :out") && out.last().unwrap().contains(" 318 alice bob "));
    assert_eq!(alice.send(&["WHOIS ghost"]).await[0], ":irc.test 401 alice ghost :No such nick/channel");
    assert_eq!(alice.send(&["NAMES #q"]).await[0], ":irc.test 353 alice = #q :@alice bob");
    let out = alice.send(&["LIST"]).await;
    assert_eq!(out[1], ":irc.test 322 alice #q 2 :the topic");
    let out = alice.send(&["LUSERS"]).await;
    assert_eq!(out[0], ":irc.test 251 alice :There are 2 users and 0 invisible on 1 servers");
    assert!(has(&out, " 254 alice 1 :channels formed"));
    assert_eq!(alice.send(&["ISON bob ghost"]).await, vec![":irc.test 303 alice :bob"]);
    assert_eq!(alice.send(&["USERHOST bob"]).await, vec![":irc.test 302 alice :bob=-u@127.0.0.1"]);
}

#[tokio::test]
async fn chathistory_pages_in_delivery_order_inside_a_batch() {
    let node = node("history", IrcConfig::default());
    let mut alice = Client::register(&node, "alice").await;
    alice.send(&["CAP REQ :batch server-time message-tags draft/chathistory", "JOIN #h"]).await;
    for i in 1..=6 {
        alice.send(&[&format!("PRIVMSG #h :m{i}")]).await;
    }
    alice.output();
    let texts = |out: &[String]| -> Vec<String> {
        out.iter().filter(|l| l.contains(" PRIVMSG ")).map(|l| l.rsplit(" :").next().unwrap().to_owned()).collect()
    };
    let ids = |out: &[String]| -> Vec<String> {
        out.iter()
            .filter(|l| l.contains(" PRIVMSG "))
            .map(|l| l.split(";msgid=").nth(1).unwrap().split([';', ' ']).next().unwrap().to_owned())
            .collect()
    };
    let out = alice.send(&["CHATHISTORY LATEST #h * 3"]).await;
    assert!(out[0].starts_with(":irc.test BATCH +history") && out[0].ends_with(" chathistory #h"), "{out:?}");
    assert!(out.last().unwrap().starts_with(":irc.test BATCH -history"));
    assert!(out[1].starts_with("@batch=history"));
    assert_eq!(texts(&out), vec!["m4", "m5", "m6"]);
    let all = alice.send(&["CHATHISTORY LATEST #h * 100"]).await;
    let all_ids = ids(&all);
    assert_eq!(texts(&all), vec!["m1", "m2", "m3", "m4", "m5", "m6"]);
    let before = alice.send(&[&format!("CHATHISTORY BEFORE #h msgid={} 2", all_ids[3])]).await;
    assert_eq!(texts(&before), vec!["m2", "m3"]);
    let after = alice.send(&[&format!("CHATHISTORY AFTER #h msgid={} 2", all_ids[3])]).await;
    assert_eq!(texts(&after), vec!["m5", "m6"]);
    let latest = alice.send(&[&format!("CHATHISTORY LATEST #h msgid={} 10", all_ids[3])]).await;
    assert_eq!(texts(&latest), vec!["m5", "m6"]);
    let between = alice.send(&[&format!("CHATHISTORY BETWEEN #h msgid={} msgid={} 10", all_ids[0], all_ids[4])]).await;
    assert_eq!(texts(&between), vec!["m2", "m3", "m4"]);
    let between = alice.send(&[&format!("CHATHISTORY BETWEEN #h msgid={} msgid={} 2", all_ids[5], all_ids[0])]).await;
    assert_eq!(texts(&between), vec!["m4", "m5"]);
    let around = alice.send(&[&format!("CHATHISTORY AROUND #h msgid={} 3", all_ids[2])]).await;
    assert_eq!(texts(&around), vec!["m2", "m3", "m4"]);
    let early = alice.send(&["CHATHISTORY AFTER #h timestamp=1970-01-01T00:00:00.000Z 2"]).await;
    assert_eq!(texts(&early), vec!["m1", "m2"]);
    let late = alice.send(&["CHATHISTORY BEFORE #h timestamp=2999-01-01T00:00:00.000Z 2"]).await;
    assert_eq!(texts(&late), vec!["m5", "m6"]);
    let fail = alice.send(&["CHATHISTORY LATEST #h * x"]).await;
    assert_eq!(fail, vec![":irc.test FAIL CHATHISTORY INVALID_PARAMS LATEST x :Invalid limit"]);
    let fail = alice.send(&["CHATHISTORY BEFORE #h * 5"]).await;
    assert_eq!(fail, vec![":irc.test FAIL CHATHISTORY INVALID_PARAMS BEFORE * :Invalid message reference"]);
    let fail = alice.send(&["CHATHISTORY LATEST #other * 5"]).await;
    assert_eq!(fail, vec![":irc.test FAIL CHATHISTORY INVALID_TARGET LATEST #other :You are not in that channel"]);
    let fail = alice.send(&["CHATHISTORY FOO #h"]).await;
    assert_eq!(fail, vec![":irc.test FAIL CHATHISTORY UNKNOWN_COMMAND FOO :Unknown CHATHISTORY subcommand"]);
}

#[tokio::test]
async fn random_input_gets_well_formed_replies_and_never_panics() {
    let node = node("random", IrcConfig { flood_lines_per_sec: 0.0, ..IrcConfig::default() });
    let mut client = Client::register(&node, "fuzz").await;
    client.send(&["JOIN #r"]).await;
    let commands = [
        "PRIVMSG",
        "MODE",
        "JOIN",
        "PART",
        "TOPIC",
        "KICK",
        "INVITE",
        "WHO",
        "WHOIS",
        "NICK",
        "CAP",
        "CHATHISTORY",
        "NAMES",
        "LIST",
        "AWAY",
        "USERHOST",
        "ISON",
        "NOTICE",
        "AUTHENTICATE",
        "PING",
    ];
    for (i, tail) in crate::irc::message::tests::random_lines(11, 3000).into_iter().enumerate() {
        let line = format!("{} {tail}", commands[i % commands.len()]);
        let flow = client.session.handle(line.as_bytes(), Instant::now()).await;
        for reply in client.output() {
            let after_tags = if reply.starts_with('@') { reply.split_once(' ').unwrap().1 } else { &reply };
            assert!(after_tags.len() <= 510, "{reply}");
            assert!(crate::irc::message::Message::parse(&reply).is_ok(), "{line:?} -> {reply:?}");
        }
        if flow != Flow::Continue {
            client = Client::register(&node, &format!("fuzz{i}")).await;
            client.send(&["JOIN #r"]).await;
        }
    }
}
