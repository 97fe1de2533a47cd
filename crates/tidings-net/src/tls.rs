//! TLS server configuration: the configured certificate, or a self-signed one generated on first
//! start and kept in the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tracing::info;

/// `[tls]`: where the certificate chain and private key come from.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Empty (the default): a self-signed certificate for the
    /// server's hostname is generated into `<data>/tls/` on first start and reused after.
    pub certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `certificate`. Required when it is set.
    pub private_key: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A PEM file holds no usable certificate or key.
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    /// Only one of certificate and private_key is configured.
    #[error("[tls] certificate and private_key must be set together")]
    Incomplete,
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key.
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// TLS 1.3 session tickets sent after a handshake: none (rustls sends 2 by default).
///
/// A TLS 1.3 server can only send its tickets once the client's Finished is in, which is when the
/// client has just finished its handshake and starts writing its first request. A client that
/// reads and writes one connection from two threads at once (Python's `ssl` module under the
/// `websockets` sync client and other threaded clients) then handles the tickets in its reading
/// thread while its writing thread sends, and OpenSSL's connection state is not safe for that: now
/// and then the first write never leaves the client, or fails, and both sides wait until a
/// timeout. Application data does not take that path; tickets (post-handshake handshake messages)
/// do. Without tickets a returning client makes a full handshake (one more signature) instead of
/// resuming; TLS 1.2 clients can still resume by session id.
const TLS13_TICKETS: usize = 0;

/// Builds the rustls server configuration from `config`, generating
/// `<data_dir>/tls/{cert,key}.pem` for `hostname` (plus `localhost`, 127.0.0.1 and ::1) when no
/// certificate is configured and none was generated before.
///
/// # Errors
/// A [`TlsError`] saying which file is missing or unusable.
pub fn server_config(config: &TlsConfig, data_dir: &Path, hostname: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (&config.certificate, &config.private_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => generate_if_missing(data_dir, hostname)?,
        _ => return Err(TlsError::Incomplete),
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| TlsError::Pem(cert_path.clone(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(cert_path.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(cert_path, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem(key_path.clone(), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.send_tls13_tickets = TLS13_TICKETS;
    Ok(Arc::new(config))
}

fn generate_if_missing(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).map_err(|e| TlsError::Io(dir.clone(), e))?;
    let mut names = vec![hostname.to_owned(), "localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.dedup();
    let generated = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, generated.cert.pem()).map_err(|e| TlsError::Io(cert_path.clone(), e))?;
    info!(path = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| TlsError::Io(path.to_owned(), e))?;
    file.write_all(bytes).map_err(|e| TlsError::Io(path.to_owned(), e))
}
