//! `[web]`: the HTTP listener and the WebSocket chat API.

use serde::{Deserialize, Serialize};

/// `[web]`. Every key has a default; an empty section means all of them. Every `_secs` value is
/// 1 to [`SECS_MAX`] (31,536,000: a year).
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
    /// Seconds a session of the API or the web app lasts after login. Default 43,200 (12 hours).
    pub session_ttl_secs: u64,
    /// Sessions one account may hold at once; a login past it ends the account's oldest.
    /// Default 32.
    pub sessions_per_account_max: usize,
    /// Sessions the node holds at once; past it, a login ends the oldest session. Default 100,000.
    pub sessions_max: usize,
    /// Largest request body the API takes (a message with its attachments, in JSON with base64),
    /// octets; a larger one gets `413`. At least 65,536. Default 36 MiB (25 MiB of attachments).
    pub request_bytes_max: usize,
    /// Failed logins to the API for one account within `lockout_secs` after which its logins are
    /// refused (`429`) until the window passes; ten times as many from one client IP lock that IP
    /// out. Default 5.
    pub login_failures_before_lockout: u32,
    /// The lockout window, seconds. Default 900.
    pub lockout_secs: u64,
    /// Whether anyone may create an account with `POST /api/v1/accounts` (with an emailed code);
    /// `false` refuses sign-up with `403`. Default true.
    pub signup: bool,
    /// The domain a bare local part signs up in (and `exists` looks in). Empty: the first
    /// `[mail] domains` entry (the demo domain under `--demo`). Default empty.
    pub signup_domain: String,
    /// Fewest characters a password set through the API (sign-up, reset) may have; at most
    /// 1,024. Default 8.
    pub password_chars_min: usize,
    /// Recipients one account may send to through `POST /api/v1/mail/send` within an hour;
    /// more get `429`. Default 500.
    pub recipients_per_hour: u32,
    /// Verification codes one email address may be sent within `code_window_secs`; more get
    /// `429`. Default 3.
    pub codes_per_address: u32,
    /// Verification codes one client IP may ask for within `code_window_secs`. Default 10.
    pub codes_per_ip: u32,
    /// The window of the code limits, seconds. Default 600.
    pub code_window_secs: u64,
    /// `GET /api/v1/accounts/exists` checks one client IP may make within `code_window_secs`.
    /// Default 60.
    pub exists_checks_per_ip: u32,
    /// Verification codes the node holds at once (each lives 10 minutes); past it, new codes are
    /// refused with `429`. Default 10,000.
    pub codes_max: usize,
    /// Wrong verification codes (sign-up or password reset) one client may give within
    /// `code_window_secs`; past it, code checks from it get `429`. A client is an IPv4 address
    /// or an IPv6 /64. Default 20.
    pub code_failures_per_ip: u32,
    /// Verification codes the whole node may send through `[outbound] smarthost` (to addresses
    /// outside its domains) within `code_window_secs`; past it, sign-up codes to outside
    /// addresses get `429` (and reset codes to outside recovery addresses are not sent).
    /// Default 100.
    pub outside_codes_per_window: u32,
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
            session_ttl_secs: 43_200,
            sessions_per_account_max: 32,
            sessions_max: 100_000,
            request_bytes_max: 36 * 1024 * 1024,
            login_failures_before_lockout: 5,
            lockout_secs: 900,
            signup: true,
            signup_domain: String::new(),
            password_chars_min: 8,
            recipients_per_hour: 500,
            codes_per_address: 3,
            codes_per_ip: 10,
            code_window_secs: 600,
            exists_checks_per_ip: 60,
            codes_max: 10_000,
            code_failures_per_ip: 20,
            outside_codes_per_window: 100,
        }
    }
}

/// The smallest request-head limit the HTTP/1 parser can work with, octets.
pub const HEADER_BYTES_MIN: usize = 8192;

/// Most messages a history page can hold: one less than the store's page, since the API asks for
/// one more than it returns to learn whether there are more.
pub const HISTORY_PAGE_LIMIT: usize = 999;

/// The longest any `[web]` duration may be, seconds (365 days): times are added to the clock's
/// instants, and nothing here needs longer.
pub const SECS_MAX: u64 = 31_536_000;

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
            ("session_ttl_secs", self.session_ttl_secs),
            ("lockout_secs", self.lockout_secs),
            ("code_window_secs", self.code_window_secs),
        ];
        if let Some((key, _)) = secs.iter().find(|(_, v)| !(1..=SECS_MAX).contains(v)) {
            return Err(format!("[web] {key} must be 1..={SECS_MAX} seconds"));
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
        if self.session_ttl_secs == 0 || self.sessions_per_account_max == 0 || self.sessions_max == 0 {
            return Err("[web] session_ttl_secs, sessions_per_account_max and sessions_max must be positive".into());
        }
        if self.login_failures_before_lockout == 0 || self.lockout_secs == 0 {
            return Err("[web] login_failures_before_lockout and lockout_secs must be positive".into());
        }
        if self.recipients_per_hour == 0 {
            return Err("[web] recipients_per_hour must be positive".into());
        }
        if !(1..=1024).contains(&self.password_chars_min) {
            return Err("[web] password_chars_min must be 1..=1024".into());
        }
        if !self.signup_domain.is_empty() && !tidings_core::is_valid_domain(&self.signup_domain) {
            return Err(format!("[web] signup_domain {:?} is not a domain name", self.signup_domain));
        }
        let limits = [
            ("codes_per_address", u64::from(self.codes_per_address)),
            ("codes_per_ip", u64::from(self.codes_per_ip)),
            ("exists_checks_per_ip", u64::from(self.exists_checks_per_ip)),
            ("codes_max", self.codes_max as u64),
            ("code_failures_per_ip", u64::from(self.code_failures_per_ip)),
            ("outside_codes_per_window", u64::from(self.outside_codes_per_window)),
        ];
        if let Some((key, _)) = limits.iter().find(|(_, v)| *v == 0) {
            return Err(format!("[web] {key} must be positive"));
        }
        if self.request_bytes_max < 65_536 {
            return Err("[web] request_bytes_max must be at least 65536".into());
        }
        Ok(())
    }
}

/// `[outbound]`: where mail for other domains goes (verification codes to outside addresses, and
/// mail the API sends). Without a smarthost, such mail is refused with a clear error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// `host:port` of an SMTP relay that accepts our mail for every other domain (RFC 5321 §2.3.10,
    /// "smarthost"). Empty: none. Default empty.
    pub smarthost: String,
}

impl OutboundConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// `smarthost` that is not `host:port`.
    pub fn validate(&self) -> Result<(), String> {
        if self.smarthost.is_empty() {
            return Ok(());
        }
        match self.smarthost.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => Ok(()),
            _ => Err(format!("[outbound] smarthost {:?} must be host:port", self.smarthost)),
        }
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
        let bad = HttpConfig { codes_per_ip: 0, ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("codes_per_ip"));
        let bad = HttpConfig { signup_domain: "not a domain".into(), ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("signup_domain"));
        let bad = HttpConfig { outside_codes_per_window: 0, ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("outside_codes_per_window"));
        let bad = HttpConfig { code_failures_per_ip: 0, ..HttpConfig::default() };
        assert!(bad.validate().unwrap_err().contains("code_failures_per_ip"));
    }

    #[test]
    fn durations_are_bounded_so_that_adding_them_to_an_instant_cannot_overflow() {
        for key in ["code_window_secs", "session_ttl_secs", "lockout_secs", "login_timeout_secs"] {
            let mut config = HttpConfig::default();
            match key {
                "code_window_secs" => config.code_window_secs = u64::MAX,
                "session_ttl_secs" => config.session_ttl_secs = SECS_MAX + 1,
                "lockout_secs" => config.lockout_secs = u64::MAX,
                _ => config.login_timeout_secs = u64::MAX,
            }
            let error = config.validate().unwrap_err();
            assert!(error.contains(key) && error.contains("31536000"), "{error}");
        }
        let longest = HttpConfig {
            code_window_secs: SECS_MAX,
            session_ttl_secs: SECS_MAX,
            lockout_secs: SECS_MAX,
            ..HttpConfig::default()
        };
        assert_eq!(longest.validate(), Ok(()));
    }
}
