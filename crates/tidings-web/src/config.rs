//! `[web]`: the HTTP listener and the WebSocket chat API.

use serde::{Deserialize, Serialize};

/// `[web]`. Every key has a default; an empty section means all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Longest request head (request line and header fields) a client may send, octets; a longer
    /// one ends the connection. At least 8,192. Default 65,536.
    pub header_bytes_max: usize,
    /// Seconds a client has to send a complete request head. Default 30.
    pub header_timeout_secs: u64,
    /// Longest WebSocket message a client may send (one frame, or a fragmented message as a
    /// whole), octets. A longer one closes the connection with 1009 (RFC 6455 §7.4.1). Default
    /// 65,536.
    pub ws_message_bytes_max: usize,
    /// Seconds between the server's pings on a WebSocket (RFC 6455 §5.5.2). Default 30.
    pub ws_ping_interval_secs: u64,
    /// Seconds without any frame from the client (pongs count) before the WebSocket is closed
    /// with 1001. Must exceed `ws_ping_interval_secs`. Default 120.
    pub ws_idle_timeout_secs: u64,
    /// Seconds a send may stall (the client takes none of our octets) before the connection is
    /// dropped. Default 30.
    pub ws_write_timeout_secs: u64,
    /// Seconds a new WebSocket has to log in before it is closed with 1008. Default 60.
    pub login_timeout_secs: u64,
    /// Failed logins on one WebSocket before it is closed with 1008. Default 3.
    pub login_failures_max: u32,
    /// Requests per second a WebSocket may send on average (0 turns the limit off). Default 10.
    pub flood_requests_per_sec: f64,
    /// Requests a WebSocket may send at once before the rate applies. Default 20.
    pub flood_burst: u32,
    /// Requests refused in a row for flooding before the connection is closed with 1008.
    /// Default 10.
    pub flood_strikes_max: u32,
    /// Most messages one `history` request returns (also the default `limit`). 1 to 999.
    /// Default 100.
    pub history_page_max: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_bytes_max: 65_536,
            header_timeout_secs: 30,
            ws_message_bytes_max: 65_536,
            ws_ping_interval_secs: 30,
            ws_idle_timeout_secs: 120,
            ws_write_timeout_secs: 30,
            login_timeout_secs: 60,
            login_failures_max: 3,
            flood_requests_per_sec: 10.0,
            flood_burst: 20,
            flood_strikes_max: 10,
            history_page_max: 100,
        }
    }
}

/// The smallest request-head limit the HTTP/1 parser can work with, octets.
pub const HEADER_BYTES_MIN: usize = 8192;

/// Most messages a history page can hold: one less than the store's page, since the API asks for
/// one more than it returns to learn whether there are more.
pub const HISTORY_PAGE_LIMIT: usize = 999;

impl HttpConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// The first value out of range, naming its key.
    pub fn validate(&self) -> Result<(), String> {
        if self.header_bytes_max < HEADER_BYTES_MIN {
            return Err(format!("[web] header_bytes_max must be at least {HEADER_BYTES_MIN}"));
        }
        if self.ws_message_bytes_max < 1024 {
            return Err("[web] ws_message_bytes_max must be at least 1024".into());
        }
        let secs = [
            ("header_timeout_secs", self.header_timeout_secs),
            ("ws_ping_interval_secs", self.ws_ping_interval_secs),
            ("ws_idle_timeout_secs", self.ws_idle_timeout_secs),
            ("ws_write_timeout_secs", self.ws_write_timeout_secs),
            ("login_timeout_secs", self.login_timeout_secs),
        ];
        if let Some((key, _)) = secs.iter().find(|(_, v)| *v == 0) {
            return Err(format!("[web] {key} must be positive"));
        }
        if self.ws_idle_timeout_secs <= self.ws_ping_interval_secs {
            return Err("[web] ws_idle_timeout_secs must exceed ws_ping_interval_secs".into());
        }
        if self.login_failures_max == 0 || self.flood_strikes_max == 0 {
            return Err("[web] login_failures_max and flood_strikes_max must be positive".into());
        }
        if !self.flood_requests_per_sec.is_finite() || self.flood_requests_per_sec < 0.0 {
            return Err("[web] flood_requests_per_sec must be a number, 0 or more".into());
        }
        if !(1..=HISTORY_PAGE_LIMIT).contains(&self.history_page_max) {
            return Err(format!("[web] history_page_max must be 1..={HISTORY_PAGE_LIMIT}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert_eq!(HttpConfig::default().validate(), Ok(()));
        let bad = HttpConfig { ws_idle_timeout_secs: 30, ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("ws_idle_timeout_secs"));
        let bad = HttpConfig { history_page_max: 1000, ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("history_page_max"));
        let bad = HttpConfig { header_bytes_max: 100, ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("header_bytes_max"));
    }
}
