//! Commands valid in any state (RFC 9051 §6.1: CAPABILITY, NOOP, LOGOUT; RFC 2971 ID), the
//! authenticated-state extensions ENABLE (RFC 5161, RFC 9051 §6.3.1) and NAMESPACE (RFC 2342),
//! and IDLE (RFC 2177, RFC 9051 §6.3.13).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::response::{CommandContinuationRequest, Status as ServerStatus};

use super::{Mode, Session, State};
use crate::proto::wire::Status;

/// Extensions advertised in every state.
const EXTENSIONS: [&str; 17] = [
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "ESEARCH",
    "BINARY",
    "STATUS=SIZE",
    "UTF8=ACCEPT",
];

/// The capability list for the session's present state (RFC 9051 §6.1.1): STARTTLS while it
/// may be used; before login either AUTH=PLAIN or, when plaintext passwords are refused on this
/// connection, LOGINDISABLED (RFC 9051 §6.2.3).
pub(crate) fn capabilities(session: &Session) -> String {
    let mut list = vec!["IMAP4rev1", "IMAP4rev2"];
    if matches!(session.state, State::NotAuthenticated) {
        if session.config.starttls && !session.tls {
            list.push("STARTTLS");
        }
        if session.tls || session.config.plaintext_auth {
            list.push("AUTH=PLAIN");
        } else {
            list.push("LOGINDISABLED");
        }
    }
    list.extend(EXTENSIONS);
    list.join(" ")
}

impl Session {
    pub(super) fn capability(&mut self, tag: &str) {
        let list = capabilities(self);
        self.wire.untagged(format_args!("CAPABILITY {list}"));
        self.finish(tag, Status::Ok, None, "CAPABILITY completed", true);
    }

    /// NOOP: the mailbox was synced before it ran, so the changes are reported now.
    pub(super) fn noop(&mut self, tag: &str) {
        self.finish(tag, Status::Ok, None, "NOOP completed", true);
    }

    pub(super) fn logout(&mut self, tag: &str) {
        let host = self.config.hostname.clone();
        self.wire.bye(&format!("{host} IMAP4rev2 server logging out"));
        self.wire.tagged(tag, Status::Ok, None, "LOGOUT completed");
    }

    /// ID (RFC 2971): the server's name; the client's parameters are not used.
    pub(super) fn id(&mut self, tag: &str) {
        let version = env!("CARGO_PKG_VERSION");
        self.wire.untagged(format_args!("ID (\"name\" \"tidings\" \"version\" \"{version}\")"));
        self.finish(tag, Status::Ok, None, "ID completed", true);
    }

    /// ENABLE (RFC 5161): IMAP4rev2 and UTF8=ACCEPT; others are ignored, as the RFC says.
    pub(super) fn enable(&mut self, tag: &str, capabilities: &[CapabilityEnable<'_>]) {
        if matches!(self.state, State::Selected(_)) {
            self.reply_bad(Some(tag), "ENABLE is valid only before a mailbox is selected");
            return;
        }
        let mut enabled = Vec::new();
        for capability in capabilities {
            let name = capability.to_string();
            if name.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                enabled.push("IMAP4rev2");
            } else if name.eq_ignore_ascii_case("UTF8=ACCEPT") && !self.utf8 {
                self.utf8 = true;
                enabled.push("UTF8=ACCEPT");
            }
        }
        let list = enabled.join(" ");
        let list = if list.is_empty() { String::new() } else { format!(" {list}") };
        self.wire.untagged(format_args!("ENABLED{list}"));
        self.finish(tag, Status::Ok, None, "ENABLE completed", true);
    }

    /// NAMESPACE (RFC 2342, RFC 9051 §6.3.10): one personal namespace, no prefix, `/`.
    pub(super) fn namespace(&mut self, tag: &str) {
        self.wire.untagged(format_args!("NAMESPACE ((\"\" \"/\")) NIL NIL"));
        self.finish(tag, Status::Ok, None, "NAMESPACE completed", true);
    }

    /// IDLE: accepted once authenticated; changes are reported as they come until DONE.
    pub(super) fn idle(&mut self, tag: Tag<'static>) {
        let tag_text = tag.as_ref().to_owned();
        if matches!(self.state, State::NotAuthenticated) {
            if let Ok(status) = ServerStatus::bad(Some(tag), None, "no") {
                let _ = self.server.idle_reject(status);
            }
            self.pump_server_output(false);
            self.reply_bad(Some(&tag_text), "Not authenticated: log in first");
            return;
        }
        if let Ok(continuation) = CommandContinuationRequest::basic(None, "idling") {
            let _ = self.server.idle_accept(continuation);
        }
        self.pump_server_output(false);
        self.wire.continuation("idling");
        self.mode = Mode::Idle { tag: tag_text };
        self.report_updates(true);
    }

    /// DONE ends IDLE.
    pub(super) fn idle_done(&mut self) {
        if let Mode::Idle { tag } = std::mem::replace(&mut self.mode, Mode::Command) {
            self.finish(&tag, Status::Ok, None, "IDLE terminated", true);
        }
    }

    /// Something other than DONE came during IDLE: IDLE ends with BAD, and the input goes back
    /// to commands.
    pub(super) fn idle_malformed(&mut self) {
        if let Mode::Idle { tag } = std::mem::replace(&mut self.mode, Mode::Command) {
            self.reset_server();
            self.wire.tagged(&tag, Status::Bad, None, "Expected DONE; IDLE terminated");
        }
    }
}
