//! Session-level tests: a scripted client and a fake driver around a [`Session`].

mod authorization;
mod lifecycle;
mod transaction;

use bytes::Bytes;

use super::{MessageInfo, Request, Response, Session, SessionConfig, SessionCore, Step};

const HOST: &str = "pop.example.org";

/// A configuration where plaintext logins are allowed and the transcript is on.
fn config() -> SessionConfig {
    let mut config = SessionConfig::new(HOST);
    config.plaintext_auth = true;
    config.transcript = true;
    config
}

/// A session whose greeting has been read.
fn session_with(config: SessionConfig) -> Session {
    let mut session = Session::new(config);
    assert_eq!(session.poll(), Step::NeedInput);
    assert_eq!(text(session.take_output()), format!("+OK {HOST} POP3 server ready\r\n"));
    session
}

fn session() -> Session {
    session_with(config())
}

fn text(output: Vec<u8>) -> String {
    String::from_utf8(output).expect("server output is UTF-8 in these tests")
}

/// Feeds `input`, runs the session until it needs input, and returns what it wrote. Panics on
/// any other step.
fn chat(session: &mut Session, input: &str) -> String {
    session.feed(input.as_bytes());
    assert_eq!(session.poll(), Step::NeedInput, "after {input:?}");
    text(session.take_output())
}

/// Feeds `input` and returns the step the session reaches and what it wrote until then.
fn step(session: &mut Session, input: &str) -> (Step, String) {
    session.feed(input.as_bytes());
    let step = session.poll();
    (step, text(session.take_output()))
}

/// Resolves the outstanding request and returns the next step and what was written.
fn resolve(session: &mut Session, response: Response) -> (Step, String) {
    session.resolve(response);
    let step = session.poll();
    (step, text(session.take_output()))
}

/// Three messages: 1 (uid 101, 30 octets), 2 (uid 102, 40), 3 (uid 103, 50).
fn listing() -> Vec<MessageInfo> {
    [(101, 30, "uid-a"), (102, 40, "uid-b"), (103, 50, "uid-c")]
        .into_iter()
        .map(|(uid, size, unique_id)| MessageInfo { uid, size, unique_id: unique_id.into() })
        .collect()
}

/// Logs in as alice with [`listing`] and drops the output.
fn login(session: &mut Session) {
    let (step, _) = step(session, "USER alice\r\nPASS secret\r\n");
    assert_eq!(step, Step::Request(Request::Authenticate { user: "alice".into(), password: "secret".into() }));
    let (step, output) = resolve(session, Response::LoggedIn(listing()));
    assert_eq!(step, Step::NeedInput);
    assert!(output.ends_with("+OK Logged in, 3 messages (120 octets)\r\n"), "{output}");
}

fn logged_in() -> Session {
    let mut session = session();
    login(&mut session);
    session.take_transcript();
    session
}

/// Sends `RETR`/`TOP` `command`, checks it asks for `uid` with `lines`, answers with `message`,
/// and returns what was written.
fn retrieve(session: &mut Session, command: &str, uid: u32, lines: Option<u32>, message: &'static [u8]) -> String {
    let (step, output) = step(session, command);
    assert_eq!(output, "");
    assert_eq!(step, Step::Request(Request::Retrieve { uid, lines }));
    let (step, output) = resolve(session, Response::Message(Bytes::from_static(message)));
    assert_eq!(step, Step::NeedInput);
    output
}
