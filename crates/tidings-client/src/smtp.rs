//! A small SMTP submission client (RFC 5321, RFC 6409): EHLO, STARTTLS (RFC 3207), AUTH PLAIN or
//! LOGIN (RFC 4954, RFC 4616), then MAIL, RCPT and DATA with dot-stuffing (RFC 5321 §4.5.2).
//!
//! The pure parts (reply parsing, EHLO keywords, dot-stuffing) are functions the unit tests drive
//! directly; [`SmtpClient`] moves the bytes.

use std::net::SocketAddr;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tidings_core::Address;
use tokio::io::{AsyncWriteExt, BufReader};

use crate::net::{self, ConnectOptions, Security, ServerAddress, Transport};

/// Most lines one reply may have before the client gives up on the server.
pub const REPLY_LINES_MAX: usize = 128;

/// One SMTP reply: its code and the text of each line (RFC 5321 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The text after the code of each line, in order.
    pub lines: Vec<String>,
}

impl Reply {
    /// Whether the code is 2yz.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as the server wrote it, lines joined by a space.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }
}

/// One reply line split into code, whether more lines follow (`250-`), and text.
///
/// # Errors
/// When the line does not start with three digits followed by space, `-` or the line end.
pub fn parse_reply_line(line: &str) -> anyhow::Result<(u16, bool, &str)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&bytes[0]) {
        bail!("malformed SMTP reply line {line:?}");
    }
    let code = line[..3].parse().map_err(|_| anyhow!("malformed SMTP reply line {line:?}"))?;
    match bytes.get(3) {
        None => Ok((code, false, "")),
        Some(b' ') => Ok((code, false, &line[4..])),
        Some(b'-') => Ok((code, true, &line[4..])),
        Some(_) => bail!("malformed SMTP reply line {line:?}"),
    }
}

/// The service extensions an EHLO reply announces (RFC 5321 §4.1.1.1): keyword and parameters per
/// line after the first, keywords in upper case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    entries: Vec<(String, Vec<String>)>,
}

impl Extensions {
    /// Extensions from the EHLO reply lines (the first line is the greeting and is skipped).
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let entries = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| {
                let mut words = line.split_ascii_whitespace();
                let keyword = words.next()?.to_ascii_uppercase();
                Some((keyword, words.map(str::to_owned).collect()))
            })
            .collect();
        Extensions { entries }
    }

    /// Whether `keyword` (case-insensitive) was announced.
    pub fn has(&self, keyword: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.eq_ignore_ascii_case(keyword))
    }

    /// The parameters of `keyword`, if it was announced.
    pub fn params(&self, keyword: &str) -> Option<&[String]> {
        self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(keyword)).map(|(_, p)| p.as_slice())
    }

    /// Whether AUTH lists `mechanism`.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.params("AUTH").is_some_and(|m| m.iter().any(|x| x.eq_ignore_ascii_case(mechanism)))
    }
}

/// The DATA payload for `message`: every line that begins with `.` gets another `.` (RFC 5321
/// §4.5.2), a missing final CRLF is added, and the end-of-data line `.` CRLF closes it.
///
/// `message` must have CRLF line ends only; a bare LF is sent as it is, and never ends the data.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' && out.ends_with(b"\r\n");
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The AUTH PLAIN initial response for `user` and `password`, base64 (RFC 4616 §2: no authzid).
pub fn auth_plain(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

/// An SMTP session with a submission server, after EHLO (and STARTTLS when offered).
pub struct SmtpClient {
    /// The connection with buffered input.
    stream: BufReader<Transport>,
    /// What the last EHLO announced.
    extensions: Extensions,
    /// The server actually connected to (primary or backup).
    server: ServerAddress,
    /// The peer address, for the cleartext password check.
    peer: SocketAddr,
    /// The per-reply timeout.
    io_timeout: std::time::Duration,
    /// Send AUTH without TLS to non-loopback peers.
    allow_plaintext: bool,
}

impl SmtpClient {
    /// Connects to the primary server (or the backup when the primary does not answer), reads the
    /// 220 greeting, says EHLO, and upgrades with STARTTLS when the server offers it (unless the
    /// connection already has implicit TLS).
    ///
    /// # Errors
    /// When no server answers with 220, or EHLO or the TLS upgrade fails.
    pub async fn connect(options: &ConnectOptions, client_name: &str) -> anyhow::Result<SmtpClient> {
        let (stream, server) = net::with_failover(options, |address| async move {
            let tcp = net::tcp_connect(&address).await?;
            let transport = match options.security {
                Security::Implicit => Transport::Tls(Box::new(net::tls_handshake(&options.tls, &address, tcp).await?)),
                Security::StartTls => Transport::Plain(tcp),
            };
            let mut stream = BufReader::new(transport);
            let greeting = read_reply(&mut stream).await?;
            if greeting.code != 220 {
                bail!("the server greeted with {}", greeting.text());
            }
            Ok((stream, address))
        })
        .await?;
        let peer = stream.get_ref().peer_addr()?;
        let mut client = SmtpClient {
            stream,
            extensions: Extensions::default(),
            server,
            peer,
            io_timeout: options.io_timeout,
            allow_plaintext: options.allow_plaintext,
        };
        client.ehlo(client_name).await?;
        if !client.stream.get_ref().is_tls() && client.extensions.has("STARTTLS") {
            client.expect("STARTTLS", 220).await?;
            // Anything the server sent after its 220 would be read as if it came over TLS: a
            // STARTTLS command injection (RFC 3207 §6, CVE-2011-0411). Refuse it.
            if !client.stream.buffer().is_empty() {
                bail!("the server sent data after its reply to STARTTLS; refusing to continue");
            }
            let Transport::Plain(tcp) = client.stream.into_inner() else { unreachable!("checked is_tls above") };
            let tls = net::tls_handshake(&options.tls, &client.server, tcp).await?;
            client.stream = BufReader::new(Transport::Tls(Box::new(tls)));
            // RFC 3207 §4.2: forget what was learnt before TLS and ask again.
            client.ehlo(client_name).await?;
        }
        Ok(client)
    }

    /// The server this session is connected to.
    pub fn server(&self) -> &ServerAddress {
        &self.server
    }

    /// Whether the session is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.get_ref().is_tls()
    }

    /// The extensions announced by the last EHLO.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Authenticates with AUTH PLAIN, or LOGIN when PLAIN is not offered.
    ///
    /// # Errors
    /// When the connection has no TLS to a non-loopback address (unless plaintext is allowed),
    /// the server offers neither mechanism, or refuses the credentials.
    pub async fn authenticate(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        net::check_plaintext_password(self.peer, self.is_tls(), self.allow_plaintext)?;
        let reply = if self.extensions.has_auth("PLAIN") {
            self.command_secret(&format!("AUTH PLAIN {}", auth_plain(user, password))).await?
        } else if self.extensions.has_auth("LOGIN") {
            let first = self.command("AUTH LOGIN").await?;
            if first.code != 334 {
                bail!("AUTH LOGIN refused: {}", first.text());
            }
            let second = self.command_secret(&BASE64.encode(user)).await?;
            if second.code != 334 {
                bail!("AUTH LOGIN refused the user name: {}", second.text());
            }
            self.command_secret(&BASE64.encode(password)).await?
        } else if self.extensions.has("AUTH") {
            bail!("{} offers no AUTH mechanism this client has (PLAIN, LOGIN)", self.server);
        } else {
            bail!("{} does not offer AUTH (is this the submission port?)", self.server);
        };
        if reply.code != 235 {
            bail!("authentication as {user} failed: {}", reply.text());
        }
        Ok(())
    }

    /// Sends one message: MAIL FROM (with SIZE when offered), RCPT TO for each recipient, DATA.
    /// Returns the server's reply to the end of data (250: accepted).
    ///
    /// # Errors
    /// When the server refuses the sender, every recipient, or the message. A refused recipient
    /// among others is an error too: the message is not sent to anyone (RSET).
    pub async fn send(&mut self, from: &Address, recipients: &[Address], message: &[u8]) -> anyhow::Result<Reply> {
        self.send_with_reverse_path(Some(from), recipients, message).await
    }

    /// [`SmtpClient::send`] with an optional reverse-path: `None` sends `MAIL FROM:<>`, the null
    /// reverse-path of automated mail that must never be answered with a bounce (RFC 5321 §4.5.5).
    ///
    /// # Errors
    /// As [`SmtpClient::send`].
    pub async fn send_with_reverse_path(
        &mut self,
        from: Option<&Address>,
        recipients: &[Address],
        message: &[u8],
    ) -> anyhow::Result<Reply> {
        if recipients.is_empty() {
            bail!("no recipients");
        }
        let size = if self.extensions.has("SIZE") { format!(" SIZE={}", message.len()) } else { String::new() };
        let utf8 = recipients.iter().chain(from).any(Address::is_utf8);
        if utf8 && !self.extensions.has("SMTPUTF8") {
            bail!("{} does not accept internationalized addresses (no SMTPUTF8)", self.server);
        }
        let smtputf8 = if utf8 { " SMTPUTF8" } else { "" };
        let from = from.map(Address::to_string).unwrap_or_default();
        self.expect(&format!("MAIL FROM:<{from}>{size}{smtputf8}"), 250).await?;
        for rcpt in recipients {
            let reply = self.command(&format!("RCPT TO:<{rcpt}>")).await?;
            if !reply.is_positive() {
                let _ = self.command("RSET").await;
                bail!("recipient {rcpt} refused: {}", reply.text());
            }
        }
        self.expect("DATA", 354).await?;
        let data = dot_stuff(message);
        let writer = self.stream.get_mut();
        tokio::time::timeout(self.io_timeout, async {
            writer.write_all(&data).await?;
            writer.flush().await
        })
        .await
        .map_err(|_| anyhow!("timed out sending the message"))??;
        let reply = self.reply().await?;
        if reply.code != 250 {
            bail!("message refused: {}", reply.text());
        }
        Ok(reply)
    }

    /// Ends the session politely (QUIT); errors are ignored: the message is already accepted.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    async fn ehlo(&mut self, client_name: &str) -> anyhow::Result<()> {
        let reply = self.command(&format!("EHLO {client_name}")).await?;
        if reply.code != 250 {
            bail!("EHLO refused: {}", reply.text());
        }
        self.extensions = Extensions::from_ehlo(&reply);
        Ok(())
    }

    async fn expect(&mut self, line: &str, code: u16) -> anyhow::Result<Reply> {
        let reply = self.command(line).await?;
        if reply.code != code {
            let verb = line.split([' ', ':']).next().unwrap_or(line);
            bail!("{verb} refused: {}", reply.text());
        }
        Ok(reply)
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<Reply> {
        self.write_line(line).await.with_context(|| format!("sending {}", line.split(' ').next().unwrap_or("")))?;
        self.reply().await
    }

    /// Like `command`, for lines that carry credentials (never quoted in errors).
    async fn command_secret(&mut self, line: &str) -> anyhow::Result<Reply> {
        self.write_line(line).await.context("sending credentials")?;
        self.reply().await
    }

    async fn write_line(&mut self, line: &str) -> anyhow::Result<()> {
        let writer = self.stream.get_mut();
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        tokio::time::timeout(self.io_timeout, async {
            writer.write_all(&bytes).await?;
            writer.flush().await
        })
        .await
        .map_err(|_| anyhow!("timed out writing to {}", self.server))??;
        Ok(())
    }

    async fn reply(&mut self) -> anyhow::Result<Reply> {
        tokio::time::timeout(self.io_timeout, read_reply(&mut self.stream))
            .await
            .map_err(|_| anyhow!("{} did not reply within {} s", self.server, self.io_timeout.as_secs()))?
    }
}

/// Reads one reply, all its lines.
async fn read_reply(stream: &mut BufReader<Transport>) -> anyhow::Result<Reply> {
    let mut lines = Vec::new();
    loop {
        let raw = net::read_line(stream).await?;
        let text = String::from_utf8_lossy(&raw);
        let (code, more, rest) = parse_reply_line(&text)?;
        lines.push(rest.to_owned());
        if !more {
            return Ok(Reply { code, lines });
        }
        if lines.len() >= REPLY_LINES_MAX {
            bail!("the server sent a reply of more than {REPLY_LINES_MAX} lines");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_starting_with_a_dot_gets_a_second_dot() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..c\r\n.\r\nd\r\n"), b"a\r\n..b\r\n...c\r\n..\r\nd\r\n.\r\n");
    }

    #[test]
    fn a_dot_on_the_first_line_is_stuffed() {
        assert_eq!(dot_stuff(b".hidden\r\n"), b"..hidden\r\n.\r\n");
    }

    #[test]
    fn a_dot_after_a_bare_lf_is_not_a_line_start() {
        // Only CRLF ends a line in SMTP; a bare LF followed by "." can never end the data.
        assert_eq!(dot_stuff(b"a\n.\r\n"), b"a\n.\r\n.\r\n");
    }

    #[test]
    fn a_missing_final_crlf_is_added_before_the_end_of_data() {
        assert_eq!(dot_stuff(b"no end"), b"no end\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"x\r\n."), b"x\r\n..\r\n.\r\n");
    }

    #[test]
    fn stuffed_data_never_contains_the_end_of_data_sequence_early() {
        let message = b"x\r\n.\r\n.\r\n..\r\n";
        let data = dot_stuff(message);
        let end = data.windows(5).position(|w| w == b"\r\n.\r\n").unwrap();
        assert_eq!(end + 5, data.len());
    }

    #[test]
    fn reply_lines_split_into_code_continuation_and_text() {
        assert_eq!(parse_reply_line("250-mx.example greets you\r\n").unwrap(), (250, true, "mx.example greets you"));
        assert_eq!(parse_reply_line("250 OK\r\n").unwrap(), (250, false, "OK"));
        assert_eq!(parse_reply_line("354\r\n").unwrap(), (354, false, ""));
        for bad in ["25", "abc OK", "250_OK", "650 nope", ""] {
            assert!(parse_reply_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ehlo_keywords_are_case_insensitive_with_parameters() {
        let reply = Reply {
            code: 250,
            lines: vec!["mx.example".into(), "size 1000".into(), "AUTH PLAIN login".into(), "STARTTLS".into()],
        };
        let ext = Extensions::from_ehlo(&reply);
        assert!(ext.has("SIZE") && ext.has("starttls") && !ext.has("mx.example"));
        assert_eq!(ext.params("SIZE").unwrap(), ["1000"]);
        assert!(ext.has_auth("LOGIN") && ext.has_auth("plain") && !ext.has_auth("CRAM-MD5"));
    }

    #[test]
    fn auth_plain_has_an_empty_authzid() {
        assert_eq!(BASE64.decode(auth_plain("ta@example.org", "pw")).unwrap(), b"\0ta@example.org\0pw");
    }

    /// A one-connection SMTP server on loopback that answers each command line with
    /// `respond(line)` (message data up to the lone dot with 250) and returns every octet the
    /// client sent.
    async fn fake_server(respond: fn(&str) -> &'static str) -> (ConnectOptions, tokio::task::JoinHandle<Vec<u8>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = tokio::io::BufReader::new(stream);
            let mut transcript = Vec::new();
            stream.get_mut().write_all(b"220 fake.example ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = Vec::new();
                if stream.read_until(b'\n', &mut line).await.unwrap() == 0 {
                    break;
                }
                transcript.extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line).into_owned();
                let reply = if in_data {
                    if text != ".\r\n" {
                        continue;
                    }
                    "250 2.0.0 queued\r\n"
                } else {
                    respond(&text)
                };
                in_data = text.starts_with("DATA") && reply.starts_with("354");
                stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                if text.starts_with("QUIT") {
                    break;
                }
            }
            transcript
        });
        let options = ConnectOptions {
            primary: ServerAddress { host: "127.0.0.1".into(), port: address.port() },
            backup: None,
            connect_timeout: std::time::Duration::from_secs(5),
            io_timeout: std::time::Duration::from_secs(5),
            security: Security::StartTls,
            tls: net::tls_config(&net::TlsOptions { ca_file: None, insecure: true }).unwrap(),
            allow_plaintext: false,
        };
        (options, server)
    }

    fn plain_server(line: &str) -> &'static str {
        match line.trim_end().split([' ', ':']).next().unwrap_or("") {
            "EHLO" => "250-fake.example\r\n250-SIZE 1000000\r\n250 AUTH PLAIN LOGIN\r\n",
            "AUTH" => "235 2.7.0 ok\r\n",
            "MAIL" => "250 2.1.0 ok\r\n",
            "RCPT" if line.contains("nobody@") => "550 5.1.1 no such user\r\n",
            "RCPT" => "250 2.1.5 ok\r\n",
            "DATA" => "354 go ahead\r\n",
            "RSET" => "250 2.0.0 reset\r\n",
            "QUIT" => "221 2.0.0 bye\r\n",
            _ => "500 5.5.1 what\r\n",
        }
    }

    #[tokio::test]
    async fn a_message_goes_over_the_wire_dot_stuffed_after_auth_and_envelope() {
        let (options, server) = fake_server(plain_server).await;
        let mut client = SmtpClient::connect(&options, "client.example").await.unwrap();
        assert!(!client.is_tls(), "no STARTTLS offered: the session stays plain on loopback");
        client.authenticate("ann@example.org", "pw").await.unwrap();
        let from: Address = "ann@example.org".parse().unwrap();
        let to: Address = "bob@example.org".parse().unwrap();
        let reply = client.send(&from, &[to], b"Subject: x\r\n\r\n.hidden\r\nend").await.unwrap();
        assert_eq!(reply.code, 250);
        client.quit().await;
        let transcript = String::from_utf8(server.await.unwrap()).unwrap();
        let expected = format!(
            "EHLO client.example\r\nAUTH PLAIN {}\r\nMAIL FROM:<ann@example.org> SIZE=26\r\n\
             RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: x\r\n\r\n..hidden\r\nend\r\n.\r\nQUIT\r\n",
            auth_plain("ann@example.org", "pw")
        );
        assert_eq!(transcript, expected);
    }

    #[tokio::test]
    async fn a_refused_recipient_resets_the_transaction_and_nothing_is_sent() {
        let (options, server) = fake_server(plain_server).await;
        let mut client = SmtpClient::connect(&options, "client.example").await.unwrap();
        let from: Address = "ann@example.org".parse().unwrap();
        let rcpts: Vec<Address> = vec!["bob@example.org".parse().unwrap(), "nobody@example.org".parse().unwrap()];
        let err = client.send(&from, &rcpts, b"Subject: x\r\n\r\n").await.unwrap_err();
        assert!(err.to_string().contains("recipient nobody@example.org refused: 550 5.1.1"), "{err}");
        client.quit().await;
        let transcript = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(transcript.contains("RCPT TO:<nobody@example.org>\r\nRSET\r\nQUIT\r\n"), "{transcript}");
        assert!(!transcript.contains("DATA"));
    }

    #[tokio::test]
    async fn data_after_the_reply_to_starttls_is_refused_as_an_injection() {
        let (options, server) = fake_server(|line| match line.trim_end().split(' ').next().unwrap_or("") {
            "EHLO" => "250-fake.example\r\n250 STARTTLS\r\n",
            "STARTTLS" => "220 2.0.0 go ahead\r\n250 injected\r\n",
            _ => "500 what\r\n",
        })
        .await;
        let err = SmtpClient::connect(&options, "client.example").await.err().unwrap();
        assert!(err.to_string().contains("sent data after its reply to STARTTLS"), "{err}");
        drop(server);
    }
}
