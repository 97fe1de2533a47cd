//! `tidings mail`: a command-line mail client for any IMAP and SMTP submission server (tidings'
//! own, Dovecot, …): send, list, read, delete, move, manage folders, and import or export mbox
//! files and Maildir folders to move mail in from (or out to) other systems.
//!
//! Message IDs are IMAP UIDs within their folder: they stay the same across sessions (as long as
//! the folder's UIDVALIDITY does). Output is for people by default; `--json` prints one JSON
//! document for programs.

use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use tidings_client::imap::{self, FetchBody, Fetched, ImapClient};
use tidings_client::maildir::{MaildirReader, MaildirWriter};
use tidings_client::mbox::{MboxReader, MboxWriter};
use tidings_client::mime::{self, Attachment, Draft, Mailbox};
use tidings_client::net::{ConnectOptions, Security, ServerAddress, TlsOptions};
use tidings_client::smtp::SmtpClient;
use tidings_client::web::{ApiClient, ApiUrl};
use tidings_client::{MessageRecord, net};
use tidings_core::{Address, SystemFlag};

/// How long any reply may take once connected.
const IO_TIMEOUT_SECS: u64 = 120;
/// Largest attachment read from a file, in octets (tidings accepts 25 MiB messages by default).
const ATTACHMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest body read from standard input, in octets.
const BODY_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// `tidings mail`: the connection options and what to do.
#[derive(Args)]
pub struct MailArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    action: Action,
}

/// Where the servers are, who the user is, and how to talk to them. Each option may come before or
/// after the subcommand.
#[derive(Args)]
#[command(next_help_heading = "Account and connection")]
struct Connection {
    /// IMAP server, HOST:PORT.
    #[arg(long, global = true, default_value = "127.0.0.1:1143", value_name = "HOST:PORT")]
    imap: ServerAddress,
    /// SMTP submission server, HOST:PORT (RFC 6409; AUTH required).
    #[arg(long, global = true, default_value = "127.0.0.1:2587", value_name = "HOST:PORT")]
    smtp: ServerAddress,
    /// IMAP server to use when the primary does not answer within --connect-timeout.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    backup_imap: Option<ServerAddress>,
    /// SMTP server to use when the primary does not answer within --connect-timeout.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    backup_smtp: Option<ServerAddress>,
    /// Seconds a server has to accept the connection and greet before the backup is tried.
    #[arg(long, global = true, default_value_t = 3.0, value_name = "SECS")]
    connect_timeout: f64,
    /// The account, e.g. ta@mmsys.upenn.edu (also the sender of `send`). The password comes from
    /// TIDINGS_PASSWORD or a prompt.
    #[arg(long, global = true, value_name = "ADDRESS")]
    user: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// IMAP with implicit TLS (IMAPS, usually port 993) instead of STARTTLS.
    #[arg(long, global = true)]
    imaps: bool,
    /// SMTP with implicit TLS (submissions, usually port 465) instead of STARTTLS.
    #[arg(long, global = true)]
    smtps: bool,
    /// Trust the certificates in this PEM file instead of the system's roots (for a tidings node:
    /// its data directory's tls/cert.pem).
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Do not verify the server's certificate. FOR TESTING ONLY: anyone on the path can read the
    /// password.
    #[arg(long, global = true)]
    insecure: bool,
    /// Send the password even without TLS to a non-loopback server (never needed on loopback).
    #[arg(long, global = true)]
    allow_plaintext: bool,
}

/// A mail action.
#[derive(Subcommand)]
enum Action {
    /// Send a message over SMTP submission. The body comes from --body or standard input.
    Send {
        /// Recipient (`addr@example.org` or `Name <addr@example.org>`); repeat for more.
        #[arg(long, required = true, value_name = "ADDRESS")]
        to: Vec<String>,
        /// Copy recipient; repeat for more.
        #[arg(long, value_name = "ADDRESS")]
        cc: Vec<String>,
        /// Blind copy recipient (in the envelope only); repeat for more.
        #[arg(long, value_name = "ADDRESS")]
        bcc: Vec<String>,
        /// Subject (UTF-8 welcome).
        #[arg(long, default_value = "")]
        subject: String,
        /// The body text; without it the body is read from standard input.
        #[arg(long)]
        body: Option<String>,
        /// File to attach; repeat for more.
        #[arg(long, value_name = "FILE")]
        attach: Vec<PathBuf>,
    },
    /// List the messages of a folder: UID, flags, date, sender, size and subject. Flags are
    /// letters: N new (not \Seen), A \Answered, F \Flagged, D \Deleted, T \Draft.
    List {
        /// The folder.
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Show a message: its main header fields and text (marks it \Seen unless --peek).
    Read {
        /// The message's UID.
        id: String,
        /// The folder.
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// Write the message's octets exactly as stored.
        #[arg(long)]
        raw: bool,
        /// Leave the \Seen flag as it is.
        #[arg(long)]
        peek: bool,
    },
    /// Delete messages: move them to Trash when the account has one (as mail clients do),
    /// otherwise (or in Trash, or with --expunge) remove them for good.
    Delete {
        /// UIDs of the messages.
        #[arg(required = true)]
        ids: Vec<String>,
        /// The folder.
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// Remove for good instead of moving to Trash.
        #[arg(long)]
        expunge: bool,
    },
    /// List the folders with their message counts.
    Folders,
    /// Create, rename or delete a folder.
    Folder {
        #[command(subcommand)]
        action: FolderAction,
    },
    /// Move a message to another folder (UID MOVE, or COPY and EXPUNGE on servers without MOVE).
    Move {
        /// The message's UID.
        id: String,
        /// The destination folder.
        target: String,
        /// The folder the message is in.
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Append the messages of an mbox file (mboxo or mboxrd) or a Maildir folder to a folder,
    /// keeping flags and dates. The folder is created if it does not exist.
    Import {
        /// The mbox file.
        #[arg(long, value_name = "FILE", conflicts_with = "maildir", required_unless_present = "maildir")]
        mbox: Option<PathBuf>,
        /// The Maildir folder (the directory with cur/ and new/).
        #[arg(long, value_name = "DIR")]
        maildir: Option<PathBuf>,
        /// The folder to append to.
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Write the messages of a folder to a new mbox file (mboxrd; flags in the Status, X-Status
    /// and X-Keywords fields) or into a Maildir folder, keeping flags and dates.
    Export {
        /// The folder.
        #[arg(long)]
        folder: String,
        /// The mbox file to create (it must not exist).
        #[arg(long, value_name = "FILE", conflicts_with = "maildir", required_unless_present = "maildir")]
        mbox: Option<PathBuf>,
        /// The Maildir folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        maildir: Option<PathBuf>,
    },
    /// Accounts on a tidings node (over its HTTP API).
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
}

/// An account action, over the node's HTTP API (docs/web-api.md).
#[derive(Subcommand)]
enum AccountAction {
    /// Create an account on a tidings node: a verification code is mailed to --email (which
    /// becomes the account's recovery address); give it with --code, or type it when asked. The
    /// password comes from TIDINGS_PASSWORD or a prompt.
    Create {
        /// The new account: local@domain, or a local part in the node's sign-up domain.
        address: String,
        /// Where the code goes.
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// The code already received (no new one is asked for).
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
        /// The node's HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
        api: ApiUrl,
    },
}

/// A folder action.
#[derive(Subcommand)]
enum FolderAction {
    /// Create a folder.
    Create {
        /// Its name (with the server's hierarchy delimiter for subfolders, e.g. Archive/2026).
        name: String,
    },
    /// Rename a folder.
    Rename {
        /// The current name.
        name: String,
        /// The new name.
        new_name: String,
    },
    /// Delete a folder.
    Delete {
        /// Its name.
        name: String,
    },
}

/// Runs a mail action.
///
/// # Errors
/// When the servers cannot be reached, refuse, or a file cannot be read or written.
pub fn run(args: MailArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let MailArgs { connection, action } = args;
        if let Action::Account { action } = action {
            return account(&connection, action).await;
        }
        let user = connection.user.clone().ok_or_else(|| anyhow!("--user ADDRESS is required"))?;
        let client = Client { connection, user };
        match action {
            Action::Send { to, cc, bcc, subject, body, attach } => {
                client.send(to, cc, bcc, subject, body, attach).await
            }
            Action::List { folder } => client.list(&folder).await,
            Action::Read { id, folder, raw, peek } => client.read(&id, &folder, raw, peek).await,
            Action::Delete { ids, folder, expunge } => client.delete(&ids, &folder, expunge).await,
            Action::Folders => client.folders().await,
            Action::Folder { action } => client.folder(action).await,
            Action::Move { id, target, folder } => client.move_message(&id, &folder, &target).await,
            Action::Import { mbox, maildir, folder } => client.import(mbox, maildir, &folder).await,
            Action::Export { folder, mbox, maildir } => client.export(&folder, mbox, maildir).await,
            Action::Account { .. } => unreachable!("handled above"),
        }
    })
}

/// What every action needs.
struct Client {
    connection: Connection,
    user: String,
}

impl Client {
    fn options(
        &self,
        primary: &ServerAddress,
        backup: &Option<ServerAddress>,
        implicit: bool,
    ) -> anyhow::Result<ConnectOptions> {
        let c = &self.connection;
        if !(c.connect_timeout.is_finite() && c.connect_timeout > 0.0 && c.connect_timeout <= 3600.0) {
            bail!("--connect-timeout must be between 0 and 3600 seconds");
        }
        Ok(ConnectOptions {
            primary: primary.clone(),
            backup: backup.clone(),
            connect_timeout: Duration::from_secs_f64(c.connect_timeout),
            io_timeout: Duration::from_secs(IO_TIMEOUT_SECS),
            security: if implicit { Security::Implicit } else { Security::StartTls },
            tls: net::tls_config(&TlsOptions { ca_file: c.ca.clone(), insecure: c.insecure })?,
            allow_plaintext: c.allow_plaintext,
        })
    }

    /// A logged-in IMAP session.
    async fn imap(&self) -> anyhow::Result<ImapClient> {
        let c = &self.connection;
        let options = self.options(&c.imap, &c.backup_imap, c.imaps)?;
        let password = password(&self.user)?;
        let mut session = ImapClient::connect(&options).await?;
        session.login(&self.user, &password).await?;
        Ok(session)
    }

    fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
        let out = if self.connection.json { serde_json::to_string_pretty(&value)? + "\n" } else { text() };
        std::io::stdout().write_all(out.as_bytes())?;
        Ok(())
    }

    async fn send(
        &self,
        to: Vec<String>,
        cc: Vec<String>,
        bcc: Vec<String>,
        subject: String,
        body: Option<String>,
        attach: Vec<PathBuf>,
    ) -> anyhow::Result<()> {
        let from: Mailbox = self.user.parse().context("--user must be a full address to send mail")?;
        let parse = |list: Vec<String>| list.iter().map(|a| a.parse::<Mailbox>()).collect::<anyhow::Result<Vec<_>>>();
        let (to, cc, bcc) = (parse(to)?, parse(cc)?, parse(bcc)?);
        let body = match body {
            Some(body) => body,
            None => {
                if std::io::stdin().is_terminal() {
                    eprintln!("Type the message; end it with Ctrl-D on a line of its own.");
                }
                let mut bytes = Vec::new();
                std::io::stdin().lock().take(BODY_BYTES_MAX + 1).read_to_end(&mut bytes)?;
                if bytes.len() as u64 > BODY_BYTES_MAX {
                    bail!("the body on standard input is larger than {BODY_BYTES_MAX} octets");
                }
                String::from_utf8(bytes).context("the body on standard input is not UTF-8 text")?
            }
        };
        let mut attachments = Vec::new();
        for path in &attach {
            attachments.push(read_attachment(path)?);
        }
        let mut recipients: Vec<Address> = Vec::new();
        for m in to.iter().chain(&cc).chain(&bcc) {
            if !recipients.contains(&m.address) {
                recipients.push(m.address.clone());
            }
        }
        let sender = from.address.clone();
        let draft = Draft { from, to, cc, subject, body, attachments, ..Draft::default() };
        let message_id = mime::message_id(sender.domain(), tidings_core::date::now_millis());
        let message = mime::build(&draft, tidings_core::date::now_secs(), &message_id);

        let c = &self.connection;
        let options = self.options(&c.smtp, &c.backup_smtp, c.smtps)?;
        let password = password(&self.user)?;
        let mut smtp = SmtpClient::connect(&options, &client_name()).await?;
        smtp.authenticate(&self.user, &password).await?;
        let reply = smtp.send(&sender, &recipients, &message).await?;
        let server = smtp.server().clone();
        smtp.quit().await;
        let names: Vec<String> = recipients.iter().map(ToString::to_string).collect();
        self.print(
            json!({
                "message_id": message_id,
                "recipients": names,
                "size": message.len(),
                "server": server.to_string(),
                "reply": reply.text(),
            }),
            || format!("Sent {message_id} to {} via {server}: {}\n", names.join(", "), reply.text()),
        )
    }

    async fn list(&self, folder: &str) -> anyhow::Result<()> {
        let mut imap = self.imap().await?;
        let selected = imap.select(folder, true).await?;
        let messages =
            if selected.exists > 0 { imap.fetch("1:*", FetchBody::SummaryHeader).await? } else { Vec::new() };
        imap.logout().await;
        let rows: Vec<Summary> = messages.iter().map(Summary::of).collect();
        self.print(
            json!({
                "folder": folder,
                "uidvalidity": selected.uidvalidity,
                "messages": rows.iter().map(Summary::to_json).collect::<Vec<_>>(),
            }),
            || {
                let mut out = match rows.len() {
                    0 => return format!("{folder}: no messages\n"),
                    1 => format!("{folder}: 1 message\n"),
                    n => format!("{folder}: {n} messages\n"),
                };
                out.push_str(&format!(
                    "{:>6}  {:<5}  {:<16}  {:<24}  {:>7}  {}\n",
                    "UID", "FLAGS", "DATE", "FROM", "SIZE", "SUBJECT"
                ));
                for r in &rows {
                    out.push_str(&format!(
                        "{:>6}  {:<5}  {:<16}  {:<24}  {:>7}  {}\n",
                        r.uid,
                        r.flag_letters,
                        r.date_short,
                        truncate(&r.from_short, 24),
                        human_size(r.size),
                        r.subject
                    ));
                }
                out
            },
        )
    }

    async fn read(&self, id: &str, folder: &str, raw: bool, peek: bool) -> anyhow::Result<()> {
        let uid = imap::parse_uid(id)?;
        let mut imap = self.imap().await?;
        imap.select(folder, peek).await?;
        let how = if peek { FetchBody::Peek } else { FetchBody::Read };
        let fetched = imap.fetch(&uid.to_string(), how).await?;
        let message = fetched.into_iter().next().ok_or_else(|| anyhow!("no message with UID {uid} in {folder}"))?;
        // BODY[] sets \Seen; fetch the flags again so that what is shown is what is stored.
        let flags = if peek {
            message.flag_names.clone()
        } else {
            imap.fetch(&uid.to_string(), FetchBody::None).await?.pop().map(|m| m.flag_names).unwrap_or_default()
        };
        imap.logout().await;
        let octets = message.body.clone().unwrap_or_default();
        if raw {
            std::io::stdout().write_all(&octets)?;
            return Ok(());
        }
        let parsed = mail_parser::MessageParser::default().parse(&octets);
        let header = |f: fn(&mail_parser::Message<'_>) -> Option<String>| parsed.as_ref().and_then(f);
        let from = header(|m| m.from().map(addresses));
        let to = header(|m| m.to().map(addresses));
        let cc = header(|m| m.cc().map(addresses));
        let date = header(|m| m.date().map(|d| d.to_rfc822()));
        let subject = header(|m| m.subject().map(str::to_owned));
        let message_id = header(|m| m.message_id().map(|id| format!("<{id}>")));
        let text = parsed.as_ref().and_then(|m| m.body_text(0)).map(|t| t.replace("\r\n", "\n")).unwrap_or_default();
        let attachments: Vec<(String, String, usize)> = parsed
            .as_ref()
            .map(|m| {
                m.attachments()
                    .map(|a| {
                        use mail_parser::MimeHeaders;
                        let name = a.attachment_name().unwrap_or("(unnamed)").to_owned();
                        let kind = a
                            .content_type()
                            .map(|t| match t.subtype() {
                                Some(sub) => format!("{}/{}", t.ctype(), sub),
                                None => t.ctype().to_owned(),
                            })
                            .unwrap_or_else(|| "application/octet-stream".to_owned());
                        (name, kind, a.contents().len())
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.print(
            json!({
                "folder": folder,
                "uid": uid,
                "flags": flags,
                "internal_date": message.internal_date.map(rfc3339),
                "size": message.size,
                "from": from,
                "to": to,
                "cc": cc,
                "date": date,
                "subject": subject,
                "message_id": message_id,
                "text": text,
                "attachments": attachments.iter().map(|(n, t, s)| json!({"name": n, "content_type": t, "size": s})).collect::<Vec<_>>(),
            }),
            || {
                let mut out = String::new();
                for (name, value) in [("From", &from), ("To", &to), ("Cc", &cc), ("Date", &date), ("Subject", &subject)] {
                    if let Some(value) = value {
                        out.push_str(&format!("{name}: {value}\n"));
                    }
                }
                out.push_str(&format!("Flags: {}\n", if flags.is_empty() { "(none)".to_owned() } else { flags.join(" ") }));
                for (name, kind, size) in &attachments {
                    out.push_str(&format!("Attachment: {name} ({kind}, {})\n", human_size(Some(*size as u32))));
                }
                out.push('\n');
                out.push_str(&text);
                if !text.ends_with('\n') {
                    out.push('\n');
                }
                out
            },
        )
    }

    async fn delete(&self, ids: &[String], folder: &str, expunge: bool) -> anyhow::Result<()> {
        let uids = ids.iter().map(|id| imap::parse_uid(id)).collect::<anyhow::Result<Vec<u32>>>()?;
        let mut imap = self.imap().await?;
        let trash = if expunge { None } else { trash_folder(&imap.list().await?) };
        imap.select(folder, false).await?;
        existing(&mut imap, &uids, folder).await?;
        let action = match trash {
            Some(trash) if !trash.eq_ignore_ascii_case(folder) => {
                imap.move_to(&uids, &trash).await?;
                Some(trash)
            }
            _ => {
                imap.expunge(&uids).await?;
                None
            }
        };
        imap.logout().await;
        let list = uids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let plural = if uids.len() == 1 { "" } else { "s" };
        match action {
            Some(trash) => self.print(json!({"folder": folder, "uids": uids, "action": "moved", "to": trash}), || {
                format!("Moved UID{plural} {list} from {folder} to {trash}\n")
            }),
            None => self.print(json!({"folder": folder, "uids": uids, "action": "expunged"}), || {
                format!("Deleted UID{plural} {list} from {folder} for good\n")
            }),
        }
    }

    async fn folders(&self) -> anyhow::Result<()> {
        let mut imap = self.imap().await?;
        let mut folders = imap.list().await?;
        // INBOX first, the rest in the server's order.
        folders.sort_by_key(|f| !f.name.eq_ignore_ascii_case("INBOX"));
        let mut rows = Vec::new();
        for folder in folders {
            let status = if folder.is_selectable() { Some(imap.status(&folder.name).await?) } else { None };
            rows.push((folder, status));
        }
        imap.logout().await;
        self.print(
            serde_json::Value::Array(
                rows.iter()
                    .map(|(f, s)| {
                        json!({
                            "name": f.name,
                            "delimiter": f.delimiter.map(String::from),
                            "attributes": f.attributes,
                            "messages": s.and_then(|s| s.messages),
                            "unseen": s.and_then(|s| s.unseen),
                        })
                    })
                    .collect(),
            ),
            || {
                let width = rows.iter().map(|(f, _)| f.name.chars().count()).max().unwrap_or(6).max(6);
                let mut out = format!("{:<width$}  {:>8}  {:>6}  ATTRIBUTES\n", "FOLDER", "MESSAGES", "UNSEEN");
                for (f, s) in &rows {
                    let count = |n: Option<u32>| n.map_or("-".to_owned(), |n| n.to_string());
                    out.push_str(&format!(
                        "{:<width$}  {:>8}  {:>6}  {}\n",
                        f.name,
                        count(s.and_then(|s| s.messages)),
                        count(s.and_then(|s| s.unseen)),
                        f.attributes.join(" ")
                    ));
                }
                out
            },
        )
    }

    async fn folder(&self, action: FolderAction) -> anyhow::Result<()> {
        let mut imap = self.imap().await?;
        let (value, text) = match action {
            FolderAction::Create { name } => {
                imap.create(&name).await?;
                (json!({"action": "created", "folder": name}), format!("Created folder {name}\n"))
            }
            FolderAction::Rename { name, new_name } => {
                imap.rename(&name, &new_name).await?;
                (
                    json!({"action": "renamed", "folder": name, "to": new_name}),
                    format!("Renamed folder {name} to {new_name}\n"),
                )
            }
            FolderAction::Delete { name } => {
                imap.delete(&name).await?;
                (json!({"action": "deleted", "folder": name}), format!("Deleted folder {name}\n"))
            }
        };
        imap.logout().await;
        self.print(value, || text)
    }

    async fn move_message(&self, id: &str, folder: &str, target: &str) -> anyhow::Result<()> {
        let uid = imap::parse_uid(id)?;
        let mut imap = self.imap().await?;
        imap.select(folder, false).await?;
        existing(&mut imap, &[uid], folder).await?;
        imap.move_to(&[uid], target).await?;
        imap.logout().await;
        self.print(json!({"uid": uid, "from": folder, "to": target}), || {
            format!("Moved UID {uid} from {folder} to {target}\n")
        })
    }

    async fn import(&self, mbox: Option<PathBuf>, maildir: Option<PathBuf>, folder: &str) -> anyhow::Result<()> {
        // Open the source first: a missing file should not cost a login.
        let (source, mut messages): (PathBuf, Box<dyn Iterator<Item = std::io::Result<MessageRecord>>>) =
            match (mbox, maildir) {
                (Some(path), None) => {
                    let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                    (path, Box::new(MboxReader::new(BufReader::new(file))))
                }
                (None, Some(dir)) => {
                    let reader = MaildirReader::open(&dir)?;
                    (dir, Box::new(reader))
                }
                _ => bail!("give either --mbox FILE or --maildir DIR"),
            };
        let mut imap = self.imap().await?;
        let created = if imap.list().await?.iter().any(|f| same_folder(&f.name, folder)) {
            false
        } else {
            imap.create(folder).await?;
            true
        };
        let mut uids = Vec::new();
        let mut count = 0usize;
        for (n, message) in messages.by_ref().enumerate() {
            let message = message.with_context(|| format!("reading {} (message {})", source.display(), n + 1))?;
            let uid = imap
                .append(folder, &message.flags, message.internal_date, message.octets)
                .await
                .with_context(|| format!("importing message {} of {}", n + 1, source.display()))?;
            uids.extend(uid);
            count += 1;
        }
        imap.logout().await;
        self.print(
            json!({"folder": folder, "source": source, "imported": count, "uids": uids, "created": created}),
            || {
                let made = if created { " (created it)" } else { "" };
                format!("Imported {count} message{} from {} into {folder}{made}\n", plural(count), source.display())
            },
        )
    }

    async fn export(&self, folder: &str, mbox: Option<PathBuf>, maildir: Option<PathBuf>) -> anyhow::Result<()> {
        enum Sink {
            Mbox(MboxWriter<std::io::BufWriter<std::fs::File>>, PathBuf),
            Maildir(MaildirWriter, PathBuf),
        }
        let mut sink = match (mbox, maildir) {
            (Some(path), None) => {
                let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).with_context(|| {
                    format!("cannot create {} (an existing file is never overwritten)", path.display())
                })?;
                Sink::Mbox(MboxWriter::new(std::io::BufWriter::new(file)), path)
            }
            (None, Some(dir)) => Sink::Maildir(MaildirWriter::create(&dir)?, dir),
            _ => bail!("give either --mbox FILE or --maildir DIR"),
        };
        let result = async {
            let mut imap = self.imap().await?;
            let selected = imap.select(folder, true).await?;
            let sizes: Vec<(u32, u64)> = if selected.exists > 0 {
                imap.fetch("1:*", FetchBody::None)
                    .await?
                    .iter()
                    .map(|m| (m.uid, u64::from(m.size.unwrap_or(0))))
                    .collect()
            } else {
                Vec::new()
            };
            let now = tidings_core::date::now_secs();
            let mut count = 0usize;
            for batch in imap::fetch_batches(&sizes) {
                let set = imap::uid_set_text(&batch)?;
                for message in imap.fetch(&set, FetchBody::Peek).await? {
                    let record = record_of(message);
                    match &mut sink {
                        Sink::Mbox(writer, _) => writer.write_message(&record, now)?,
                        Sink::Maildir(writer, _) => {
                            writer.write_message(&record)?;
                        }
                    }
                    count += 1;
                }
            }
            imap.logout().await;
            anyhow::Ok(count)
        }
        .await;
        let (count, target, dropped) = match (result, sink) {
            (Ok(count), Sink::Mbox(writer, path)) => {
                writer.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                (count, path, Vec::new())
            }
            (Ok(count), Sink::Maildir(writer, dir)) => (count, dir, writer.finish()?),
            (Err(e), Sink::Mbox(_, path)) => {
                // Leave no half-written file behind.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            (Err(e), Sink::Maildir(..)) => return Err(e),
        };
        if !dropped.is_empty() {
            eprintln!("tidings: Maildir names at most 26 keywords per folder; not kept: {}", dropped.join(" "));
        }
        self.print(json!({"folder": folder, "target": target, "exported": count}), || {
            format!("Exported {count} message{} from {folder} to {}\n", plural(count), target.display())
        })
    }
}

/// One row of `list`.
struct Summary {
    uid: u32,
    flags: Vec<String>,
    flag_letters: String,
    internal_date: Option<i64>,
    size: Option<u32>,
    date: Option<String>,
    date_short: String,
    from: Option<String>,
    from_short: String,
    subject: String,
}

impl Summary {
    fn of(m: &Fetched) -> Summary {
        let parsed = m.body.as_deref().and_then(|h| mail_parser::MessageParser::default().parse_headers(h));
        let date = parsed.as_ref().and_then(|p| p.date().cloned());
        let from = parsed.as_ref().and_then(|p| p.from().map(addresses));
        let from_short = parsed
            .as_ref()
            .and_then(|p| p.from().and_then(|a| a.first()).map(|a| a.name().or(a.address()).unwrap_or("").to_owned()))
            .unwrap_or_default();
        let date_short = match &date {
            Some(d) => format!("{:04}-{:02}-{:02} {:02}:{:02}", d.year, d.month, d.day, d.hour, d.minute),
            None => m
                .internal_date
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
        };
        let letters = [
            (!m.flags.has(SystemFlag::Seen), 'N'),
            (m.flags.has(SystemFlag::Answered), 'A'),
            (m.flags.has(SystemFlag::Flagged), 'F'),
            (m.flags.has(SystemFlag::Deleted), 'D'),
            (m.flags.has(SystemFlag::Draft), 'T'),
        ];
        Summary {
            uid: m.uid,
            flags: m.flag_names.clone(),
            flag_letters: letters.iter().map(|(on, c)| if *on { *c } else { '-' }).collect(),
            internal_date: m.internal_date,
            size: m.size,
            date: date.map(|d| d.to_rfc3339()),
            date_short,
            from,
            from_short,
            subject: parsed.as_ref().and_then(|p| p.subject().map(str::to_owned)).unwrap_or_default(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "uid": self.uid,
            "flags": self.flags,
            "date": self.date,
            "internal_date": self.internal_date.map(rfc3339),
            "from": self.from,
            "subject": self.subject,
            "size": self.size,
        })
    }
}

/// The message as an export record: octets, flags, internal date, and the envelope sender from its
/// Return-Path field for the mbox `From ` line.
fn record_of(message: Fetched) -> MessageRecord {
    let octets = message.body.unwrap_or_default();
    let envelope_sender = tidings_client::mbox::envelope_sender(&octets);
    MessageRecord { octets, flags: message.flags, internal_date: message.internal_date, envelope_sender }
}

/// Fails unless every UID exists in the selected folder.
async fn existing(imap: &mut ImapClient, uids: &[u32], folder: &str) -> anyhow::Result<()> {
    let found: Vec<u32> =
        imap.fetch(&imap::uid_set_text(uids)?, FetchBody::None).await?.iter().map(|m| m.uid).collect();
    let missing: Vec<String> = uids.iter().filter(|u| !found.contains(u)).map(ToString::to_string).collect();
    if !missing.is_empty() {
        bail!("no message with UID {} in {folder}", missing.join(", "));
    }
    Ok(())
}

/// The account's Trash: the folder with the `\Trash` special use (RFC 6154), else one named Trash.
fn trash_folder(folders: &[imap::Folder]) -> Option<String> {
    folders
        .iter()
        .find(|f| f.has_attribute("\\Trash"))
        .or_else(|| folders.iter().find(|f| f.name.eq_ignore_ascii_case("Trash") && f.is_selectable()))
        .map(|f| f.name.clone())
}

fn same_folder(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

fn read_attachment(path: &Path) -> anyhow::Result<Attachment> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open attachment {}", path.display()))?;
    let mut data = Vec::new();
    file.take(ATTACHMENT_BYTES_MAX + 1).read_to_end(&mut data)?;
    if data.len() as u64 > ATTACHMENT_BYTES_MAX {
        bail!("{} is larger than {ATTACHMENT_BYTES_MAX} octets", path.display());
    }
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
    let content_type = mime::content_type_for(&filename).to_owned();
    Ok(Attachment { filename, content_type, data })
}

/// The password: TIDINGS_PASSWORD, else a prompt on the terminal.
fn password(user: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TIDINGS_PASSWORD") {
        return Ok(p);
    }
    rpassword::prompt_password(format!("Password for {user}: "))
        .context("cannot read a password from the terminal (set TIDINGS_PASSWORD)")
}

/// `tidings mail account …`.
async fn account(connection: &Connection, action: AccountAction) -> anyhow::Result<()> {
    let AccountAction::Create { address, email, code, api } = action;
    let tls = net::tls_config(&TlsOptions { ca_file: connection.ca.clone(), insecure: connection.insecure })?;
    let host = &api.server.host;
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !api.tls && !loopback && !connection.allow_plaintext {
        bail!("{api} is not https: refusing to send a password in cleartext (--allow-plaintext to do it anyway)");
    }
    let client = ApiClient::new(api, Some(tls));
    let password = new_password(&address)?;
    let code = match code {
        Some(code) => code,
        None => {
            let answer = client.post_json("/api/v1/accounts/codes", &json!({ "email": email })).await?;
            if !answer.is_success() {
                bail!("cannot send a code to {email}: {}", answer.error_text());
            }
            let sent_to = answer.body["sent_to"].as_str().unwrap_or(&email).to_owned();
            eprintln!("A verification code was sent to {sent_to}. Type it here:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the code from standard input")?;
            line.trim().to_owned()
        }
    };
    let request = json!({ "address": address, "password": password, "email": email, "code": code });
    let answer = client.post_json("/api/v1/accounts", &request).await?;
    if !answer.is_success() {
        bail!("cannot create {address}: {}", answer.error_text());
    }
    let created = answer.body["address"].as_str().unwrap_or(&address).to_owned();
    let out = if connection.json {
        serde_json::to_string_pretty(&json!({ "address": created, "recovery": email }))? + "\n"
    } else {
        format!("created {created}\n")
    };
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

/// A new account's password: TIDINGS_PASSWORD, or a prompt asked twice.
fn new_password(user: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TIDINGS_PASSWORD") {
        return Ok(p);
    }
    let first = rpassword::prompt_password(format!("New password for {user}: "))
        .context("cannot read a password from the terminal (set TIDINGS_PASSWORD)")?;
    if rpassword::prompt_password("Again: ")? != first {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// The name this host gives in EHLO: its host name when that is a valid domain, else `localhost`.
fn client_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| tidings_core::is_valid_domain(h))
        .unwrap_or_else(|| "localhost".to_owned())
}

fn addresses(list: &mail_parser::Address<'_>) -> String {
    list.iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (None, Some(address)) => address.to_owned(),
            (Some(name), None) => name.to_owned(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.to_rfc3339()).unwrap_or_default()
}

fn human_size(size: Option<u32>) -> String {
    match size {
        None => "-".to_owned(),
        Some(n) if n < 1024 => format!("{n} B"),
        Some(n) if n < 1024 * 1024 => format!("{:.1} KiB", f64::from(n) / 1024.0),
        Some(n) => format!("{:.1} MiB", f64::from(n) / (1024.0 * 1024.0)),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trash_is_found_by_special_use_then_by_name() {
        let folder = |name: &str, attrs: &[&str]| imap::Folder {
            name: name.into(),
            delimiter: Some('/'),
            attributes: attrs.iter().map(|a| a.to_string()).collect(),
        };
        assert_eq!(
            trash_folder(&[folder("INBOX", &[]), folder("Papierkorb", &["\\Trash"])]).as_deref(),
            Some("Papierkorb")
        );
        assert_eq!(trash_folder(&[folder("INBOX", &[]), folder("trash", &[])]).as_deref(), Some("trash"));
        assert_eq!(trash_folder(&[folder("INBOX", &[])]), None);
    }

    #[test]
    fn sizes_and_columns_read_well() {
        assert_eq!(human_size(Some(512)), "512 B");
        assert_eq!(human_size(Some(2048)), "2.0 KiB");
        assert_eq!(truncate("a very long sender name here", 10), "a very lo…");
    }
}
