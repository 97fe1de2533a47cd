//! The group-chat line protocol (PROTOCOLS.md §1) on TCP port 5555.
//!
//! The first line must be `JOIN <group> <name>` (the word in capitals, then a group and a user
//! name of printable non-space characters); anything else closes the connection. Group `g` is the
//! room `#g`. Every member, the newcomer included, receives `<name> has joined`; every later line
//! is posted as `<name>: <text>` to everyone in the group, the sender included; a member whose
//! connection ends is announced as `<name> has left`.
//!
//! Beyond the protocol's three kinds of lines the server writes one more, only before closing a
//! connection it ends itself: `error: <reason>` (line too long, flooding, too slow a reader, a join
//! the room refuses, shutdown). Lines from the other front-ends' actions (`/me`) read
//! `* <name> <text>`; notices `-<name>- <text>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tidings_core::{Frontend, MessageKind, RoomName};
use tidings_net::{Accepted, Service};

use crate::hub::{Conn, Hub, Identity, Leave};
use crate::session::{Flow, LineOptions, LineSession, run};
use crate::{EXCESS_FLOOD, Event, TokenBucket, decode_text};

/// `[line]`: the line protocol's limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineConfig {
    /// Longest line a client may send, octets without the line end (default 4,096).
    pub line_bytes_max: usize,
    /// Lines per second a connection may send on average (default 10; 0 turns the limit off).
    pub flood_lines_per_sec: f64,
    /// Lines a connection may send at once before the rate applies (default 20).
    pub flood_burst: u32,
    /// Seconds of silence before the connection is closed (default 3,600).
    pub idle_timeout_secs: u64,
    /// Seconds a write may stall before the connection is closed (default 30).
    pub write_timeout_secs: u64,
}

impl Default for LineConfig {
    fn default() -> Self {
        LineConfig {
            line_bytes_max: 4096,
            flood_lines_per_sec: 10.0,
            flood_burst: 20,
            idle_timeout_secs: 3600,
            write_timeout_secs: 30,
        }
    }
}

/// Parses a first line: `JOIN <group> <name>`, exactly three space-separated words, the first
/// `JOIN` in capitals, the others printable non-space characters.
pub fn parse_join(line: &str) -> Option<(&str, &str)> {
    let mut words = line.split(' ');
    let (Some("JOIN"), Some(group), Some(name), None) = (words.next(), words.next(), words.next(), words.next()) else {
        return None;
    };
    let printable = |w: &str| !w.is_empty() && w.chars().all(|c| !c.is_whitespace() && !c.is_control());
    (printable(group) && printable(name)).then_some((group, name))
}

/// Renders an event as the line protocol's line (with `\n`), if it has one.
pub fn render(event: &Event) -> Option<String> {
    Some(match event {
        Event::Joined { member, .. } => format!("{} has joined\n", member.identity.nick),
        Event::Left { member, .. } => format!("{} has left\n", member.identity.nick),
        Event::Message(m, _) => match m.kind {
            MessageKind::Text => format!("{}: {}\n", m.nick, m.body),
            MessageKind::Action => format!("* {} {}\n", m.nick, m.body),
            MessageKind::Notice => format!("-{}- {}\n", m.nick, m.body),
        },
        _ => return None,
    })
}

/// The line protocol's service.
pub struct LineService {
    hub: Arc<Hub>,
    config: LineConfig,
}

impl LineService {
    /// A service over `hub`.
    pub fn new(hub: Arc<Hub>, config: LineConfig) -> Arc<LineService> {
        Arc::new(LineService { hub, config })
    }
}

impl Service for LineService {
    fn refusal(&self, reason: &str) -> Vec<u8> {
        format!("error: {reason}\n").into_bytes()
    }

    async fn handle(self: Arc<Self>, conn: Accepted) {
        let options = LineOptions {
            line_bytes_max: self.config.line_bytes_max,
            idle_timeout: Duration::from_secs(self.config.idle_timeout_secs),
            write_timeout: Duration::from_secs(self.config.write_timeout_secs),
        };
        let session = Session {
            hub: Arc::clone(&self.hub),
            peer: conn.peer,
            member: None,
            flood: TokenBucket::new(self.config.flood_lines_per_sec, self.config.flood_burst, Instant::now()),
            output: Vec::new(),
        };
        run(&self.hub, conn, session, &options).await;
    }
}

struct Session {
    hub: Arc<Hub>,
    peer: SocketAddr,
    member: Option<(Arc<Conn>, RoomName)>,
    flood: TokenBucket,
    output: Vec<u8>,
}

impl Session {
    fn fail(&mut self, reason: &str) -> Flow {
        self.output.extend_from_slice(format!("error: {reason}\n").as_bytes());
        Flow::Close(reason.to_owned())
    }
}

impl LineSession for Session {
    async fn line(&mut self, line: &[u8]) -> Flow {
        if !self.flood.take(Instant::now()) {
            return self.fail(EXCESS_FLOOD);
        }
        let text = decode_text(line);
        let Some((conn, room)) = &self.member else {
            let Some((group, name)) = parse_join(&text) else {
                return Flow::Close("Invalid JOIN".into());
            };
            let Ok(room) = RoomName::of_group(group) else { return Flow::Close("Invalid group name".into()) };
            let identity = Identity {
                nick: name.chars().take(tidings_core::NICK_BYTES_MAX).collect(),
                user: "line".into(),
                host: self.peer.ip().to_string(),
                account: None,
                via: Frontend::Line,
            };
            let conn = self.hub.connect(identity);
            if let Err(e) = self.hub.join(&conn, &room, None, false).await {
                self.hub.disconnect(&conn, "Join refused");
                return self.fail(&e.to_string());
            }
            self.member = Some((conn, room));
            return Flow::Continue;
        };
        if text.is_empty() {
            return Flow::Continue;
        }
        match self.hub.post(conn, room, MessageKind::Text, &text).await {
            Ok(_) => Flow::Continue,
            Err(e) => self.fail(&e.to_string()),
        }
    }

    fn event(&mut self, event: &Event, out: &mut Vec<u8>) -> Flow {
        if let Event::Left { member, how: Leave::Kick { by, reason }, .. } = event
            && self.member.as_ref().is_some_and(|(c, _)| c.id() == member.conn)
        {
            out.extend_from_slice(format!("error: kicked by {by}: {reason}\n").as_bytes());
            return Flow::Close(format!("Kicked by {by}"));
        }
        if let Some(line) = render(event) {
            out.extend_from_slice(line.as_bytes());
        }
        Flow::Continue
    }

    fn line_too_long(&mut self) -> Flow {
        self.fail("line too long")
    }

    fn idle(&mut self) -> Flow {
        self.fail("idle timeout")
    }

    fn closing(&mut self, reason: &str) {
        self.output.extend_from_slice(format!("error: {reason}\n").as_bytes());
    }

    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    fn conn(&self) -> Option<&Arc<Conn>> {
        self.member.as_ref().map(|(c, _)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_join_line_is_accepted() {
        assert_eq!(parse_join("JOIN cooking tim"), Some(("cooking", "tim")));
        for bad in [
            "JoiN cooking tim",
            "hello",
            "JOIN cooking",
            "JOIN cooking tim extra",
            "JOIN  cooking tim",
            "JOIN a\tb c",
            "",
        ] {
            assert_eq!(parse_join(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod size {
    /// Every idle line-protocol connection is one of these futures: keep it small (a join or post
    /// in progress is boxed separately).
    #[tokio::test]
    async fn an_idle_session_future_stays_small() {
        use std::sync::Arc;
        let dir = std::env::temp_dir().join(format!("probe-{}", std::process::id()));
        let store: Arc<dyn tidings_store::Store> =
            Arc::new(tidings_store::SqliteStore::open(&dir, &Default::default()).unwrap());
        let hub = crate::Hub::new(store, Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let admissions = tidings_net::Admissions::new(tidings_net::ConnectionLimits {
            connections_max: 10,
            connections_per_ip_max: 10,
        });
        let controller = tidings_net::ShutdownController::new();
        let accepted = tidings_net::Accepted {
            stream: tidings_net::Stream::Plain(tcp),
            peer,
            local: addr,
            id: 1,
            shutdown: controller.token(),
            admission: admissions.admit(peer.ip()).unwrap(),
        };
        let service = super::LineService::new(hub, Default::default());
        let fut = tidings_net::Service::handle(service, accepted);
        let size = std::mem::size_of_val(&fut);
        assert!(size < 4096, "line session future: {size} octets");
    }
}
