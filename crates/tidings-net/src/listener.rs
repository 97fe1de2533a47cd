//! Accepting connections within limits: in total and per client IP.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::{Shutdown, Stream};

/// Connection caps of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most simultaneous connections.
    pub connections_max: usize,
    /// Most simultaneous connections from one IP address.
    pub connections_per_ip_max: usize,
}

/// Counts live connections of one service, in total and per client network: an IPv4 address,
/// or an IPv6 /64 (one host is commonly given a whole /64, so counting single IPv6 addresses
/// would limit nothing).
pub struct Admissions {
    limits: ConnectionLimits,
    live: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A live connection's place within the limits; dropping it frees the place.
pub struct Admission {
    admissions: Arc<Admissions>,
    network: IpAddr,
}

/// The key a client is counted under: its IPv4 address (also when mapped into IPv6), or its
/// IPv6 /64 prefix.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

impl Admissions {
    /// Counters for a service with these limits.
    pub fn new(limits: ConnectionLimits) -> Arc<Admissions> {
        Arc::new(Admissions { limits, live: Mutex::new((0, HashMap::new())) })
    }

    /// Takes a place for a connection from `ip`.
    ///
    /// # Errors
    /// A short reason when the service or the address is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, &'static str> {
        let network = network_of(ip);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.0 >= self.limits.connections_max {
            return Err("Too many connections");
        }
        let per_ip = live.1.entry(network).or_insert(0);
        if *per_ip >= self.limits.connections_per_ip_max {
            return Err("Too many connections from your address");
        }
        *per_ip += 1;
        live.0 += 1;
        Ok(Admission { admissions: Arc::clone(self), network })
    }

    /// Live connections now.
    pub fn live(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut live = self.admissions.live.lock().unwrap_or_else(|p| p.into_inner());
        live.0 -= 1;
        if let Some(n) = live.1.get_mut(&self.network) {
            *n -= 1;
            if *n == 0 {
                live.1.remove(&self.network);
            }
        }
    }
}

/// Whether plaintext passwords (SMTP AUTH PLAIN/LOGIN, POP3 USER/PASS) are accepted on a
/// connection that is not TLS. `[auth] plaintext`; default `loopback`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextAuth {
    /// Anywhere (only for networks you trust end to end).
    Always,
    /// Only from loopback addresses (127.0.0.0/8, ::1), where nothing can be sniffed.
    #[default]
    Loopback,
    /// Never: clients must use STARTTLS / STLS or an implicit-TLS port first.
    Never,
}

impl PlaintextAuth {
    /// Whether a client at `peer` may send a password without TLS.
    pub fn allows(self, peer: IpAddr) -> bool {
        match self {
            PlaintextAuth::Always => true,
            PlaintextAuth::Loopback => peer.is_loopback() || peer.to_canonical().is_loopback(),
            PlaintextAuth::Never => false,
        }
    }
}

/// A protocol service that a listener hands its connections to.
pub trait Service: Send + Sync + 'static {
    /// The protocol's line for a connection refused over the limits, given the reason (sent in
    /// place of the greeting before the connection is closed).
    fn refusal(&self, reason: &str) -> Vec<u8>;

    /// Serves one connection until it ends.
    fn handle(self: Arc<Self>, conn: Accepted) -> impl Future<Output = ()> + Send;
}

/// A connection that passed the limits (and, on an implicit-TLS port, the handshake).
pub struct Accepted {
    /// The byte stream.
    pub stream: Stream,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// Process-wide connection number, shown in logs as `[id]`.
    pub id: u64,
    /// Tells the session when the server stops.
    pub shutdown: Shutdown,
    /// Keeps the connection's place in the limits while it lives.
    pub admission: Admission,
}

/// How a listener treats new connections.
pub struct ListenOptions {
    /// Limits shared by every listener of the service.
    pub admissions: Arc<Admissions>,
    /// Handshake every connection at once (implicit TLS, RFC 8314) with this acceptor.
    pub implicit_tls: Option<TlsAcceptor>,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Accepts connections on `listener` until `shutdown` is signalled, spawning the service's
/// handler for each one admitted. A connection over the limits gets the service's refusal line
/// and is closed.
pub async fn serve<S: Service>(listener: TcpListener, options: ListenOptions, mut shutdown: Shutdown, service: Arc<S>) {
    let local = listener.local_addr().ok();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a transient error: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = shutdown.recv() => return,
                    }
                }
            },
            _ = shutdown.recv() => return,
        };
        let _ = tcp.set_nodelay(true);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let admission = match options.admissions.admit(peer.ip()) {
            Ok(admission) => admission,
            Err(reason) => {
                debug!(%peer, reason, "connection refused");
                if options.implicit_tls.is_none() {
                    let line = service.refusal(reason);
                    tokio::spawn(async move {
                        let mut tcp = tcp;
                        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(&line)).await;
                    });
                }
                continue;
            }
        };
        let (service, tls, timeout, token) =
            (Arc::clone(&service), options.implicit_tls.clone(), options.handshake_timeout, shutdown.clone());
        let local = tcp.local_addr().ok().or(local).unwrap_or(peer);
        tokio::spawn(async move {
            let stream = match tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                    Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return debug!(%peer, "TLS handshake timed out"),
                },
            };
            service.handle(Accepted { stream, peer, local, id, shutdown: token, admission }).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_enforce_total_and_per_ip_limits_and_free_on_drop() {
        let adm = Admissions::new(ConnectionLimits { connections_max: 3, connections_per_ip_max: 2 });
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let a1 = adm.admit(a).unwrap();
        let _a2 = adm.admit(a).unwrap();
        assert!(adm.admit(a).is_err(), "third from one IP");
        let _b1 = adm.admit(b).unwrap();
        assert!(adm.admit(b).is_err(), "fourth in total");
        drop(a1);
        assert_eq!(adm.live(), 2);
        assert!(adm.admit(a).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let adm = Admissions::new(ConnectionLimits { connections_max: 10, connections_per_ip_max: 1 });
        let _a = adm.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(adm.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_err(), "same /64");
        assert!(adm.admit("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
        let _b = adm.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert!(adm.admit("::ffff:192.0.2.7".parse().unwrap()).is_err(), "the same IPv4 client");
    }

    #[test]
    fn plaintext_auth_policy() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let far: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(PlaintextAuth::Loopback.allows(lo) && PlaintextAuth::Loopback.allows(mapped));
        assert!(!PlaintextAuth::Loopback.allows(far));
        assert!(PlaintextAuth::Always.allows(far));
        assert!(!PlaintextAuth::Never.allows(lo));
    }
}
