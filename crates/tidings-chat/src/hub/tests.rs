use std::sync::Arc;

use tidings_core::{Frontend, HistoryQuery, MessageKind, RoomName};
use tidings_store::{SqliteStore, Store, StoreConfig};

use super::*;
use crate::Received;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tidings-hub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn hub(name: &str, limits: HubLimits) -> Arc<Hub> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&temp_dir(name), &StoreConfig::default()).unwrap());
    Hub::new(store, limits)
}

fn guest(nick: &str) -> Identity {
    Identity { nick: nick.into(), user: "line".into(), host: "127.0.0.1".into(), account: None, via: Frontend::Line }
}

fn room(name: &str) -> RoomName {
    name.parse().unwrap()
}

fn drain(conn: &Conn) -> Vec<Arc<Event>> {
    match conn.outbox().take() {
        Received::Events(events) => events,
        Received::Closed(reason) => panic!("closed: {reason}"),
    }
}

fn bodies(events: &[Arc<Event>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &**e {
            Event::Message(m, _) => Some(m.body.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_reach_every_member_in_history_order() {
    let hub = hub("order", HubLimits::default());
    let r = room("#order");
    let members: Vec<_> = (0..5).map(|i| hub.connect(guest(&format!("m{i}")))).collect();
    for m in &members {
        hub.join(m, &r, None, false).await.unwrap();
    }
    let mut tasks = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let (hub, m, r) = (Arc::clone(&hub), Arc::clone(m), r.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..40 {
                hub.post(&m, &r, MessageKind::Text, &format!("{i}-{j}")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history: Vec<String> = hub
        .history(&r, HistoryQuery { after: None, before: None, limit: 1000 })
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(history.len(), 200);
    for m in &members {
        assert_eq!(bodies(&drain(m)), history, "member {} saw another order than the history", m.id());
    }
    // Each sender's own messages are in the order it sent them.
    for i in 0..5 {
        let mine: Vec<_> = history.iter().filter(|b| b.starts_with(&format!("{i}-"))).cloned().collect();
        assert_eq!(mine, (0..40).map(|j| format!("{i}-{j}")).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn join_and_part_are_announced_to_everyone_and_the_first_member_is_operator() {
    let hub = hub("join", HubLimits::default());
    let r = room("#Join");
    let (a, b) = (hub.connect(guest("ann")), hub.connect(guest("bob")));
    let joined = hub.join(&a, &r, None, false).await.unwrap();
    assert!(joined.members[0].operator);
    let joined = hub.join(&b, &r, None, false).await.unwrap();
    assert_eq!(joined.members.len(), 2);
    assert!(joined.members.iter().any(|m| m.identity.nick == "bob" && !m.operator));
    assert_eq!(hub.join(&b, &r, None, false).await.unwrap_err(), JoinError::AlreadyMember(r.clone()));
    let seen = drain(&a);
    assert!(matches!(&*seen[0], Event::Joined { member, .. } if member.identity.nick == "ann"));
    assert!(matches!(&*seen[1], Event::Joined { member, .. } if member.identity.nick == "bob"));
    hub.part(&b, &r, Some("bye".into())).unwrap();
    assert!(matches!(&*drain(&a)[0], Event::Left { how: Leave::Part(Some(reason)), .. } if reason == "bye"));
    hub.disconnect(&a, "gone");
    assert!(hub.members(&r).is_empty());
}

#[tokio::test]
async fn a_consumer_that_falls_behind_is_closed_not_buffered() {
    let hub = hub("slow", HubLimits { outbox_events_max: 8, ..HubLimits::default() });
    let r = room("#slow");
    let (fast, slow) = (hub.connect(guest("fast")), hub.connect(guest("slow")));
    hub.join(&slow, &r, None, false).await.unwrap();
    hub.join(&fast, &r, None, false).await.unwrap();
    for i in 0..20 {
        drain(&fast);
        hub.post(&fast, &r, MessageKind::Text, &format!("m{i}")).await.unwrap();
    }
    assert!(matches!(slow.outbox().take(), Received::Closed(reason) if reason == crate::SENDQ_EXCEEDED));
    assert_eq!(slow.outbox().len(), 0);
    assert_eq!(bodies(&drain(&fast)), ["m19"]);
}

#[tokio::test]
async fn modes_gate_joins_and_topics() {
    let hub = hub("modes", HubLimits::default());
    let r = room("#modes");
    let (op, other, third) = (hub.connect(guest("op")), hub.connect(guest("other")), hub.connect(guest("third")));
    hub.join(&op, &r, None, false).await.unwrap();
    let applied = hub
        .set_modes(
            &op,
            &r,
            vec![ModeChange::Key(Some("sesame".into())), ModeChange::Limit(Some(2)), ModeChange::NoExternal(true)],
        )
        .await
        .unwrap();
    // +n was already set: only the key and the limit changed.
    assert_eq!(ModeChange::irc_string(&applied), "+kl sesame 2");
    assert_eq!(hub.join(&other, &r, None, false).await.unwrap_err(), JoinError::BadKey(r.clone()));
    hub.join(&other, &r, Some("sesame"), false).await.unwrap();
    assert_eq!(hub.join(&third, &r, Some("sesame"), false).await.unwrap_err(), JoinError::Full(r.clone()));
    assert_eq!(hub.set_topic(&other, &r, "mine").await.unwrap_err(), RoomError::NotOperator(r.clone()));
    hub.set_topic(&op, &r, "soup").await.unwrap();
    hub.kick(&op, &r, "OTHER", "enough").unwrap();
    assert!(other.rooms().is_empty());
    // The room's state is durable: a hub over the same store sees the modes and topic.
    let record = hub.store().room(&r).await.unwrap().unwrap();
    assert_eq!((record.modes.key.as_deref(), record.topic.unwrap().text.as_str()), (Some("sesame"), "soup"));
}

#[tokio::test]
async fn posting_needs_membership_under_no_external_and_limits_hold() {
    let hub = hub("post", HubLimits { body_bytes_max: 10, ..HubLimits::default() });
    let r = room("#post");
    let (a, b) = (hub.connect(guest("a")), hub.connect(guest("b")));
    hub.join(&a, &r, None, false).await.unwrap();
    assert_eq!(hub.post(&b, &r, MessageKind::Text, "hi").await.unwrap_err(), RoomError::NotMember(r.clone()));
    assert!(matches!(hub.post(&a, &r, MessageKind::Text, "01234567890").await, Err(RoomError::Invalid(_))));
    assert!(matches!(hub.post(&a, &r, MessageKind::Text, "a\nb").await, Err(RoomError::Invalid(_))));
    assert!(matches!(hub.post(&a, &room("#nowhere"), MessageKind::Text, "x").await, Err(RoomError::NoSuchRoom(_))));
    let posted = hub.post(&a, &r, MessageKind::Text, "ok").await.unwrap();
    assert_eq!((posted.seq, posted.id.len()), (1, 26));
}

#[tokio::test]
async fn a_post_whose_caller_goes_away_does_not_hold_back_the_room() {
    let hub = hub("cancel", HubLimits::default());
    let r = room("#cancel");
    let (a, b) = (hub.connect(guest("a")), hub.connect(guest("b")));
    hub.join(&a, &r, None, false).await.unwrap();
    hub.join(&b, &r, None, false).await.unwrap();
    drain(&b);
    // The caller's future is dropped right after it started: the post still settles.
    let dropped = tokio::time::timeout(std::time::Duration::ZERO, hub.post(&a, &r, MessageKind::Text, "first"));
    let _ = dropped.await; // usually cut short; either way the post must settle
    hub.post(&a, &r, MessageKind::Text, "second").await.unwrap();
    // Both reach the other member, in the room's one order, which is its history's.
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen.extend(bodies(&drain(&b)));
        if seen.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let history: Vec<String> = hub
        .history(&r, HistoryQuery { after: None, before: None, limit: 10 })
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(seen, history);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, ["first", "second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_stays_one_room_while_posts_and_joins_race_with_its_emptying() {
    let hub = hub("split", HubLimits::default());
    let r = room("#split");
    let op = hub.connect(guest("op"));
    hub.join(&op, &r, None, false).await.unwrap();
    hub.set_modes(&op, &r, vec![ModeChange::NoExternal(false)]).await.unwrap();
    hub.part(&op, &r, None).unwrap();
    for round in 0..50 {
        let (outsider, y, z) = (hub.connect(guest("x")), hub.connect(guest("y")), hub.connect(guest("z")));
        let posting = {
            let (hub, outsider, r) = (Arc::clone(&hub), Arc::clone(&outsider), r.clone());
            tokio::spawn(async move { hub.post(&outsider, &r, MessageKind::Text, "from outside").await })
        };
        let joining = {
            let (hub, y, r) = (Arc::clone(&hub), Arc::clone(&y), r.clone());
            tokio::spawn(async move { hub.join(&y, &r, None, false).await })
        };
        posting.await.unwrap().unwrap();
        joining.await.unwrap().unwrap();
        hub.join(&z, &r, None, false).await.unwrap();
        drain(&z);
        hub.post(&y, &r, MessageKind::Text, &format!("round {round}")).await.unwrap();
        assert_eq!(bodies(&drain(&z)), [format!("round {round}")], "y and z are in different copies of the room");
        for c in [&outsider, &y, &z] {
            hub.disconnect(c, "done");
        }
        assert_eq!(hub.rooms_loaded(), 0, "an empty room stays loaded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_rooms_while_rooms_empty_does_not_deadlock() {
    let hub = hub("list", HubLimits::default());
    let lister = {
        let hub = Arc::clone(&hub);
        tokio::spawn(async move {
            for _ in 0..200 {
                hub.list().await.unwrap();
            }
        })
    };
    for i in 0..200 {
        let c = hub.connect(guest("c"));
        hub.join(&c, &room(&format!("#r{}", i % 7)), None, false).await.unwrap();
        hub.disconnect(&c, "bye");
    }
    tokio::time::timeout(std::time::Duration::from_secs(30), lister).await.expect("list deadlocked").unwrap();
}
