//! The cluster file and the ordering modes of the UDP chat servers (PROTOCOLS.md §2, "Servers").
//!
//! The file has one line per server, server 1 first: either `IP:port` (the server binds that
//! address and the others send to it) or `forwardIP:port,bindIP:port` (the server binds the second
//! address; the others send to the first, where a relay may sit). A datagram whose source is some
//! server's *forwarding* address comes from that server; any other source is a client.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Most servers a cluster file may list (the seed system claims 50).
pub const SERVERS_MAX: usize = 1000;

/// Longest cluster file, octets.
pub const CLUSTER_FILE_BYTES_MAX: usize = 1 << 20;

/// A server's index in its cluster: 1 is the first line of the cluster file.
pub type ServerIndex = usize;

/// One server's two addresses. With a plain `IP:port` line both are that address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerAddrs {
    /// Where the other servers send to; the source address of datagrams from this server as
    /// the others see them.
    pub forward: SocketAddr,
    /// Where this server binds its one UDP socket (clients send here).
    pub bind: SocketAddr,
}

/// The servers of one cluster, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    servers: Vec<ServerAddrs>,
}

/// Why a cluster file (or an index into it) is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// A line is neither `IP:port` nor `forwardIP:port,bindIP:port`.
    #[error("line {line}: {text:?} is not IP:port or forwardIP:port,bindIP:port")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The line, as read.
        text: String,
    },
    /// No server at all.
    #[error("the cluster file lists no server")]
    Empty,
    /// More than [`SERVERS_MAX`] servers, or a file over [`CLUSTER_FILE_BYTES_MAX`] octets.
    #[error("the cluster file is too large (at most {SERVERS_MAX} servers, {CLUSTER_FILE_BYTES_MAX} octets)")]
    TooLarge,
    /// Two servers share a forwarding or a bind address, so datagrams could not be told apart.
    #[error("line {line}: address {address} is already used by server {first}")]
    Duplicate {
        /// 1-based line number of the second use.
        line: usize,
        /// The address.
        address: SocketAddr,
        /// The server that used it first.
        first: ServerIndex,
    },
    /// The index is not 1..=N.
    #[error("server index {index} is not in the cluster file (1 to {servers})")]
    Index {
        /// The index given.
        index: usize,
        /// Servers in the file.
        servers: usize,
    },
}

impl Cluster {
    /// Parses a cluster file. Blank lines are skipped (a trailing newline is common); spaces
    /// around the addresses and the comma are ignored.
    ///
    /// # Errors
    /// [`ClusterError`]: a malformed line, no server, too many, or an address used twice.
    pub fn parse(text: &str) -> Result<Cluster, ClusterError> {
        if text.len() > CLUSTER_FILE_BYTES_MAX {
            return Err(ClusterError::TooLarge);
        }
        let mut servers: Vec<ServerAddrs> = Vec::new();
        for (number, raw) in text.lines().enumerate() {
            let line = number + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let syntax = || ClusterError::Syntax { line, text: raw.to_owned() };
            let addr = |s: &str| s.trim().parse::<SocketAddr>().map_err(|_| syntax());
            let server = match trimmed.split_once(',') {
                None => {
                    let a = addr(trimmed)?;
                    ServerAddrs { forward: a, bind: a }
                }
                Some((forward, bind)) => ServerAddrs { forward: addr(forward)?, bind: addr(bind)? },
            };
            if servers.len() == SERVERS_MAX {
                return Err(ClusterError::TooLarge);
            }
            for (i, other) in servers.iter().enumerate() {
                for (mine, theirs) in [(server.forward, other.forward), (server.bind, other.bind)] {
                    if mine == theirs {
                        return Err(ClusterError::Duplicate { line, address: mine, first: i + 1 });
                    }
                }
            }
            servers.push(server);
        }
        if servers.is_empty() {
            return Err(ClusterError::Empty);
        }
        Ok(Cluster { servers })
    }

    /// A cluster of one server at `address` (what `tidings serve` runs).
    pub fn single(address: SocketAddr) -> Cluster {
        Cluster { servers: vec![ServerAddrs { forward: address, bind: address }] }
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Always false: a cluster has at least one server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Server `index` (1-based).
    ///
    /// # Errors
    /// [`ClusterError::Index`] when there is no such server.
    pub fn server(&self, index: ServerIndex) -> Result<ServerAddrs, ClusterError> {
        index
            .checked_sub(1)
            .and_then(|i| self.servers.get(i))
            .copied()
            .ok_or(ClusterError::Index { index, servers: self.servers.len() })
    }

    /// The server whose forwarding address is `source`, if any: a datagram from there is that
    /// server's.
    pub fn server_at(&self, source: SocketAddr) -> Option<ServerIndex> {
        self.servers.iter().position(|s| s.forward == source).map(|i| i + 1)
    }

    /// Every server, in file order (index `i + 1` at position `i`).
    pub fn servers(&self) -> &[ServerAddrs] {
        &self.servers
    }
}

/// The delivery order a cluster guarantees to the members of a room, across all its servers
/// (PROTOCOLS.md §2, "Ordering modes"). With one server every mode holds by construction: the
/// hub delivers a room's messages to every member in one sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OrderingMode {
    /// Every message reaches every member; no order promised.
    #[default]
    Unordered,
    /// Messages from one sender reach every member in the order they were sent.
    Fifo,
    /// A message that its sender could have seen before sending another is delivered first
    /// everywhere (implies FIFO).
    Causal,
    /// Every member receives a room's messages in the same order (and FIFO holds).
    Total,
}

impl OrderingMode {
    /// `unordered`, `fifo`, `causal` or `total`, as `-o` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderingMode::Unordered => "unordered",
            OrderingMode::Fifo => "fifo",
            OrderingMode::Causal => "causal",
            OrderingMode::Total => "total",
        }
    }
}

impl fmt::Display for OrderingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ordering mode that is not one of the four.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ordering mode: expected unordered, fifo, causal or total")]
pub struct OrderingModeError(String);

impl FromStr for OrderingMode {
    type Err = OrderingModeError;

    /// Parses `unordered`, `fifo`, `causal` or `total` (exactly, lower case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "unordered" => OrderingMode::Unordered,
            "fifo" => OrderingMode::Fifo,
            "causal" => OrderingMode::Causal,
            "total" => OrderingMode::Total,
            _ => return Err(OrderingModeError(s.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_lines_forward_and_bind_on_one_address() {
        let cluster = Cluster::parse("127.0.0.1:5000\n127.0.0.1:5001\n\n").unwrap();
        assert_eq!(cluster.len(), 2);
        assert_eq!(
            cluster.server(2).unwrap(),
            ServerAddrs { forward: addr("127.0.0.1:5001"), bind: addr("127.0.0.1:5001") }
        );
    }

    #[test]
    fn two_address_lines_split_forwarding_from_binding() {
        let cluster = Cluster::parse("127.0.0.1:8000,127.0.0.1:5000\n 127.0.0.1:8001 , 127.0.0.1:5001 \n").unwrap();
        let s1 = cluster.server(1).unwrap();
        assert_eq!((s1.forward, s1.bind), (addr("127.0.0.1:8000"), addr("127.0.0.1:5000")));
        assert_eq!(cluster.server_at(addr("127.0.0.1:8001")), Some(2));
        assert_eq!(cluster.server_at(addr("127.0.0.1:5001")), None, "a bind address is not a server's source");
    }

    #[test]
    fn ipv6_addresses_parse() {
        let cluster = Cluster::parse("[::1]:5000\n").unwrap();
        assert_eq!(cluster.server(1).unwrap().bind, addr("[::1]:5000"));
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        assert_eq!(Cluster::parse(""), Err(ClusterError::Empty));
        assert_eq!(Cluster::parse("\n \n"), Err(ClusterError::Empty));
        assert!(matches!(Cluster::parse("127.0.0.1:1\nlocalhost:5\n"), Err(ClusterError::Syntax { line: 2, .. })));
        assert!(matches!(Cluster::parse("127.0.0.1\n"), Err(ClusterError::Syntax { line: 1, .. })));
        assert!(matches!(Cluster::parse("1.2.3.4:5,\n"), Err(ClusterError::Syntax { line: 1, .. })));
        assert!(matches!(Cluster::parse("1.2.3.4:5,6.7.8.9:1,1.1.1.1:1\n"), Err(ClusterError::Syntax { .. })));
        assert_eq!(
            Cluster::parse("127.0.0.1:1\n127.0.0.1:1\n"),
            Err(ClusterError::Duplicate { line: 2, address: addr("127.0.0.1:1"), first: 1 })
        );
        let many: String = (0..=SERVERS_MAX).map(|i| format!("10.0.{}.{}:1\n", i / 256, i % 256)).collect();
        assert_eq!(Cluster::parse(&many), Err(ClusterError::TooLarge));
    }

    #[test]
    fn indexes_count_from_one() {
        let cluster = Cluster::parse("127.0.0.1:1\n").unwrap();
        assert!(cluster.server(1).is_ok());
        assert_eq!(cluster.server(0), Err(ClusterError::Index { index: 0, servers: 1 }));
        assert_eq!(cluster.server(2), Err(ClusterError::Index { index: 2, servers: 1 }));
    }

    #[test]
    fn ordering_modes_parse_exactly() {
        for mode in [OrderingMode::Unordered, OrderingMode::Fifo, OrderingMode::Causal, OrderingMode::Total] {
            assert_eq!(mode.as_str().parse::<OrderingMode>(), Ok(mode));
        }
        assert!("FIFO".parse::<OrderingMode>().is_err());
        assert!("".parse::<OrderingMode>().is_err());
    }
}
