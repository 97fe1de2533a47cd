//! Connections: server addresses, failover from a primary to a backup, TLS (implicit or after
//! STARTTLS) and bounded line reading, shared by the IMAP and SMTP clients.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Longest line a server may send before a reply or response is refused, in octets (SMTP reply
/// lines are at most 512 octets, RFC 5321 §4.5.3.1.5; IMAP lines before a literal are short too).
pub const LINE_BYTES_MAX: usize = 16 * 1024;

/// A server's address as the user gave it: `HOST:PORT`, with `HOST` a name, an IPv4 address or a
/// bracketed IPv6 address. The host is kept for TLS certificate verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddress {
    /// Host name or IP address (without brackets), as given.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::str::FromStr for ServerAddress {
    type Err = anyhow::Error;

    /// Parses `HOST:PORT` or `[IPV6]:PORT`.
    ///
    /// # Errors
    /// When the port is missing or not a number, or the host is empty.
    fn from_str(text: &str) -> anyhow::Result<ServerAddress> {
        let (host, port) =
            text.rsplit_once(':').ok_or_else(|| anyhow!("{text:?} is not HOST:PORT (for example 127.0.0.1:1143)"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            bail!("{text:?} has no host (expected HOST:PORT)");
        }
        let port = port.parse().map_err(|_| anyhow!("{text:?}: {port:?} is not a port number"))?;
        Ok(ServerAddress { host: host.to_owned(), port })
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How a connection gets TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP, upgraded with STARTTLS when the server offers it (RFC 3207, RFC 9051 §6.2.1).
    StartTls,
    /// TLS from the first octet (RFC 8314: IMAPS, SMTPS/submissions).
    Implicit,
}

/// Where and how to connect: the primary and optional backup server, and the security policy.
#[derive(Clone)]
pub struct ConnectOptions {
    /// The server tried first.
    pub primary: ServerAddress,
    /// The server tried when the primary does not answer within `connect_timeout`.
    pub backup: Option<ServerAddress>,
    /// How long a server has to accept the connection and send its greeting.
    pub connect_timeout: Duration,
    /// How long any later reply may take.
    pub io_timeout: Duration,
    /// Implicit TLS or STARTTLS.
    pub security: Security,
    /// TLS settings (trust roots, or no verification).
    pub tls: Arc<ClientConfig>,
    /// Send a password over a connection without TLS to a non-loopback address.
    pub allow_plaintext: bool,
}

/// Runs `attempt` against the primary address, then against the backup when the primary did not
/// succeed within `connect_timeout` (refused, unreachable, closed, silent or malformed greeting).
/// The timeout bounds each attempt as a whole (TCP connect, implicit TLS handshake, greeting).
///
/// # Errors
/// When every address failed: the error names each address and why it failed.
pub async fn with_failover<T, F, Fut>(options: &ConnectOptions, attempt: F) -> anyhow::Result<T>
where
    F: Fn(ServerAddress) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut failures = Vec::new();
    for address in std::iter::once(&options.primary).chain(options.backup.as_ref()) {
        match tokio::time::timeout(options.connect_timeout, attempt(address.clone())).await {
            Ok(Ok(connected)) => return Ok(connected),
            Ok(Err(e)) => failures.push(format!("{address}: {e:#}")),
            Err(_) => failures.push(format!(
                "{address}: no answer within {} s (--connect-timeout)",
                options.connect_timeout.as_secs_f64()
            )),
        }
    }
    bail!("cannot reach the server: {}", failures.join("; "))
}

/// Opens a TCP connection to `address`, trying each resolved address in turn.
///
/// # Errors
/// When the name does not resolve or no address accepts.
pub async fn tcp_connect(address: &ServerAddress) -> anyhow::Result<TcpStream> {
    // The caller (failover) names the address in its error.
    let stream = TcpStream::connect((address.host.as_str(), address.port)).await.context("cannot connect")?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Performs the TLS handshake on `stream`, verifying the certificate for `address.host`.
///
/// # Errors
/// When the host is not a valid TLS server name or the handshake (certificate) fails.
pub async fn tls_handshake(
    tls: &Arc<ClientConfig>,
    address: &ServerAddress,
    stream: TcpStream,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(address.host.clone())
        .with_context(|| format!("{:?} is not a valid TLS server name", address.host))?;
    TlsConnector::from(Arc::clone(tls)).connect(name, stream).await.with_context(|| {
        format!("TLS handshake with {address} failed (use --ca FILE for a private CA, --insecure for testing only)")
    })
}

/// Refuses to send a password without TLS to anything but a loopback address unless allowed
/// (RFC 8314 §5.1 asks clients to protect credentials).
///
/// # Errors
/// When `tls` is false, `peer` is not loopback and `allow_plaintext` is false.
pub fn check_plaintext_password(peer: SocketAddr, tls: bool, allow_plaintext: bool) -> anyhow::Result<()> {
    if tls || allow_plaintext || peer.ip().is_loopback() {
        return Ok(());
    }
    bail!(
        "{peer} offers no TLS (no STARTTLS); refusing to send the password in cleartext to a non-loopback address \
         (use --imaps/--smtps for implicit TLS, or --allow-plaintext to send it anyway)"
    )
}

/// Where TLS trust comes from.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file of CA certificates to trust instead of the system's roots (e.g. a tidings node's
    /// generated `tls/cert.pem`).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. For testing only: anyone on the path can read the password.
    pub insecure: bool,
}

/// Builds the rustls client configuration: the system's trusted roots, or only the certificates
/// of `ca_file`, or (with `insecure`) no certificate verification at all.
///
/// # Errors
/// When the CA file cannot be read or holds no certificate, or the system has no usable root.
pub fn tls_config(options: &TlsOptions) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
    let config = if options.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider))).with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if let Some(path) = &options.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read CA file {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            roots.add_parsable_certificates(certs);
        } else {
            // Roots that fail to parse are skipped: one odd file in the system store must not
            // make every connection fail.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// A verifier that accepts every certificate but still checks the handshake signatures
/// (`--insecure`).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TCP connection, plain or with TLS.
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// Whether the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The server's address.
    ///
    /// # Errors
    /// When the socket is no longer connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Transport::Plain(s) => s.peer_addr(),
            Transport::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Reads one line (through its LF) of at most [`LINE_BYTES_MAX`] octets.
///
/// # Errors
/// When the peer closes the connection before a full line, or the line is too long.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> anyhow::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if line.is_empty() {
                bail!("the server closed the connection");
            }
            bail!("the server closed the connection in the middle of a line");
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > LINE_BYTES_MAX {
            bail!("the server sent a line longer than {LINE_BYTES_MAX} octets");
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_parse_with_names_ipv4_and_bracketed_ipv6() {
        let a: ServerAddress = "mail.example.org:993".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("mail.example.org", 993));
        let b: ServerAddress = "[::1]:1143".parse().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 1143));
        assert_eq!(b.to_string(), "[::1]:1143");
        for bad in ["example.org", ":25", "host:port", "host:70000"] {
            assert!(bad.parse::<ServerAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_go_in_cleartext_only_to_loopback_unless_allowed() {
        let remote: SocketAddr = "192.0.2.1:143".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:143".parse().unwrap();
        assert!(check_plaintext_password(remote, false, false).is_err());
        assert!(check_plaintext_password(remote, true, false).is_ok());
        assert!(check_plaintext_password(remote, false, true).is_ok());
        assert!(check_plaintext_password(local, false, false).is_ok());
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let long = vec![b'a'; LINE_BYTES_MAX + 1];
        let mut reader = tokio::io::BufReader::new(&long[..]);
        assert!(read_line(&mut reader).await.is_err());
        let mut reader = tokio::io::BufReader::new(&b"one\r\ntwo\r\n"[..]);
        assert_eq!(read_line(&mut reader).await.unwrap(), b"one\r\n");
        assert_eq!(read_line(&mut reader).await.unwrap(), b"two\r\n");
        assert!(read_line(&mut reader).await.is_err());
    }
}
