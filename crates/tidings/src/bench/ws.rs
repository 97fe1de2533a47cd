//! `bench ws`: chat fan-out over tidings' WebSocket chat API (docs/chat-api.md), the load of
//! `bench irc` over `ws://<server>/ws`.
//!
//! First every `--user` signs in once over the HTTP API (`POST /api/v1/session`, `"mode":
//! "token"`): one password check per account, not one per socket (a password login counts against
//! the account's login throttle while it runs, so hundreds of them at once would lock it out).
//! Then C sockets open; socket i logs in with the bearer token of user i mod users and joins room
//! `#bench{i mod R}`; every member then sends to its room at a fixed rate for the duration (open
//! loop: on schedule, the schedules of the members spread evenly over one interval). Each
//! message's text is `bench <µs> <seq>`, the intended send time in microseconds since the load
//! began, so every receiver measures the end-to-end latency from when the message was due. The
//! server sends a room message to every member, the sender included (a `message` event), so a
//! message to a room of m members makes m deliveries. At the end the sockets close and the
//! sessions are ended (`DELETE /api/v1/session`). As any join does, joining makes the room one of
//! the account's rooms; the load leaves it so.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tidings_client::web::{ApiClient, ApiUrl};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::fanout::{self, Outcome, Plan, Shared};
use super::{Gate, Latencies, Report, connect, gate, rss_kib};

/// Seconds to wait for the handshake and for any one reply while logging in and joining.
const SETUP_TIMEOUT_SECS: u64 = 60;
/// Seconds to wait for a socket's close frame to go out at the end.
const CLOSE_TIMEOUT_SECS: u64 = 5;
/// Each socket's read buffer, octets (a delivery is a few hundred).
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Connections per loopback source address when `--sources` is 0: half the server's default
/// `[chat] connections_per_ip_max` (1,000), which counts every HTTP connection, sockets included.
const CONNECTIONS_PER_SOURCE: usize = 500;

/// `bench ws` arguments.
#[derive(clap::Args)]
pub struct WsArgs {
    /// The server's HTTP listener (cleartext): the API signs in there and the sockets open
    /// `ws://<server>/ws`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// Account to log in as; give it several times to spread the connections over accounts
    /// (connection i logs in as user i mod users).
    #[arg(long, default_values_t = ["instructor@mmsys.upenn.edu".to_string(), "ta@mmsys.upenn.edu".to_string(),
        "cis505@mmsys.upenn.edu".to_string()])]
    user: Vec<String>,
    /// Password (the same for every user).
    #[arg(long, default_value = "CIS505")]
    password: String,
    /// Connections (room members) in all.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Rooms the connections are spread over (round robin).
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Messages per second each member sends (0: members only listen, and nothing is measured
    /// but the setup and, with --pid, the memory).
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Octets of filler appended to each message's text (the text must fit the server's
    /// `[chat] body_bytes_max`, 4,096 octets by default).
    #[arg(long, default_value_t = 0)]
    padding: usize,
    /// Connections setting up (connect, WebSocket handshake, login, join) at once.
    #[arg(long, default_value_t = 50)]
    parallel_logins: usize,
    /// The server's process id: report its VmRSS per connection once every member has joined.
    #[arg(long)]
    pid: Option<u32>,
    /// Spread the connections over this many loopback source addresses (127.0.0.1 up); 0 (the
    /// default): one per 500 connections, which keeps each address under the server's default
    /// per-address limit.
    #[arg(long, default_value_t = 0)]
    sources: u8,
}

type Socket = WebSocketStream<TcpStream>;

/// Runs the load: a report of deliveries per second and their latencies.
///
/// # Errors
/// Arguments out of range; a user who cannot sign in; a socket that cannot connect, log in or
/// join; the server refusing a request (a flood limit below the rate) or closing a socket.
pub(super) async fn run(args: WsArgs) -> anyhow::Result<Report> {
    plan(&args).check()?;
    if args.user.is_empty() {
        bail!("give at least one --user");
    }
    let api = ApiClient::new(format!("http://{}", args.server).parse::<ApiUrl>()?, None);
    let mut tokens = Vec::with_capacity(args.user.len());
    for user in &args.user {
        match sign_in(&api, user, &args.password).await {
            Ok(token) => tokens.push(token),
            Err(e) => {
                sign_out(&api, &tokens).await;
                return Err(e);
            }
        }
    }
    let report = fan_out(&args, &tokens).await;
    sign_out(&api, &tokens).await;
    report
}

/// A session of the HTTP API for `user`: its bearer token.
async fn sign_in(api: &ApiClient, user: &str, password: &str) -> anyhow::Result<Arc<str>> {
    let request = json!({ "user": user, "password": password, "mode": "token" });
    let answer = api.post_json("/api/v1/session", &request).await?;
    if !answer.is_success() {
        bail!("cannot sign in as {user}: {}", answer.error_text());
    }
    let token = answer.body["token"].as_str().with_context(|| format!("signing in as {user}: no token"))?;
    Ok(Arc::from(token))
}

/// Ends the sessions (a failure only costs a session that expires by itself).
async fn sign_out(api: &ApiClient, tokens: &[Arc<str>]) {
    for token in tokens {
        let _ = api.delete_as("/api/v1/session", token).await;
    }
}

async fn fan_out(args: &WsArgs, tokens: &[Arc<str>]) -> anyhow::Result<Report> {
    let plan = plan(args);
    let shared = Shared::new(args.rooms);
    let before = args.pid.map(rss_kib).transpose()?;
    let logging_in = Arc::new(tokio::sync::Semaphore::new(args.parallel_logins.max(1)));
    let (opener, gate) = gate(args.connections);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let sources = source_addresses(args.sources, args.connections);
    let padding: Arc<str> = Arc::from("x".repeat(args.padding));
    let setup_started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let session = Session {
            shared: Arc::clone(&shared),
            server: args.server,
            sources,
            index: i,
            token: Arc::clone(&tokens[i % tokens.len()]),
            room: i % args.rooms,
            offset: plan.offset(i),
            interval: plan.interval(),
            duration: plan.duration(),
            padding: Arc::clone(&padding),
        };
        let (gate, stop, logging_in) = (gate.clone(), stop.clone(), Arc::clone(&logging_in));
        tasks.push(tokio::spawn(session.run(gate, stop, logging_in)));
    }
    drop(gate);
    let m = fanout::measure(&plan, &shared, opener, tasks, stop_tx, before, setup_started).await?;
    let members = args.connections / args.rooms;
    let headline = format!(
        "ws: {} connections logged in as {} accounts and joined {} rooms (~{members} members each) in {:.2} s; each sent {}/s for {:.1} s: {} messages, {} deliveries (each sender's own copy included) of {} ({} missing) in {:.2} s: {:.0} deliveries/s; latency ms {}",
        args.connections,
        tokens.len(),
        args.rooms,
        m.setup_secs,
        args.rate,
        args.duration,
        m.sent,
        m.delivered,
        m.expected,
        m.missing(),
        m.secs,
        m.delivered as f64 / m.secs,
        m.latencies.text(2),
    );
    Ok(m.report(&plan, headline))
}

/// The fan-out `args` ask for (the server sends each message to its sender too).
fn plan(args: &WsArgs) -> Plan {
    Plan {
        load: "ws",
        server: args.server,
        connections: args.connections,
        rooms: args.rooms,
        rate: args.rate,
        duration_secs: args.duration,
        pid: args.pid,
        sender_copy: true,
    }
}

/// The loopback source addresses to spread `connections` over: `sources`, or with 0 one per
/// [`CONNECTIONS_PER_SOURCE`] connections (1 to 255).
fn source_addresses(sources: u8, connections: usize) -> u8 {
    match sources {
        0 => u8::try_from(connections.div_ceil(CONNECTIONS_PER_SOURCE).max(1)).unwrap_or(u8::MAX),
        n => n,
    }
}

/// One member.
struct Session {
    shared: Arc<Shared>,
    server: SocketAddr,
    sources: u8,
    /// The connection's number.
    index: usize,
    /// The bearer token the socket logs in with.
    token: Arc<str>,
    room: usize,
    offset: Duration,
    interval: Option<Duration>,
    duration: Duration,
    padding: Arc<str>,
}

/// What one session counts.
struct Tally {
    sent: u64,
    delivered: u64,
    latencies: Latencies,
}

impl Session {
    async fn run(
        self,
        mut gate: Gate,
        mut stop: tokio::sync::watch::Receiver<bool>,
        logging_in: Arc<tokio::sync::Semaphore>,
    ) -> anyhow::Result<Outcome> {
        let setup = async {
            let _permit = logging_in.acquire().await?;
            self.open().await
        }
        .await;
        let mut ws = match setup {
            Ok(ws) => ws,
            Err(e) => {
                let _ = gate.pass(&Err(e)).await;
                return Ok((0, 0, Latencies::new()));
            }
        };
        let mut tally = Tally { sent: 0, delivered: 0, latencies: Latencies::new() };
        // Keep reading while the others set up: the server's pings want pongs, and events (other
        // members joining) should not pile up in its outbox.
        let ready = Ok(());
        let pass = gate.pass(&ready);
        tokio::pin!(pass);
        let start = loop {
            tokio::select! {
                // First, so that the first poll reports this session ready.
                biased;
                start = &mut pass => break start,
                frame = ws.next() => self.take(frame, &mut tally)?,
            }
        };
        let Some(start) = start else {
            return Ok((tally.sent, tally.delivered, tally.latencies));
        };
        let room = format!("#bench{}", self.room);
        let end = start + self.duration;
        let mut next = self.interval.map(|_| start + self.offset).filter(|&t| t < end);
        let far = start + Duration::from_secs(365 * 24 * 3600);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                // Cancel safe: a frame read in part stays in the stream's buffer.
                frame = ws.next() => self.take(frame, &mut tally)?,
                _ = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {
                    let due = next.expect("guarded");
                    let stamp = due.duration_since(self.shared.epoch).as_micros();
                    // Nothing in the text needs escaping in JSON: digits, spaces and the filler.
                    let request = format!(
                        r#"{{"type":"send","room":"{room}","text":"bench {stamp} {}{}"}}"#,
                        tally.sent, self.padding
                    );
                    ws.send(Message::text(request)).await?;
                    self.shared.sent[self.room].fetch_add(1, Ordering::AcqRel);
                    tally.sent += 1;
                    next = self.interval.map(|d| due + d).filter(|&t| t < end);
                    if next.is_none() {
                        self.shared.senders_done.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(CLOSE_TIMEOUT_SECS), ws.close(None)).await;
        Ok((tally.sent, tally.delivered, tally.latencies))
    }

    fn micros_now(&self) -> u64 {
        self.shared.micros_now()
    }

    /// Counts a frame that is a bench message; fails when the socket ends or the server refuses a
    /// request.
    fn take(&self, frame: Option<Result<Message, WsError>>, tally: &mut Tally) -> anyhow::Result<()> {
        if let Some(t) = check(frame).with_context(|| format!("connection {}", self.index))? {
            let now = self.micros_now();
            tally.latencies.record_micros(now.saturating_sub(t));
            tally.delivered += 1;
            self.shared.delivered.fetch_add(1, Ordering::AcqRel);
            self.shared.last_delivery_micros.fetch_max(now, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Connects, does the WebSocket handshake, logs in with the token and joins the member's room;
    /// returns the socket once the server has answered the join.
    async fn open(&self) -> anyhow::Result<Socket> {
        let what = || format!("connection {}", self.index);
        let stream = connect(self.server, self.index, self.sources).await?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES).write_buffer_size(0);
        let url = format!("ws://{}/ws", self.server);
        let handshake = tokio_tungstenite::client_async_with_config(url, stream, Some(config));
        let (mut ws, _) = tokio::time::timeout(Duration::from_secs(SETUP_TIMEOUT_SECS), handshake)
            .await
            .with_context(|| format!("{}: no WebSocket handshake within {SETUP_TIMEOUT_SECS} s", what()))?
            .with_context(|| format!("{}: WebSocket handshake", what()))?;
        let login = json!({ "type": "login", "id": "login", "token": &*self.token });
        self.request(&mut ws, login, "login").await.with_context(|| format!("{}: logging in", what()))?;
        let join = json!({ "type": "join", "id": "join", "room": format!("#bench{}", self.room) });
        self.request(&mut ws, join, "join").await.with_context(|| format!("{}: joining", what()))?;
        // A member with nothing to send (rate 0) is done sending from the start.
        if self.interval.is_none() || self.offset >= self.duration {
            self.shared.senders_done.fetch_add(1, Ordering::AcqRel);
        }
        Ok(ws)
    }

    /// Sends `request` (whose `id` is `id`) and reads frames until its reply: `Ok` for `ok`, the
    /// error's code and message for `error`.
    async fn request(&self, ws: &mut Socket, request: serde_json::Value, id: &str) -> anyhow::Result<()> {
        ws.send(Message::text(request.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(SETUP_TIMEOUT_SECS), ws.next())
                .await
                .with_context(|| format!("no answer within {SETUP_TIMEOUT_SECS} s"))?;
            let frame = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => bail!("the server closed the socket: {}", close_text(close)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the server closed the connection"),
            };
            let reply: serde_json::Value = serde_json::from_str(frame.as_str()).context("a frame that is not JSON")?;
            if reply["id"] != id {
                continue;
            }
            match reply["type"].as_str() {
                Some("ok") => return Ok(()),
                _ => bail!("{}", refusal(&reply)),
            }
        }
    }
}

/// Reads one frame of the running load: the stamp of a bench message, `None` for anything else;
/// an error when the socket ended or the server sent an `error` (a request refused, or the reason
/// it is about to close the socket).
fn check(frame: Option<Result<Message, WsError>>) -> anyhow::Result<Option<u64>> {
    match frame {
        None => bail!("the server closed the connection"),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(Message::Text(text))) => {
            let text = text.as_str();
            if let Some(t) = bench_stamp(text) {
                return Ok(Some(t));
            }
            if text.starts_with(r#"{"type":"error""#) {
                let error: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                bail!("{}", refusal(&error));
            }
            Ok(None)
        }
        Some(Ok(Message::Close(close))) => bail!("the server closed the socket: {}", close_text(close)),
        Some(Ok(_)) => Ok(None),
    }
}

/// An `error` frame as one line: `<code>: <message>`, with what to change for a flood refusal.
fn refusal(error: &serde_json::Value) -> String {
    let code = error["code"].as_str().unwrap_or("?");
    let message = error["message"].as_str().unwrap_or("");
    let mut text = format!("the server refused: {code}: {message}");
    if code == "flood" {
        text.push_str(" (more than [web] flood_requests_per_sec requests a second: raise it, or set it to 0)");
    }
    text
}

fn close_text(close: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    close.map_or_else(|| "no status".into(), |c| format!("{} {}", u16::from(c.code), c.reason.as_str()))
}

/// The `<µs>` of a `message` event whose text is `bench <µs> <seq>…`. The server writes `type`
/// first and `text` as the message's own field; a `"` inside any string is escaped, so the pattern
/// cannot match inside a nick or a room name.
fn bench_stamp(frame: &str) -> Option<u64> {
    let rest = frame.strip_prefix(r#"{"type":"message","#)?;
    const TEXT: &str = r#""text":"bench "#;
    let text = &rest[rest.find(TEXT)? + TEXT.len()..];
    let end = text.find(|c: char| !c.is_ascii_digit())?;
    if !text[end..].starts_with(' ') {
        return None;
    }
    text[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_stamps_parse_from_message_events_only() {
        let event = r##"{"type":"message","message":{"id":"01HF3Z4X2Q8V6N0C7M5K9J1B2A","room":"#bench0","seq":3,"at_ms":1700000000123,"from":{"nick":"ta","account":"ta@mmsys.upenn.edu","via":"web"},"kind":"text","text":"bench 12345 7"}}"##;
        assert_eq!(super::bench_stamp(event), Some(12345));
        let padded = event.replace("bench 12345 7", "bench 99 0xxxx");
        assert_eq!(super::bench_stamp(&padded), Some(99));
        // The reply to a send carries the message too; it is not a delivery.
        let reply = event.replace(r#"{"type":"message","#, r#"{"type":"ok","#);
        assert_eq!(super::bench_stamp(&reply), None);
        assert_eq!(super::bench_stamp(&event.replace("bench 12345 7", "hello")), None);
        assert_eq!(super::bench_stamp(&event.replace("bench 12345 7", "bench 12345")), None, "no seq");
        let nick = event.replace(r#""nick":"ta""#, r#""nick":"\"text\":\"bench 1 2""#).replace("bench 12345 7", "hi");
        assert_eq!(super::bench_stamp(&nick), None, "a quoted pattern in a nick");
        let joined = r##"{"type":"joined","room":"#bench0","member":{"nick":"ta"},"at_ms":1}"##;
        assert_eq!(super::bench_stamp(joined), None);
    }

    #[test]
    fn error_frames_end_the_load_and_flood_says_what_to_change() {
        use tokio_tungstenite::tungstenite::Message;
        let flood = r#"{"type":"error","code":"flood","message":"too many requests"}"#;
        let e = super::check(Some(Ok(Message::text(flood)))).unwrap_err().to_string();
        assert!(e.contains("flood: too many requests") && e.contains("flood_requests_per_sec"), "{e}");
        let event = r##"{"type":"joined","room":"#bench0"}"##;
        assert_eq!(super::check(Some(Ok(Message::text(event)))).unwrap(), None);
        assert!(super::check(None).is_err());
        assert!(super::check(Some(Ok(Message::Close(None)))).is_err());
    }

    #[test]
    fn sources_default_to_one_per_500_connections() {
        assert_eq!(super::source_addresses(0, 1), 1);
        assert_eq!(super::source_addresses(0, 500), 1);
        assert_eq!(super::source_addresses(0, 1000), 2);
        assert_eq!(super::source_addresses(0, 1001), 3);
        assert_eq!(super::source_addresses(0, 10_000_000), 255);
        assert_eq!(super::source_addresses(4, 1), 4);
    }
}
