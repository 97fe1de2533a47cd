// Chat over the page's WebSocket (docs/chat-api.md): the account's rooms (rejoined on every
// connection), join/create/leave, a room's messages with scroll-back through history pages,
// members and their presence, the composer. Messages are kept in `seq` order, deduplicated by id.

import { h, replace, field, statusLine, announce, shortTime, longTime, keepFocus } from "./dom.js";
import { go, session } from "./app.js";

const PAGE = 50;
/** Pages fetched to fill a gap after a reconnect, at most. */
const GAP_PAGES_MAX = 20;

let socket = null;
const state = {
  rooms: new Map(),
  directory: [],
  current: null,
  screen: null,
  online: false,
  away: false,
};

function roomState(name) {
  let room = state.rooms.get(name);
  if (!room) {
    room = { name, topic: null, joined: false, messages: [], ids: new Set(), more: true, loaded: false, loading: false, members: new Map(), unread: 0 };
    state.rooms.set(name, room);
  }
  return room;
}

export function reset() {
  state.rooms.clear();
  state.directory = [];
  state.current = null;
  state.screen = null;
  state.online = false;
}

export function leave() {
  state.screen = null;
}

function myNick() {
  return (socket && socket.hello && socket.hello.nick) || (session.info ? session.info.account.split("@")[0] : "");
}

function normalize(name) {
  let n = name.trim();
  if (!n) return "";
  if (!n.startsWith("#")) n = `#${n}`;
  return n.toLowerCase();
}

export function init(s) {
  socket = s;
  socket.on("open", connected);
  socket.on("close", () => {
    state.online = false;
    for (const room of state.rooms.values()) room.joined = false;
    renderStatus();
  });
  socket.on("message", (e) => received(e.message));
  socket.on("joined", (e) => {
    const room = state.rooms.get(e.room);
    if (!room) return;
    room.members.set(e.member.nick, e.member);
    if (e.room === state.current) renderMembers();
  });
  socket.on("left", (e) => {
    const room = state.rooms.get(e.room);
    if (!room) return;
    room.members.delete(e.member.nick);
    if (e.room === state.current) renderMembers();
  });
  socket.on("kicked", (e) => {
    const room = state.rooms.get(e.room);
    if (!room) return;
    room.joined = false;
    state.rooms.delete(e.room);
    announce(`${e.by} removed you from ${e.room}${e.reason ? `: ${e.reason}` : ""}.`);
    renderRooms();
    if (e.room === state.current) go("#/chat");
  });
  socket.on("topic", (e) => {
    const room = state.rooms.get(e.room);
    if (!room) return;
    room.topic = e.topic;
    if (e.room === state.current) renderRoomHead();
  });
  socket.on("nick", (e) => {
    for (const room of state.rooms.values()) {
      const m = room.members.get(e.old);
      if (m) { room.members.delete(e.old); room.members.set(e.new, { ...m, nick: e.new }); }
    }
    renderMembers();
  });
  socket.on("presence", (e) => {
    for (const room of state.rooms.values()) {
      const m = room.members.get(e.nick);
      if (m) m.away = e.status === "away" ? (e.message || "away") : null;
    }
    renderMembers();
  });
  socket.on("direct", (e) => announce(`Private message from ${e.from.nick}: ${e.text}`));
  socket.on("invited", (e) => announce(`${e.by.nick} invited you to ${e.room}.`));
}

async function connected() {
  state.online = true;
  renderStatus();
  let list;
  try {
    list = await socket.request("rooms");
  } catch (err) {
    if (state.screen) state.screen.status.error(`Chat: ${err.message}`);
    return;
  }
  state.directory = list.rooms || [];
  const mine = state.directory.filter((r) => r.member).map((r) => r.room);
  for (const name of mine) roomState(name);
  if (state.current && !mine.includes(state.current) && state.rooms.has(state.current)) mine.push(state.current);
  for (const name of mine) {
    try {
      await joinRoom(name, false);
    } catch (err) {
      if (err.code !== "already_member") state.rooms.delete(name);
    }
  }
  renderRooms();
  // Fill what was missed while disconnected, then (re)load the open room.
  for (const room of state.rooms.values()) {
    if (room.loaded && room.messages.length) fillGap(room);
  }
  if (state.current && state.screen) showRoom();
}

async function joinRoom(name, create) {
  const reply = await socket.request(create ? "create" : "join", { room: name });
  const room = roomState(reply.room || name);
  room.joined = true;
  room.topic = reply.topic || null;
  room.members = new Map((reply.members || []).map((m) => [m.nick, m]));
  return room;
}

function received(message) {
  const room = state.rooms.get(message.room);
  if (!room) return;
  if (room.ids.has(message.id)) return;
  const last = room.messages[room.messages.length - 1];
  room.ids.add(message.id);
  if (!last || message.seq > last.seq) {
    room.messages.push(message);
    if (message.room === state.current && state.screen) appendMessage(message);
  } else {
    room.messages.push(message);
    room.messages.sort((a, b) => a.seq - b.seq);
    if (message.room === state.current && state.screen) renderLog(false);
  }
  if (message.room !== state.current || !state.screen) {
    room.unread += 1;
    renderRooms();
  }
}

function merge(room, messages) {
  let added = 0;
  for (const m of messages) {
    if (room.ids.has(m.id)) continue;
    room.ids.add(m.id);
    room.messages.push(m);
    added += 1;
  }
  room.messages.sort((a, b) => a.seq - b.seq);
  return added;
}

async function loadNewest(room) {
  if (room.loading) return;
  room.loading = true;
  try {
    const page = await socket.request("history", { room: room.name, limit: PAGE });
    merge(room, page.messages || []);
    room.more = !!page.more;
    room.loaded = true;
  } finally {
    room.loading = false;
  }
}

async function loadOlder(room) {
  if (room.loading || !room.more || !room.messages.length) return 0;
  room.loading = true;
  try {
    const page = await socket.request("history", { room: room.name, before: room.messages[0].id, limit: PAGE });
    room.more = !!page.more;
    return merge(room, page.messages || []);
  } finally {
    room.loading = false;
  }
}

async function fillGap(room) {
  for (let i = 0; i < GAP_PAGES_MAX; i++) {
    const last = room.messages[room.messages.length - 1];
    let page;
    try {
      page = await socket.request("history", { room: room.name, after: last.id, limit: PAGE });
    } catch (err) { return; }
    const added = merge(room, page.messages || []);
    if (added && room.name === state.current && state.screen) renderLog(true);
    if (!page.more || !added) return;
  }
}

// ---- rendering ------------------------------------------------------------------------------------

export async function render(main, route, { same }) {
  const name = route.parts[0] ? normalize(route.parts[0]) : null;
  state.current = name;
  if (!state.screen || !same) buildScreen(main);
  state.screen.root.dataset.pane = name ? "room" : "rooms";
  renderRooms();
  renderStatus();
  if (name) {
    document.title = `${name} – tidings`;
    await showRoom();
    return state.screen.heading;
  }
  document.title = "Chat – tidings";
  replace(state.screen.room, h("div", { class: "reader-empty" }, state.screen.heading, h("p", {}, "Choose a room, or join one by name.")));
  state.screen.heading.textContent = "Chat";
  replace(state.screen.members);
  return state.screen.roomsHeading;
}

function buildScreen(main) {
  const roomList = h("ul", { class: "room-list" });
  const roomName = field("Room name", { name: "room", placeholder: "#room", required: true, maxlength: "64", autocapitalize: "none", spellcheck: "false" });
  const status = statusLine();
  const joinForm = h("form", { class: "inline-form join" }, roomName.el,
    h("button", { type: "submit", value: "join" }, "Join"),
    h("button", { type: "submit", value: "create" }, "Create"), status.el);
  joinForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = normalize(roomName.input.value);
    if (!name) return;
    const create = e.submitter && e.submitter.value === "create";
    status.clear();
    try {
      await joinRoom(name, create);
      roomName.input.value = "";
      go(`#/chat/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err.code === "already_member") go(`#/chat/${encodeURIComponent(name)}`);
      else status.error(err.code === "room_exists" ? `${name} exists already: join it instead.` : err.message);
    }
  });
  const directory = h("ul", { class: "directory" });
  const browse = h("details", { class: "manage" }, h("summary", {}, "All rooms"), directory);
  browse.addEventListener("toggle", async () => {
    if (!browse.open) return;
    try {
      const list = await socket.request("rooms");
      state.directory = list.rooms || [];
    } catch (err) { /* shows the last list */ }
    renderDirectory();
  });
  const awayButton = h("button", { type: "button", "aria-pressed": "false" }, "Away");
  awayButton.addEventListener("click", async () => {
    try {
      await socket.request("presence", state.away ? { status: "online" } : { status: "away", message: "away" });
      state.away = !state.away;
      awayButton.setAttribute("aria-pressed", String(state.away));
    } catch (err) { status.error(err.message); }
  });
  const roomsHeading = h("h1", { class: "pane-title", tabindex: "-1" }, "Rooms");
  const connection = h("p", { class: "connection", role: "status" });
  const rooms = h("nav", { class: "rooms", "aria-label": "Rooms" }, roomsHeading, connection, roomList, joinForm, browse,
    h("div", { class: "presence-toggle" }, awayButton));
  const heading = h("h1", { tabindex: "-1", id: "room-title" });
  const room = h("section", { class: "room", "aria-labelledby": "room-title" });
  const members = h("aside", { class: "members", "aria-label": "Members" });
  const root = h("div", { class: "chat" }, rooms, room, members);
  replace(main, root);
  state.screen = { root, roomList, rooms, roomsHeading, connection, room, members, heading, status, directory };
}

function renderStatus() {
  if (!state.screen) return;
  state.screen.connection.textContent = state.online ? "" : "Connecting…";
}

function renderRooms() {
  const s = state.screen;
  if (!s) return;
  const names = [...state.rooms.keys()].sort();
  if (!names.length) {
    replace(s.roomList, h("li", { class: "empty" }, "You are in no room yet."));
    return;
  }
  keepFocus(s.roomList, () => replace(s.roomList, names.map((name) => {
    const room = state.rooms.get(name);
    return h("li", {}, h("a", { href: `#/chat/${encodeURIComponent(name)}`, "aria-current": name === state.current ? "page" : null },
      h("span", { class: "room-name" }, name),
      room.unread ? h("span", { class: "count" }, String(room.unread), h("span", { class: "sr-only" }, " unread")) : null));
  })));
}

function renderDirectory() {
  const s = state.screen;
  if (!s) return;
  if (!state.directory.length) {
    replace(s.directory, h("li", { class: "empty" }, "No rooms yet."));
    return;
  }
  replace(s.directory, state.directory.map((r) => h("li", {},
    h("a", { href: `#/chat/${encodeURIComponent(r.room)}` }, r.room), " ",
    h("span", { class: "meta" }, `${r.members} here${r.topic ? ` · ${r.topic}` : ""}`))));
}

async function showRoom() {
  const s = state.screen;
  const name = state.current;
  const room = state.rooms.get(name);
  s.heading.textContent = name;
  if (!room || !room.joined) {
    const join = h("button", { type: "button", class: "primary" }, `Join ${name}`);
    const status = statusLine();
    join.addEventListener("click", async () => {
      try {
        await joinRoom(name, false);
        renderRooms();
        await showRoom();
        s.heading.focus();
      } catch (err) { status.error(err.message); }
    });
    replace(s.room, h("div", { class: "reader-empty" }, h("a", { class: "back", href: "#/chat" }, "All rooms"), s.heading,
      !state.online ? h("p", {}, "Connecting…") : [h("p", {}, `You are not in ${name}.`), join, status.el]));
    replace(s.members);
    return;
  }
  room.unread = 0;
  renderRooms();
  const older = h("button", { type: "button", class: "older" }, "Load older messages");
  const log = h("ol", { class: "log", role: "log", "aria-label": `Messages in ${name}`, tabindex: "0" });
  const text = h("input", { id: "chat-text", name: "text", autocomplete: "off", maxlength: "4096", required: true });
  const status = statusLine();
  const composer = h("form", { class: "composer" },
    h("label", { for: "chat-text", class: "sr-only" }, `Message ${name}`), text,
    h("button", { type: "submit", class: "primary" }, "Send"), status.el);
  composer.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = text.value;
    if (!value.trim()) return;
    status.clear();
    const me = value.match(/^\/me (.+)$/);
    try {
      const reply = await socket.request("send", me ? { room: name, text: me[1], kind: "action" } : { room: name, text: value });
      text.value = "";
      if (reply.message) received(reply.message);
    } catch (err) { status.error(err.message); }
    text.focus();
  });
  const leaveButton = h("button", { type: "button" }, "Leave room");
  leaveButton.addEventListener("click", async () => {
    try {
      await socket.request("leave", { room: name });
    } catch (err) {
      if (err.code !== "not_member") { status.error(err.message); return; }
    }
    state.rooms.delete(name);
    announce(`Left ${name}.`);
    go("#/chat");
  });
  const topic = h("p", { class: "topic" });
  replace(s.room,
    h("header", { class: "room-head" }, h("a", { class: "back", href: "#/chat" }, "All rooms"), s.heading, topic, leaveButton),
    older, log, composer);
  Object.assign(s, { older, log, text, topic });
  older.addEventListener("click", () => scrollBack());
  log.addEventListener("scroll", () => { if (log.scrollTop < 40) scrollBack(); });
  renderRoomHead();
  renderMembers();
  if (!room.loaded) {
    older.hidden = true;
    try { await loadNewest(room); } catch (err) { status.error(err.message); }
  }
  if (state.current !== name || state.screen !== s) return;
  renderLog(true);
}

async function scrollBack() {
  const s = state.screen;
  const room = state.rooms.get(state.current);
  if (!s || !room || !room.more || room.loading) return;
  const before = s.log.scrollHeight - s.log.scrollTop;
  s.older.disabled = true;
  let added = 0;
  try { added = await loadOlder(room); } catch (err) { /* the button stays */ }
  if (state.screen !== s || state.current !== room.name) return;
  s.older.disabled = false;
  renderLog(false);
  s.log.scrollTop = s.log.scrollHeight - before;
  if (added) announce(`${added} older message${added === 1 ? "" : "s"} loaded.`);
}

function messageItem(m) {
  const when = new Date(m.at_ms);
  const mine = m.from && m.from.nick === myNick();
  return h("li", { class: `msg kind-${m.kind || "text"}${mine ? " mine" : ""}`, dataset: { seq: m.seq, id: m.id } },
    h("span", { class: "who" }, m.kind === "action" ? `* ${m.from.nick}` : m.from.nick),
    h("time", { datetime: when.toISOString(), title: longTime(m.at_ms) }, shortTime(m.at_ms)),
    h("span", { class: "text" }, m.text));
}

function renderLog(toBottom) {
  const s = state.screen;
  const room = state.rooms.get(state.current);
  if (!s || !s.log || !room) return;
  replace(s.log, room.messages.length ? room.messages.map(messageItem) : h("li", { class: "empty" }, "No messages yet. Say hello."));
  s.older.hidden = !room.more;
  if (toBottom) s.log.scrollTop = s.log.scrollHeight;
}

function appendMessage(m) {
  const s = state.screen;
  if (!s || !s.log) return;
  const nearBottom = s.log.scrollHeight - s.log.scrollTop - s.log.clientHeight < 80;
  const empty = s.log.querySelector(".empty");
  if (empty) empty.remove();
  s.log.append(messageItem(m));
  if (nearBottom || (m.from && m.from.nick === myNick())) s.log.scrollTop = s.log.scrollHeight;
}

function renderRoomHead() {
  const s = state.screen;
  const room = state.rooms.get(state.current);
  if (!s || !s.topic || !room) return;
  s.topic.textContent = room.topic && room.topic.text ? room.topic.text : "";
  s.topic.hidden = !s.topic.textContent;
}

function renderMembers() {
  const s = state.screen;
  const room = state.current && state.rooms.get(state.current);
  if (!s) return;
  if (!room || !room.joined) { replace(s.members); return; }
  const members = [...room.members.values()].sort((a, b) => a.nick.localeCompare(b.nick));
  replace(s.members,
    h("h2", { class: "pane-title" }, `Members (${members.length})`),
    h("ul", { class: "member-list" }, members.map((m) => h("li", { class: m.away ? "away" : "online" },
      h("span", { class: "presence", "aria-hidden": "true" }, m.away ? "◐" : "●"),
      h("span", { class: "nick" }, m.operator ? `@${m.nick}` : m.voiced ? `+${m.nick}` : m.nick),
      h("span", { class: "sr-only" }, m.operator ? ", operator" : ""),
      h("span", { class: "state" }, m.away ? `away: ${m.away}` : "online"),
      m.via && m.via !== "web" ? h("span", { class: "via" }, `via ${m.via}`) : null))));
}
