//! An IMAP client (RFC 3501 / RFC 9051) on imap-next's client state machine: connect with failover,
//! STARTTLS, LOGIN or AUTHENTICATE PLAIN, and the mailbox and message commands `tidings mail`
//! needs (LIST, STATUS, CREATE, RENAME, DELETE, SELECT/EXAMINE, UID FETCH, UID STORE, UID COPY,
//! UID MOVE (RFC 6851), UID EXPUNGE (RFC 4315), APPEND).
//!
//! The greeting and STARTTLS are spoken here, line by line (decoded with imap-codec), before
//! imap-next takes over the connection: reading the greeting is what tells failover whether a
//! server answers, and upgrading before imap-next holds the socket means no plaintext it buffered
//! could be taken as if it had come over TLS.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{AString, Atom, Literal, LiteralMode, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName, Section};
use imap_codec::imap_types::flag::{Flag, FlagFetch, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, GreetingKind, Response, Status, StatusBody, StatusKind, Tagged};
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_codec::{GreetingCodec, ResponseCodec};
use imap_next::client::{Client, Event, Options};
use imap_next::stream::{Error as StreamError, Stream};
use imap_next::{State as _, imap_types};
use tidings_core::{Flags, SystemFlag};
use tokio::io::{AsyncWriteExt, BufReader};

use crate::net::{self, ConnectOptions, Security, ServerAddress, Transport};
use crate::utf7;

/// Most UIDs one UID FETCH asks for when fetching whole messages (export).
pub const FETCH_BATCH_MESSAGES_MAX: usize = 256;
/// Most octets of messages one UID FETCH asks for (export); a single larger message is fetched
/// alone.
pub const FETCH_BATCH_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// Largest response the client accepts (a whole message arrives in one FETCH response).
pub const RESPONSE_BYTES_MAX: u32 = 300 * 1024 * 1024;
/// Most untagged responses one command may collect before the client gives up on the server.
pub const RESPONSES_PER_COMMAND_MAX: usize = 1_000_000;

/// A mailbox as LIST reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Folder {
    /// The name, decoded from modified UTF-7 (or as sent, when it is not valid modified UTF-7).
    pub name: String,
    /// The hierarchy delimiter, if the server has hierarchy.
    pub delimiter: Option<char>,
    /// Attributes: `\Noselect`, `\HasChildren`, special uses like `\Trash` (RFC 6154), …
    pub attributes: Vec<String>,
}

impl Folder {
    /// Whether the mailbox can be selected (no `\Noselect` or `\NonExistent`).
    pub fn is_selectable(&self) -> bool {
        !self.has_attribute("\\Noselect") && !self.has_attribute("\\NonExistent")
    }

    /// Whether the folder has `attribute` (case-insensitive).
    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// Counts of a mailbox from STATUS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FolderStatus {
    /// Number of messages.
    pub messages: Option<u32>,
    /// Number of messages without `\Seen`.
    pub unseen: Option<u32>,
}

/// The selected mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The name as given to SELECT.
    pub folder: String,
    /// Number of messages (EXISTS).
    pub exists: u32,
    /// UIDVALIDITY: UIDs keep their meaning while it stays the same.
    pub uidvalidity: Option<u32>,
    /// The next UID the server will assign.
    pub uidnext: Option<u32>,
    /// Whether the mailbox was opened read-only (EXAMINE, or the server said so).
    pub read_only: bool,
}

/// What one UID FETCH response told about a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The UID.
    pub uid: u32,
    /// The flags as the server spells them (with `\Recent` when present).
    pub flag_names: Vec<String>,
    /// The flags that can be stored (system flags and keywords).
    pub flags: Flags,
    /// The internal date, Unix seconds.
    pub internal_date: Option<i64>,
    /// RFC822.SIZE in octets.
    pub size: Option<u32>,
    /// The octets of the `BODY[...]` item fetched (whole message or header fields).
    pub body: Option<Vec<u8>>,
}

/// What a message fetch asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchBody {
    /// Only UID, flags, internal date and size.
    None,
    /// The Date, From, To, Cc and Subject fields (without setting `\Seen`).
    SummaryHeader,
    /// The whole message, without setting `\Seen` (BODY.PEEK[]).
    Peek,
    /// The whole message, setting `\Seen` as reading it in a mail client does (BODY[]).
    Read,
}

/// An IMAP session, authenticated after [`ImapClient::login`].
pub struct ImapClient {
    stream: Stream,
    client: Client,
    /// Capabilities as last announced, upper case.
    capabilities: Vec<String>,
    /// The server actually connected to (primary or backup).
    server: ServerAddress,
    peer: SocketAddr,
    tls: bool,
    /// Whether the greeting was PREAUTH.
    authenticated: bool,
    io_timeout: Duration,
    allow_plaintext: bool,
    next_tag: u32,
    /// The text of a BYE the server sent, to explain a closed connection.
    bye: Option<String>,
}

/// The tagged status of a command with the untagged responses that came before it.
struct Outcome {
    data: Vec<Data<'static>>,
    untagged: Vec<StatusBody<'static>>,
    status: StatusBody<'static>,
}

impl ImapClient {
    /// Connects to the primary server (or the backup when the primary does not answer within the
    /// connect timeout), reads the greeting, and upgrades with STARTTLS when the server offers it
    /// (unless the connection already has implicit TLS).
    ///
    /// # Errors
    /// When no server greets, a server refuses (BYE), or the TLS upgrade fails.
    pub async fn connect(options: &ConnectOptions) -> anyhow::Result<ImapClient> {
        let (mut reader, mut capabilities, preauth, server) = net::with_failover(options, |address| async move {
            let tcp = net::tcp_connect(&address).await?;
            let transport = match options.security {
                Security::Implicit => Transport::Tls(Box::new(net::tls_handshake(&options.tls, &address, tcp).await?)),
                Security::StartTls => Transport::Plain(tcp),
            };
            let mut reader = BufReader::new(transport);
            let line = net::read_line(&mut reader).await?;
            let (_, greeting) = GreetingCodec::default()
                .decode(&line)
                .map_err(|_| anyhow!("not an IMAP greeting: {:?}", String::from_utf8_lossy(&line).trim_end()))?;
            if greeting.kind == GreetingKind::Bye {
                bail!("the server refused the connection: {}", greeting.text);
            }
            let capabilities = match &greeting.code {
                Some(Code::Capability(list)) => capability_names(list.as_ref()),
                _ => Vec::new(),
            };
            Ok((reader, capabilities, greeting.kind == GreetingKind::PreAuth, address))
        })
        .await?;
        let peer = reader.get_ref().peer_addr()?;
        let mut next_tag = 1;
        if !reader.get_ref().is_tls() && options.security == Security::StartTls && !preauth {
            if capabilities.is_empty() {
                capabilities = pre_tls_command(&mut reader, &mut next_tag, "CAPABILITY", options.io_timeout).await?;
            }
            if capabilities.iter().any(|c| c == "STARTTLS") {
                pre_tls_command(&mut reader, &mut next_tag, "STARTTLS", options.io_timeout).await?;
                // Anything sent after the OK would be taken as if it came over TLS: a command
                // injection (RFC 3207 §6 for SMTP; the same holds for IMAP). Refuse it.
                if !reader.buffer().is_empty() {
                    bail!("the server sent data after its reply to STARTTLS; refusing to continue");
                }
                let Transport::Plain(tcp) = reader.into_inner() else { unreachable!("checked is_tls above") };
                let tls = net::tls_handshake(&options.tls, &server, tcp).await?;
                reader = BufReader::new(Transport::Tls(Box::new(tls)));
                // RFC 9051 §6.2.1: capabilities learnt before TLS are discarded.
                capabilities.clear();
            }
        }
        let leftover = reader.buffer().to_vec();
        let tls = reader.get_ref().is_tls();
        let stream = match reader.into_inner() {
            Transport::Plain(tcp) => Stream::insecure(tcp),
            Transport::Tls(tls) => Stream::tls(tokio_rustls::TlsStream::Client(*tls)),
        };
        let mut client_options = Options::default();
        client_options.crlf_relaxed = true;
        client_options.discard_greeting = true;
        client_options.max_response_size = RESPONSE_BYTES_MAX;
        let mut client = Client::new(client_options);
        if !leftover.is_empty() {
            client.enqueue_input(&leftover);
        }
        let mut session = ImapClient {
            stream,
            client,
            capabilities,
            server,
            peer,
            tls,
            authenticated: preauth,
            io_timeout: options.io_timeout,
            allow_plaintext: options.allow_plaintext,
            next_tag,
            bye: None,
        };
        if session.capabilities.is_empty() {
            session.refresh_capabilities().await?;
        }
        Ok(session)
    }

    /// The server this session is connected to.
    pub fn server(&self) -> &ServerAddress {
        &self.server
    }

    /// Whether the session is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the server announced `capability` (case-insensitive), e.g. `MOVE`, `UIDPLUS`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c.eq_ignore_ascii_case(capability))
    }

    /// Logs in: AUTHENTICATE PLAIN (RFC 4616, with SASL-IR when offered) if the server offers it,
    /// else LOGIN.
    ///
    /// # Errors
    /// When the connection has no TLS to a non-loopback address (unless plaintext is allowed),
    /// the server allows no login without TLS, or refuses the credentials.
    pub async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        if self.authenticated {
            return Ok(());
        }
        net::check_plaintext_password(self.peer, self.tls, self.allow_plaintext)?;
        if self.has_capability("AUTH=PLAIN") {
            self.authenticate_plain(user, password).await?;
        } else if self.has_capability("LOGINDISABLED") {
            bail!("{} allows no LOGIN on this connection (LOGINDISABLED) and offers no AUTH=PLAIN", self.server);
        } else {
            let body = CommandBody::login(user.to_owned(), password.to_owned())
                .map_err(|_| anyhow!("the user name or password cannot be sent with LOGIN"))?;
            let outcome = self.execute(body).await?;
            if outcome.status.kind != StatusKind::Ok {
                bail!("login as {user} failed: {}", status_text(&outcome.status));
            }
            self.absorb_capabilities(&outcome);
        }
        self.authenticated = true;
        // Servers announce more after login; ask unless the login reply carried them.
        self.refresh_capabilities().await
    }

    async fn authenticate_plain(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let payload = format!("\0{user}\0{password}").into_bytes();
        let body = if self.has_capability("SASL-IR") {
            CommandBody::authenticate_with_ir(AuthMechanism::Plain, payload.clone())
        } else {
            CommandBody::authenticate(AuthMechanism::Plain)
        };
        let tag = self.tag();
        self.client.enqueue_command(Command { tag, body });
        let mut payload = Some(payload);
        let mut fresh_capabilities = None;
        loop {
            match self.next_event().await? {
                Event::AuthenticateContinuationRequestReceived { .. } => {
                    let data = match payload.take() {
                        Some(p) => AuthenticateData::r#continue(p),
                        // A second challenge for PLAIN makes no sense: cancel.
                        None => AuthenticateData::Cancel,
                    };
                    self.client.set_authenticate_data(data).map_err(|_| anyhow!("AUTHENTICATE out of step"))?;
                }
                Event::AuthenticateStatusReceived { status, .. } => {
                    let body = match status {
                        Status::Tagged(Tagged { body, .. }) => body,
                        Status::Untagged(body) => body,
                        Status::Bye(bye) => bail!("the server closed the session: {}", bye.text),
                    };
                    if body.kind != StatusKind::Ok {
                        bail!("login as {user} failed: {}", status_text(&body));
                    }
                    if let Some(Code::Capability(list)) = &body.code {
                        fresh_capabilities = Some(capability_names(list.as_ref()));
                    }
                    break;
                }
                Event::DataReceived { data: Data::Capability(list) } => {
                    fresh_capabilities = Some(capability_names(list.as_ref()));
                }
                Event::StatusReceived { status: Status::Bye(bye) } => self.bye = Some(bye.text.to_string()),
                _ => {}
            }
        }
        if let Some(c) = fresh_capabilities {
            self.capabilities = c;
        }
        Ok(())
    }

    /// Every mailbox (`LIST "" "*"`), in the server's order.
    ///
    /// # Errors
    /// When the server refuses LIST or the connection fails.
    pub async fn list(&mut self) -> anyhow::Result<Vec<Folder>> {
        let body = CommandBody::list("", "*").map_err(|_| anyhow!("LIST arguments"))?;
        let outcome = self.checked(body, "LIST").await?;
        let mut folders = Vec::new();
        for data in outcome.data {
            if let Data::List { items, delimiter, mailbox } = data {
                folders.push(Folder {
                    name: mailbox_name(&mailbox),
                    delimiter: delimiter.map(|d| d.inner()),
                    attributes: items.iter().map(ToString::to_string).collect(),
                });
            }
        }
        Ok(folders)
    }

    /// The message and unseen counts of a mailbox (STATUS).
    ///
    /// # Errors
    /// When the mailbox does not exist or cannot be selected.
    pub async fn status(&mut self, folder: &str) -> anyhow::Result<FolderStatus> {
        let body =
            CommandBody::status(mailbox(folder)?, vec![StatusDataItemName::Messages, StatusDataItemName::Unseen])
                .map_err(|_| anyhow!("invalid folder name {folder:?}"))?;
        let outcome = self.checked(body, &format!("STATUS {folder}")).await?;
        let mut status = FolderStatus::default();
        for data in &outcome.data {
            if let Data::Status { items, .. } = data {
                for item in items.iter() {
                    match item {
                        StatusDataItem::Messages(n) => status.messages = Some(*n),
                        StatusDataItem::Unseen(n) => status.unseen = Some(*n),
                        _ => {}
                    }
                }
            }
        }
        Ok(status)
    }

    /// Creates a mailbox.
    ///
    /// # Errors
    /// When the server refuses (it exists, invalid name, …).
    pub async fn create(&mut self, folder: &str) -> anyhow::Result<()> {
        let body = CommandBody::create(mailbox(folder)?).map_err(|_| anyhow!("invalid folder name {folder:?}"))?;
        self.checked(body, &format!("creating {folder}")).await.map(drop)
    }

    /// Renames a mailbox.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        let body = CommandBody::rename(mailbox(from)?, mailbox(to)?).map_err(|_| anyhow!("invalid folder name"))?;
        self.checked(body, &format!("renaming {from} to {to}")).await.map(drop)
    }

    /// Deletes a mailbox.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn delete(&mut self, folder: &str) -> anyhow::Result<()> {
        let body = CommandBody::delete(mailbox(folder)?).map_err(|_| anyhow!("invalid folder name {folder:?}"))?;
        self.checked(body, &format!("deleting {folder}")).await.map(drop)
    }

    /// Opens a mailbox: SELECT, or EXAMINE when `read_only`.
    ///
    /// # Errors
    /// When the mailbox does not exist or cannot be opened.
    pub async fn select(&mut self, folder: &str, read_only: bool) -> anyhow::Result<Selected> {
        let name = mailbox(folder)?;
        let body = if read_only { CommandBody::examine(name) } else { CommandBody::select(name) }
            .map_err(|_| anyhow!("invalid folder name {folder:?}"))?;
        let outcome = self.checked(body, &format!("opening {folder}")).await?;
        let mut selected =
            Selected { folder: folder.to_owned(), exists: 0, uidvalidity: None, uidnext: None, read_only };
        for data in &outcome.data {
            if let Data::Exists(n) = data {
                selected.exists = *n;
            }
        }
        for status in outcome.untagged.iter().chain([&outcome.status]) {
            match &status.code {
                Some(Code::UidValidity(v)) => selected.uidvalidity = Some(v.get()),
                Some(Code::UidNext(v)) => selected.uidnext = Some(v.get()),
                Some(Code::ReadOnly) => selected.read_only = true,
                _ => {}
            }
        }
        Ok(selected)
    }

    /// Fetches messages of the selected mailbox by UID (`uids` an IMAP UID set such as `1:*` or
    /// `3,5:7`), sorted by UID. UIDs that do not exist are left out.
    ///
    /// # Errors
    /// When the server refuses the FETCH.
    pub async fn fetch(&mut self, uids: &str, body: FetchBody) -> anyhow::Result<Vec<Fetched>> {
        let set = SequenceSet::try_from(uids).map_err(|_| anyhow!("{uids:?} is not a UID set"))?;
        let mut items = vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ];
        match body {
            FetchBody::None => {}
            FetchBody::SummaryHeader => {
                let fields: Vec<AString<'static>> = ["DATE", "FROM", "TO", "CC", "SUBJECT"]
                    .into_iter()
                    .map(|f| AString::try_from(f).map_err(|_| anyhow!("header field name")))
                    .collect::<anyhow::Result<_>>()?;
                let fields = Vec1::try_from(fields).map_err(|_| anyhow!("header field list"))?;
                items.push(MessageDataItemName::BodyExt {
                    section: Some(Section::HeaderFields(None, fields)),
                    partial: None,
                    peek: true,
                });
            }
            FetchBody::Peek | FetchBody::Read => {
                items.push(MessageDataItemName::BodyExt {
                    section: None,
                    partial: None,
                    peek: body == FetchBody::Peek,
                });
            }
        }
        let command = CommandBody::fetch(set, items, true).map_err(|_| anyhow!("FETCH arguments"))?;
        let outcome = self.checked(command, "FETCH").await?;
        let mut fetched: Vec<Fetched> = Vec::new();
        for data in outcome.data {
            let Data::Fetch { items, .. } = data else { continue };
            let mut message = Fetched::default();
            for item in items.into_iter() {
                match item {
                    MessageDataItem::Uid(uid) => message.uid = uid.get(),
                    MessageDataItem::Flags(flags) => {
                        message.flag_names = flags.iter().map(flag_fetch_name).collect();
                        message.flags = flags_from_fetch(&flags);
                    }
                    MessageDataItem::InternalDate(date) => message.internal_date = Some(date.as_ref().timestamp()),
                    MessageDataItem::Rfc822Size(size) => message.size = Some(size),
                    MessageDataItem::BodyExt { data, .. } => {
                        message.body = Some(data.into_option().map(|c| c.into_owned()).unwrap_or_default());
                    }
                    MessageDataItem::Rfc822(data) => {
                        message.body = Some(data.into_option().map(|c| c.into_owned()).unwrap_or_default());
                    }
                    _ => {}
                }
            }
            // An unsolicited FETCH (another session changed flags) has no UID: skip it.
            if message.uid == 0 {
                continue;
            }
            // A server may split one message's items over several responses: merge them.
            match fetched.iter_mut().find(|m| m.uid == message.uid) {
                Some(known) => {
                    if message.body.is_some() {
                        known.body = message.body;
                    }
                    if message.size.is_some() {
                        known.size = message.size;
                    }
                    if message.internal_date.is_some() {
                        known.internal_date = message.internal_date;
                    }
                    if !message.flag_names.is_empty() {
                        known.flag_names = message.flag_names;
                        known.flags = message.flags;
                    }
                }
                None => fetched.push(message),
            }
        }
        fetched.sort_by_key(|m| m.uid);
        Ok(fetched)
    }

    /// Adds or removes flags on messages by UID (`UID STORE … +FLAGS.SILENT` / `-FLAGS.SILENT`).
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn store(&mut self, uids: &[u32], add: bool, flags: &Flags) -> anyhow::Result<()> {
        let kind = if add { StoreType::Add } else { StoreType::Remove };
        let body = CommandBody::store(uid_set(uids)?, kind, StoreResponse::Silent, imap_flags(flags)?, true)
            .map_err(|_| anyhow!("STORE arguments"))?;
        self.checked(body, "STORE").await.map(drop)
    }

    /// Copies messages by UID into `folder` (UID COPY).
    ///
    /// # Errors
    /// When the server refuses (for example, the folder does not exist).
    pub async fn copy(&mut self, uids: &[u32], folder: &str) -> anyhow::Result<()> {
        let body = CommandBody::copy(uid_set(uids)?, mailbox(folder)?, true).map_err(|_| anyhow!("COPY arguments"))?;
        self.checked(body, &format!("copying to {folder}")).await.map(drop)
    }

    /// Moves messages by UID into `folder`: UID MOVE when the server has MOVE (RFC 6851), else
    /// UID COPY, UID STORE +FLAGS \Deleted, then UID EXPUNGE (RFC 4315) or, without UIDPLUS,
    /// EXPUNGE (which also removes other messages already marked \Deleted).
    ///
    /// # Errors
    /// When the server refuses a step.
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> anyhow::Result<()> {
        if self.has_capability("MOVE") {
            let body = CommandBody::Move { sequence_set: uid_set(uids)?, mailbox: mailbox(folder)?, uid: true };
            return self.checked(body, &format!("moving to {folder}")).await.map(drop);
        }
        self.copy(uids, folder).await?;
        self.expunge(uids).await
    }

    /// Deletes messages by UID for good: STORE \Deleted, then UID EXPUNGE (or EXPUNGE without
    /// UIDPLUS).
    ///
    /// # Errors
    /// When the server refuses a step.
    pub async fn expunge(&mut self, uids: &[u32]) -> anyhow::Result<()> {
        let mut deleted = Flags::new();
        deleted.set(SystemFlag::Deleted, true);
        self.store(uids, true, &deleted).await?;
        let body = if self.has_capability("UIDPLUS") {
            CommandBody::ExpungeUid { sequence_set: uid_set(uids)? }
        } else {
            CommandBody::Expunge
        };
        self.checked(body, "EXPUNGE").await.map(drop)
    }

    /// Appends a message to `folder` with its flags and internal date (Unix seconds). Returns the
    /// new UID when the server tells it (APPENDUID, RFC 4315).
    ///
    /// # Errors
    /// When the message cannot be sent as an IMAP literal (it contains NUL) or the server refuses.
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &Flags,
        internal_date: Option<i64>,
        octets: Vec<u8>,
    ) -> anyhow::Result<Option<u32>> {
        let date = match internal_date {
            Some(secs) => Some(
                chrono::DateTime::from_timestamp(secs, 0)
                    .map(|d| d.fixed_offset())
                    .and_then(|d| DateTime::try_from(d).ok())
                    .ok_or_else(|| anyhow!("internal date {secs} is out of IMAP's range"))?,
            ),
            None => None,
        };
        let length = octets.len();
        let mut literal = Literal::try_from(octets)
            .map_err(|_| anyhow!("the message contains NUL octets, which IMAP cannot carry"))?;
        // Non-synchronizing literals save a round trip per message (RFC 7888).
        if self.has_capability("LITERAL+") || (self.has_capability("LITERAL-") && length <= 4096) {
            literal.set_mode(LiteralMode::NonSync);
        }
        let body = CommandBody::Append {
            mailbox: mailbox(folder)?,
            flags: imap_flags(flags)?,
            date,
            message: imap_types::extensions::binary::LiteralOrLiteral8::Literal(literal),
        };
        let outcome = self.checked(body, &format!("appending to {folder}")).await?;
        Ok(match outcome.status.code {
            Some(Code::AppendUid { uid, .. }) => Some(uid.get()),
            _ => None,
        })
    }

    /// Ends the session (LOGOUT); errors are ignored, the work is done.
    pub async fn logout(mut self) {
        let _ = self.execute(CommandBody::Logout).await;
        let _ = tokio::time::timeout(self.io_timeout, self.stream.flush()).await;
    }

    async fn refresh_capabilities(&mut self) -> anyhow::Result<()> {
        let outcome = self.checked(CommandBody::Capability, "CAPABILITY").await?;
        self.absorb_capabilities(&outcome);
        Ok(())
    }

    fn absorb_capabilities(&mut self, outcome: &Outcome) {
        for data in &outcome.data {
            if let Data::Capability(list) = data {
                self.capabilities = capability_names(list.as_ref());
            }
        }
        if let Some(Code::Capability(list)) = &outcome.status.code {
            self.capabilities = capability_names(list.as_ref());
        }
    }

    fn tag(&mut self) -> Tag<'static> {
        let tag = Tag::try_from(format!("T{}", self.next_tag)).expect("T followed by digits is a valid tag");
        self.next_tag += 1;
        tag
    }

    /// Runs a command and fails unless its tagged status is OK; `what` names it in the error.
    async fn checked(&mut self, body: CommandBody<'static>, what: &str) -> anyhow::Result<Outcome> {
        let outcome = self.execute(body).await?;
        if outcome.status.kind != StatusKind::Ok {
            bail!("{what} failed: {}", status_text(&outcome.status));
        }
        Ok(outcome)
    }

    /// Sends a command and collects the responses up to its tagged status.
    async fn execute(&mut self, body: CommandBody<'static>) -> anyhow::Result<Outcome> {
        let name = body.name();
        let tag = self.tag();
        let handle = self.client.enqueue_command(Command { tag: tag.clone(), body });
        let mut data = Vec::new();
        let mut untagged = Vec::new();
        loop {
            if data.len() + untagged.len() > RESPONSES_PER_COMMAND_MAX {
                bail!("{} sent more than {RESPONSES_PER_COMMAND_MAX} responses to one {name}", self.server);
            }
            match self.next_event().await.with_context(|| format!("during {name}"))? {
                Event::CommandRejected { handle: rejected, status, .. } if rejected == handle => {
                    let text = match status {
                        Status::Tagged(Tagged { body, .. }) | Status::Untagged(body) => status_text(&body),
                        Status::Bye(bye) => bye.text.to_string(),
                    };
                    bail!("{name} refused: {text}");
                }
                Event::DataReceived { data: d } => data.push(d),
                Event::StatusReceived { status: Status::Tagged(Tagged { tag: got, body }) } if got == tag => {
                    return Ok(Outcome { data, untagged, status: body });
                }
                Event::StatusReceived { status: Status::Untagged(body) } => untagged.push(body),
                Event::StatusReceived { status: Status::Bye(bye) } => self.bye = Some(bye.text.to_string()),
                _ => {}
            }
        }
    }

    async fn next_event(&mut self) -> anyhow::Result<Event> {
        let server = &self.server;
        match tokio::time::timeout(self.io_timeout, self.stream.next(&mut self.client)).await {
            Err(_) => bail!("{server} did not answer within {} s", self.io_timeout.as_secs()),
            Ok(Ok(event)) => Ok(event),
            Ok(Err(StreamError::Closed)) => match &self.bye {
                Some(text) => bail!("{server} closed the connection: {text}"),
                None => bail!("{server} closed the connection"),
            },
            Ok(Err(e)) => bail!("connection to {server} failed: {e}"),
        }
    }
}

/// One command before TLS, on the raw connection: sends `TAG COMMAND`, reads lines up to the
/// tagged reply and returns the capabilities announced on the way (from `* CAPABILITY` or a
/// `[CAPABILITY …]` code).
async fn pre_tls_command(
    reader: &mut BufReader<Transport>,
    next_tag: &mut u32,
    command: &str,
    io_timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let tag = format!("P{next_tag}");
    *next_tag += 1;
    let line = format!("{tag} {command}\r\n");
    tokio::time::timeout(io_timeout, async {
        reader.get_mut().write_all(line.as_bytes()).await?;
        reader.get_mut().flush().await?;
        let mut capabilities = Vec::new();
        loop {
            let line = net::read_line(reader).await?;
            let Ok((_, response)) = ResponseCodec::default().decode(&line) else {
                bail!("unexpected reply to {command}: {:?}", String::from_utf8_lossy(&line).trim_end());
            };
            match response {
                Response::Data(Data::Capability(list)) => capabilities = capability_names(list.as_ref()),
                Response::Status(Status::Tagged(Tagged { tag: got, body })) if got.inner() == tag => {
                    if body.kind != StatusKind::Ok {
                        bail!("{command} failed: {}", status_text(&body));
                    }
                    if let Some(Code::Capability(list)) = &body.code {
                        capabilities = capability_names(list.as_ref());
                    }
                    return Ok(capabilities);
                }
                Response::Status(Status::Bye(bye)) => bail!("the server closed the session: {}", bye.text),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no reply to {command} within {} s", io_timeout.as_secs()))?
}

fn capability_names(list: &[imap_types::response::Capability<'_>]) -> Vec<String> {
    list.iter().map(|c| c.to_string().to_ascii_uppercase()).collect()
}

fn status_text(body: &StatusBody<'_>) -> String {
    let kind = match body.kind {
        StatusKind::Ok => "OK",
        StatusKind::No => "NO",
        StatusKind::Bad => "BAD",
    };
    match &body.code {
        Some(code) => format!("{kind} [{}] {}", code_name(code), body.text),
        None => format!("{kind} {}", body.text),
    }
}

fn code_name(code: &Code<'_>) -> String {
    match code {
        Code::TryCreate => "TRYCREATE".into(),
        Code::Alert => "ALERT".into(),
        Code::OverQuota => "OVERQUOTA".into(),
        Code::TooBig => "TOOBIG".into(),
        Code::Parse => "PARSE".into(),
        Code::ReadOnly => "READ-ONLY".into(),
        Code::Other(other) => String::from_utf8_lossy(other.inner()).into_owned(),
        other => format!("{other:?}"),
    }
}

/// A mailbox argument from a user's folder name (modified UTF-7; `INBOX` in any case is INBOX).
fn mailbox(folder: &str) -> anyhow::Result<Mailbox<'static>> {
    if folder.is_empty() {
        bail!("a folder name cannot be empty");
    }
    if folder.chars().any(char::is_control) {
        bail!("folder name {folder:?} contains control characters");
    }
    Mailbox::try_from(utf7::encode(folder)).map_err(|_| anyhow!("invalid folder name {folder:?}"))
}

fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".to_owned(),
        Mailbox::Other(other) => {
            let raw = String::from_utf8_lossy(other.as_ref()).into_owned();
            utf7::decode(raw.as_bytes()).unwrap_or(raw)
        }
    }
}

/// A UID set in IMAP syntax with ranges compressed: `[1, 2, 3, 7]` is `1:3,7`.
///
/// # Errors
/// When `uids` is empty or holds 0.
pub fn uid_set_text(uids: &[u32]) -> anyhow::Result<String> {
    if uids.is_empty() || uids.contains(&0) {
        bail!("UIDs are positive numbers; none given");
    }
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut start = sorted[0];
    let mut end = start;
    for &uid in &sorted[1..] {
        if uid == end + 1 {
            end = uid;
        } else {
            parts.push(if start == end { start.to_string() } else { format!("{start}:{end}") });
            start = uid;
            end = uid;
        }
    }
    parts.push(if start == end { start.to_string() } else { format!("{start}:{end}") });
    Ok(parts.join(","))
}

fn uid_set(uids: &[u32]) -> anyhow::Result<SequenceSet> {
    let text = uid_set_text(uids)?;
    SequenceSet::try_from(text.as_str()).map_err(|_| anyhow!("invalid UID set {text}"))
}

/// The IMAP flags for `flags` (keywords that are not atoms cannot occur: [`Flags`] validates).
fn imap_flags(flags: &Flags) -> anyhow::Result<Vec<Flag<'static>>> {
    let mut out: Vec<Flag<'static>> = SystemFlag::ALL
        .into_iter()
        .filter(|f| flags.has(*f))
        .map(|f| match f {
            SystemFlag::Seen => Flag::Seen,
            SystemFlag::Answered => Flag::Answered,
            SystemFlag::Flagged => Flag::Flagged,
            SystemFlag::Deleted => Flag::Deleted,
            SystemFlag::Draft => Flag::Draft,
        })
        .collect();
    for keyword in flags.keywords() {
        let atom =
            Atom::try_from(keyword.to_owned()).map_err(|_| anyhow!("{keyword:?} is not a valid IMAP keyword"))?;
        out.push(Flag::Keyword(atom));
    }
    Ok(out)
}

fn flag_fetch_name(flag: &FlagFetch<'_>) -> String {
    match flag {
        FlagFetch::Flag(f) => f.to_string(),
        FlagFetch::Recent => "\\Recent".to_owned(),
    }
}

/// The storable flags among fetched ones: system flags and keywords (`\Recent` and unknown
/// backslash flags are not stored).
fn flags_from_fetch(fetched: &[FlagFetch<'_>]) -> Flags {
    let mut flags = Flags::new();
    for flag in fetched {
        let FlagFetch::Flag(flag) = flag else { continue };
        match flag {
            Flag::Seen => flags.set(SystemFlag::Seen, true),
            Flag::Answered => flags.set(SystemFlag::Answered, true),
            Flag::Flagged => flags.set(SystemFlag::Flagged, true),
            Flag::Deleted => flags.set(SystemFlag::Deleted, true),
            Flag::Draft => flags.set(SystemFlag::Draft, true),
            Flag::Keyword(atom) => {
                let _ = flags.add_keyword(atom.inner());
            }
            Flag::Extension(_) => {}
        }
    }
    flags
}

/// The messages to fetch per batch: consecutive `(uid, size)` pairs grouped so that each batch has
/// at most [`FETCH_BATCH_MESSAGES_MAX`] messages and [`FETCH_BATCH_BYTES_MAX`] octets (a larger
/// message alone).
pub fn fetch_batches(messages: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for &(uid, size) in messages {
        if !batch.is_empty() && (batch.len() >= FETCH_BATCH_MESSAGES_MAX || bytes + size > FETCH_BATCH_BYTES_MAX) {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        batch.push(uid);
        bytes += size;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// A UID from its decimal text.
///
/// # Errors
/// When the text is not a positive 32-bit number.
pub fn parse_uid(text: &str) -> anyhow::Result<u32> {
    text.parse::<NonZeroU32>().map(NonZeroU32::get).map_err(|_| anyhow!("{text:?} is not a UID (a positive number)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_ranges() {
        assert_eq!(uid_set_text(&[7, 1, 2, 3, 3, 9, 10]).unwrap(), "1:3,7,9:10");
        assert_eq!(uid_set_text(&[5]).unwrap(), "5");
        assert!(uid_set_text(&[]).is_err());
        assert!(uid_set_text(&[0]).is_err());
    }

    #[test]
    fn fetch_batches_bound_count_and_octets() {
        let many: Vec<(u32, u64)> = (1..=600).map(|u| (u, 10)).collect();
        let batches = fetch_batches(&many);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [256, 256, 88]);
        let big = [(1, FETCH_BATCH_BYTES_MAX + 1), (2, 10), (3, FETCH_BATCH_BYTES_MAX - 10), (4, 10)];
        assert_eq!(fetch_batches(&big), [vec![1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn fetched_flags_drop_recent_and_keep_keywords() {
        let fetched = vec![
            FlagFetch::Flag(Flag::Seen),
            FlagFetch::Recent,
            FlagFetch::Flag(Flag::Keyword(Atom::try_from("$Forwarded").unwrap())),
        ];
        assert_eq!(flags_from_fetch(&fetched).to_string(), "\\Seen $Forwarded");
        assert_eq!(fetched.iter().map(flag_fetch_name).collect::<Vec<_>>(), ["\\Seen", "\\Recent", "$Forwarded"]);
    }

    #[test]
    fn folder_names_are_sent_in_modified_utf7() {
        assert_eq!(mailbox("inbox").unwrap(), Mailbox::Inbox);
        assert_eq!(mailbox_name(&mailbox("Entwürfe").unwrap()), "Entwürfe");
        assert!(mailbox("").is_err());
        assert!(mailbox("a\nb").is_err());
    }
}
