// Webmail: folders with unread counts, a paged message list, search, the reader (HTML mail only in
// a sandboxed frame), the composer, folder management; live updates from the socket's `mail` and
// `mailboxes` events.

import { h, replace, field, statusLine, announce, shortTime, longTime, humanSize, keepFocus } from "./dom.js";
import { api, seg, explain } from "./api.js";
import { go, session } from "./app.js";

const PER_PAGE = 25;
/** The largest total of attachments the composer takes (the server has its own bound too). */
const ATTACHMENTS_MAX_BYTES = 20 * 1024 * 1024;

const ROLE_NAMES = { inbox: "Inbox", sent: "Sent", drafts: "Drafts", trash: "Trash", junk: "Junk", archive: "Archive" };
const ROLE_ORDER = ["inbox", "drafts", "sent", "archive", "junk", "trash"];

const state = {
  folders: [],
  folder: "INBOX",
  page: 1,
  query: "",
  uid: null,
  list: null,
  message: null,
  screen: null,
  draft: null,
  refreshTimer: null,
};

/** Forgets everything (sign-out). */
export function reset() {
  Object.assign(state, { folders: [], folder: "INBOX", page: 1, query: "", uid: null, list: null, message: null, screen: null, draft: null });
}

export function leave() {
  state.screen = null;
}

/** Subscribes to the socket's mail events. */
export function init(socket) {
  socket.on("mail", (e) => {
    const who = personText(e.from);
    announce(`New mail${who ? ` from ${who}` : ""}: ${e.subject || "(no subject)"}`);
    scheduleRefresh();
  });
  socket.on("mailboxes", () => scheduleRefresh());
  socket.on("open", () => { if (state.screen) scheduleRefresh(); });
}

/** Refreshes folder counts and the open list once for a burst of events. */
function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(async () => {
    state.refreshTimer = null;
    if (!state.screen) return;
    await loadFolders();
    await loadList(false);
  }, 150);
}

// ---- shapes ---------------------------------------------------------------------------------------

function arrayOf(data, key) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  return [];
}

/** "Name <address>" or the address, from a string, `{name, address}` or a list of them. */
export function personText(p) {
  if (!p) return "";
  if (Array.isArray(p)) return p.map(personText).filter(Boolean).join(", ");
  if (typeof p === "string") return p;
  const address = p.address || p.email || "";
  return p.name ? (address ? `${p.name} <${address}>` : p.name) : address;
}

function personShort(p) {
  if (!p) return "";
  if (Array.isArray(p)) return p.map(personShort).filter(Boolean).join(", ");
  if (typeof p === "string") return p;
  return p.name || p.address || "";
}

function addresses(p) {
  if (!p) return [];
  if (Array.isArray(p)) return p.flatMap(addresses);
  if (typeof p === "string") return [p];
  return p.address ? [p.address] : [];
}

function timeOf(m) {
  if (m.date_ms) return m.date_ms;
  const s = m.date_at ?? m.received_at ?? m.internal_date_at ?? m.date;
  return typeof s === "number" ? s * 1000 : (s ? Date.parse(s) : 0);
}

function folderLabel(f) {
  return (f.role && f.name.toUpperCase() === "INBOX") ? "Inbox" : f.name;
}

function folderByName(name) {
  return state.folders.find((f) => f.name === name);
}

function roleFolder(role) {
  const f = state.folders.find((x) => x.role === role);
  return f ? f.name : null;
}

function splitAddresses(text) {
  return text.split(/[,;\n]/).map((s) => s.trim()).filter(Boolean);
}

// ---- rendering ------------------------------------------------------------------------------------

export async function render(main, route, { same }) {
  if (route.name === "compose") {
    state.screen = null;
    return renderCompose(main);
  }
  const folder = route.parts[0] || "INBOX";
  const uid = route.parts[1] ? Number(route.parts[1]) : null;
  const page = Math.max(1, Number(route.query.get("page")) || 1);
  const query = route.query.get("q") || "";
  const listChanged = !state.screen || folder !== state.folder || page !== state.page || query !== state.query;
  Object.assign(state, { folder, page, query, uid });
  if (!state.screen || !same) buildScreen(main);
  state.screen.root.dataset.pane = uid ? "reader" : "list";
  const folderLoad = loadFolders();
  if (listChanged) await loadList(true);
  else markCurrent();
  await folderLoad;
  if (uid) {
    await loadMessage(folder, uid);
    return state.screen.readerHeading;
  }
  renderEmptyReader();
  return state.screen.listHeading;
}

function buildScreen(main) {
  const folderList = h("ul", { class: "folder-list" });
  const newFolder = field("New folder name", { name: "folder-name", required: true, maxlength: "200" });
  const newFolderStatus = statusLine();
  const newFolderForm = h("form", { class: "inline-form" }, newFolder.el, h("button", { type: "submit" }, "Create folder"), newFolderStatus.el);
  newFolderForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = newFolder.input.value.trim();
    if (!name) return;
    try {
      await api("POST", "/mail/folders", { name });
      newFolder.input.value = "";
      newFolderStatus.note(`Created ${name}.`);
      await loadFolders();
    } catch (err) { newFolderStatus.error(explain(err)); }
  });
  const folders = h("nav", { class: "folders", "aria-label": "Folders" },
    h("a", { class: "button primary compose-link", href: "#/compose", onclick: () => { state.draft = null; } }, "Compose"),
    h("h2", { class: "pane-title" }, "Folders"),
    folderList,
    h("details", { class: "manage" }, h("summary", {}, "New folder"), newFolderForm));

  const listHeading = h("h1", { tabindex: "-1", id: "list-title" });
  const search = field("Search mail", { type: "search", name: "q", placeholder: "Search mail", maxlength: "200" });
  search.el.classList.add("search-field");
  const searchForm = h("form", { role: "search", class: "search" }, search.el, h("button", { type: "submit" }, "Search"));
  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = search.input.value.trim();
    go(`#/mail/${seg(state.folder)}${q ? `?q=${encodeURIComponent(q)}` : ""}`);
  });
  const folderTools = h("div", { class: "folder-tools" });
  const listStatus = statusLine();
  const messageList = h("ul", { class: "message-list", "aria-labelledby": "list-title" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const list = h("section", { class: "list", "aria-labelledby": "list-title" },
    h("div", { class: "list-head" }, listHeading, folderTools), searchForm, listStatus.el, messageList, pager);

  const readerHeading = h("h2", { tabindex: "-1", id: "reader-title" });
  const reader = h("article", { class: "reader", "aria-labelledby": "reader-title" });
  const root = h("div", { class: "mail" }, folders, list, reader);
  replace(main, root);
  state.screen = { root, folderList, listHeading, search, folderTools, listStatus, messageList, pager, reader, readerHeading };
}

async function loadFolders() {
  try {
    const data = await api("GET", "/mail/folders");
    state.folders = arrayOf(data, "folders").slice().sort((a, b) => {
      const ra = ROLE_ORDER.indexOf(a.role), rb = ROLE_ORDER.indexOf(b.role);
      if (ra !== rb) return (ra < 0 ? 99 : ra) - (rb < 0 ? 99 : rb);
      return a.name.localeCompare(b.name);
    });
  } catch (err) {
    if (state.screen) state.screen.listStatus.error(`Folders: ${explain(err)}`);
    return;
  }
  renderFolders();
}

function renderFolders() {
  const s = state.screen;
  if (!s) return;
  keepFocus(s.folderList, () => replace(s.folderList, state.folders.map((f) => {
    const unread = f.unread || 0;
    const link = h("a", { href: `#/mail/${seg(f.name)}`, class: unread ? "has-unread" : null, dataset: { folder: f.name } },
      h("span", { class: "folder-name" }, folderLabel(f)),
      unread ? h("span", { class: "count" }, String(unread), h("span", { class: "sr-only" }, " unread")) : null);
    return h("li", {}, link);
  })));
  markCurrent();
  renderFolderTools();
}

function markCurrent() {
  const s = state.screen;
  if (!s) return;
  for (const a of s.folderList.querySelectorAll("a")) {
    if (a.dataset.folder === state.folder && !state.query) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const a of s.messageList.querySelectorAll("a")) {
    if (Number(a.dataset.uid) === state.uid && a.dataset.folder === state.folder) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  }
}

function renderFolderTools() {
  const s = state.screen;
  const f = folderByName(state.folder);
  // A live refresh must not close a rename form being typed in: rebuild only for another folder.
  const key = f && !f.role && !state.query ? f.name : "";
  if (s.toolsKey === key) return;
  s.toolsKey = key;
  if (!key) { replace(s.folderTools); return; }
  const rename = h("button", { type: "button", "aria-expanded": "false" }, "Rename folder");
  const remove = h("button", { type: "button", class: "danger" }, "Delete folder");
  const name = field("New name", { name: "rename", value: f.name, required: true, maxlength: "200" });
  const status = statusLine();
  const form = h("form", { class: "inline-form", hidden: true }, name.el, h("button", { type: "submit" }, "Save name"), status.el);
  rename.addEventListener("click", () => {
    form.hidden = !form.hidden;
    rename.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) name.input.focus();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const to = name.input.value.trim();
    if (!to || to === f.name) return;
    try {
      await api("PATCH", `/mail/folders/${seg(f.name)}`, { name: to });
      go(`#/mail/${seg(to)}`);
    } catch (err) { status.error(explain(err)); }
  });
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the folder ${f.name} and every message in it?`)) return;
    try {
      await api("DELETE", `/mail/folders/${seg(f.name)}`);
      go("#/mail/INBOX");
    } catch (err) { s.listStatus.error(explain(err)); }
  });
  replace(s.folderTools, rename, remove, form);
}

async function loadList(initial) {
  const s = state.screen;
  if (!s) return;
  const f = folderByName(state.folder);
  s.listHeading.textContent = state.query ? `Search: ${state.query}` : (f ? folderLabel(f) : (state.folder.toUpperCase() === "INBOX" ? "Inbox" : state.folder));
  document.title = `${s.listHeading.textContent} – tidings`;
  if (initial) s.search.input.value = state.query;
  let messages, total = null;
  try {
    if (state.query) {
      const data = await api("GET", `/mail/search?q=${encodeURIComponent(state.query)}&folder=${seg(state.folder)}`);
      messages = arrayOf(data, "messages");
    } else {
      const data = await api("GET", `/mail/folders/${seg(state.folder)}/messages?page=${state.page}&per_page=${PER_PAGE}`);
      messages = arrayOf(data, "messages");
      total = data && typeof data.total === "number" ? data.total : null;
    }
  } catch (err) {
    s.listStatus.error(explain(err));
    return;
  }
  if (state.screen !== s) return;
  s.listStatus.clear();
  state.list = messages;
  renderList(messages, total);
}

function renderList(messages, total) {
  const s = state.screen;
  keepFocus(s.messageList, () => fillList(messages));
  markCurrent();
  renderPager(messages, total);
}

function fillList(messages) {
  const s = state.screen;
  if (!messages.length) {
    replace(s.messageList, h("li", { class: "empty" }, state.query ? "Nothing matches." : "No messages here."));
  } else {
    replace(s.messageList, messages.map((m) => {
      const folder = m.folder || state.folder;
      const seen = m.seen !== false && !(m.flags && !m.flags.includes("\\Seen"));
      const when = timeOf(m);
      const hasAttachments = m.has_attachments || (Array.isArray(m.attachments) ? m.attachments.length > 0 : m.attachments > 0);
      const href = `#/mail/${seg(folder)}/${m.uid}${state.query ? `?q=${encodeURIComponent(state.query)}` : ""}`;
      return h("li", {},
        h("a", { href, class: seen ? "msg" : "msg unread", dataset: { uid: m.uid, folder } },
          h("span", { class: "msg-from" }, seen ? null : h("span", { class: "sr-only" }, "Unread: "), personShort(state.folder === roleFolder("sent") ? m.to : m.from) || "(nobody)"),
          h("span", { class: "msg-subject" }, m.subject || "(no subject)"),
          h("span", { class: "msg-meta" },
            hasAttachments ? h("span", { class: "clip", title: "Has attachments" }, h("span", { class: "sr-only" }, "with attachments")) : null,
            m.flagged ? h("span", { class: "flag", title: "Flagged" }, "★", h("span", { class: "sr-only" }, "flagged")) : null,
            h("time", { datetime: when ? new Date(when).toISOString() : null }, shortTime(when))),
          m.preview ? h("span", { class: "msg-preview" }, m.preview) : null));
    }));
  }
}

function renderPager(messages, total) {
  const s = state.screen;
  replace(s.pager);
  if (!state.query && total !== null && total > PER_PAGE) {
    const first = (state.page - 1) * PER_PAGE + 1;
    const last = Math.min(total, state.page * PER_PAGE);
    const base = `#/mail/${seg(state.folder)}`;
    s.pager.append(
      state.page > 1 ? h("a", { href: `${base}?page=${state.page - 1}`, class: "button" }, "Newer") : h("span"),
      h("span", { class: "range" }, `${first}–${last} of ${total}`),
      last < total ? h("a", { href: `${base}?page=${state.page + 1}`, class: "button" }, "Older") : h("span"));
  } else if (!state.query && total === null && messages.length >= PER_PAGE) {
    const base = `#/mail/${seg(state.folder)}`;
    s.pager.append(state.page > 1 ? h("a", { href: `${base}?page=${state.page - 1}`, class: "button" }, "Newer") : h("span"),
      h("a", { href: `${base}?page=${state.page + 1}`, class: "button" }, "Older"));
  }
}

function renderEmptyReader() {
  const s = state.screen;
  s.readerHeading.textContent = "No message open";
  replace(s.reader, h("div", { class: "reader-empty" }, s.readerHeading, h("p", {}, "Choose a message from the list.")));
  state.message = null;
}

function listHref() {
  const q = state.query ? `?q=${encodeURIComponent(state.query)}` : (state.page > 1 ? `?page=${state.page}` : "");
  return `#/mail/${seg(state.folder)}${q}`;
}

async function loadMessage(folder, uid) {
  const s = state.screen;
  s.readerHeading.textContent = "Loading…";
  replace(s.reader, s.readerHeading);
  let m;
  try {
    m = await api("GET", `/mail/folders/${seg(folder)}/messages/${uid}`);
  } catch (err) {
    s.readerHeading.textContent = err.status === 404 ? "This message is gone" : "The message could not be opened";
    replace(s.reader, h("a", { class: "back", href: listHref() }, "Back to the list"), s.readerHeading, h("p", { role: "alert" }, explain(err)));
    return;
  }
  if (state.screen !== s || state.uid !== uid) return;
  state.message = { ...m, folder, uid };
  // Opening marks it seen: the counts change.
  loadFolders();
  for (const a of s.messageList.querySelectorAll("a.unread")) {
    if (Number(a.dataset.uid) === uid) a.classList.remove("unread");
  }
  renderMessage(state.message);
}

function renderMessage(m) {
  const s = state.screen;
  const headers = m.headers && !Array.isArray(m.headers) ? { ...m.headers, ...m } : m;
  s.readerHeading.textContent = headers.subject || "(no subject)";
  document.title = `${s.readerHeading.textContent} – tidings`;
  const when = timeOf(headers);
  const meta = h("dl", { class: "headers" },
    h("dt", {}, "From"), h("dd", { class: "from" }, personText(headers.from) || "(nobody)"),
    addresses(headers.to).length ? [h("dt", {}, "To"), h("dd", {}, personText(headers.to))] : null,
    addresses(headers.cc).length ? [h("dt", {}, "Cc"), h("dd", {}, personText(headers.cc))] : null,
    when ? [h("dt", {}, "Date"), h("dd", {}, h("time", { datetime: new Date(when).toISOString() }, longTime(when)))] : null);

  const actions = h("div", { class: "actions", role: "toolbar", "aria-label": "Message actions" },
    h("button", { type: "button", onclick: () => compose("reply", m) }, "Reply"),
    h("button", { type: "button", onclick: () => compose("reply-all", m) }, "Reply all"),
    h("button", { type: "button", onclick: () => compose("forward", m) }, "Forward"),
    h("button", { type: "button", onclick: () => markUnread(m) }, "Mark unread"),
    h("button", { type: "button", class: "danger", onclick: () => remove(m) }, "Delete"));
  const moveTarget = h("select", { id: "move-to", name: "move-to" },
    state.folders.filter((f) => f.name !== m.folder).map((f) => h("option", { value: f.name }, folderLabel(f))));
  const moveStatus = statusLine();
  const moveForm = h("form", { class: "inline-form move" },
    h("label", { for: "move-to" }, "Move to"), moveTarget, h("button", { type: "submit" }, "Move"), moveStatus.el);
  moveForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("POST", `/mail/folders/${seg(m.folder)}/messages/${m.uid}/move`, { to: moveTarget.value });
      announce(`Moved to ${moveTarget.value}.`);
      go(listHref());
      loadList(false);
    } catch (err) { moveStatus.error(explain(err)); }
  });

  const base = `/api/v1/mail/folders/${seg(m.folder)}/messages/${m.uid}`;
  let body;
  if (m.html) {
    const frame = h("iframe", { class: "html-body", sandbox: "allow-popups allow-popups-to-escape-sandbox", src: `${base}/html`, title: "Message content", referrerpolicy: "no-referrer" });
    const images = h("button", { type: "button", class: "images" }, "Show remote images");
    images.addEventListener("click", () => {
      frame.src = `${base}/html?images=allow`;
      images.disabled = true;
      images.textContent = "Remote images shown";
    });
    body = h("div", { class: "body html" }, m.has_remote_images ? images : null, frame);
  } else {
    body = h("div", { class: "body text" }, h("pre", { class: "text-body" }, m.text || ""));
  }
  const atts = Array.isArray(m.attachments) ? m.attachments : [];
  const attachments = atts.length ? h("section", { class: "attachments", "aria-label": "Attachments" },
    h("h3", {}, `Attachments (${atts.length})`),
    h("ul", {}, atts.map((a, i) => {
      const index = a.index ?? i;
      const name = a.filename || a.name || `attachment-${index + 1}`;
      return h("li", {}, h("a", { href: `${base}/attachments/${index}`, download: name }, name),
        " ", h("span", { class: "meta" }, [a.content_type, humanSize(a.size)].filter(Boolean).join(", ")));
    }))) : null;

  replace(s.reader, h("a", { class: "back", href: listHref() }, "Back to the list"), s.readerHeading, meta, actions, moveForm, attachments, body);
}

async function markUnread(m) {
  try {
    await api("PATCH", `/mail/folders/${seg(m.folder)}/messages/${m.uid}`, { seen: false });
    announce("Marked unread.");
    go(listHref());
    await loadFolders();
    await loadList(false);
  } catch (err) { announce(explain(err)); }
}

async function remove(m) {
  try {
    await api("DELETE", `/mail/folders/${seg(m.folder)}/messages/${m.uid}`);
    announce(m.folder === roleFolder("trash") ? "Deleted." : "Moved to Trash.");
    go(listHref());
    await loadFolders();
    await loadList(false);
  } catch (err) { announce(explain(err)); }
}

// ---- composing ------------------------------------------------------------------------------------

function quote(text) {
  return (text || "").split("\n").map((l) => `> ${l}`).join("\n");
}

function compose(kind, m) {
  const headers = m.headers && !Array.isArray(m.headers) ? { ...m.headers, ...m } : m;
  const subject = headers.subject || "";
  const ref = { folder: m.folder, uid: m.uid };
  const when = longTime(timeOf(headers));
  if (kind === "forward") {
    state.draft = {
      to: "", cc: "",
      subject: /^fwd?:/i.test(subject) ? subject : `Fwd: ${subject}`,
      text: `\n\n---------- Forwarded message ----------\nFrom: ${personText(headers.from)}\nDate: ${when}\nSubject: ${subject}\n\n${m.text || ""}`,
      forward_of: ref,
    };
  } else {
    const me = ((session.info && session.info.account) || "").toLowerCase();
    const replyTo = headers.reply_to && addresses(headers.reply_to).length ? headers.reply_to : headers.from;
    const to = addresses(replyTo);
    const cc = kind === "reply-all" ? addresses(headers.to).concat(addresses(headers.cc)).filter((a) => a.toLowerCase() !== me && !to.includes(a)) : [];
    state.draft = {
      to: to.join(", "), cc: cc.join(", "),
      subject: /^re:/i.test(subject) ? subject : `Re: ${subject}`,
      text: `\n\nOn ${when}, ${personText(headers.from)} wrote:\n${quote(m.text)}\n`,
      reply_to: ref,
    };
  }
  go("#/compose");
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(",") + 1));
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function renderCompose(main) {
  const draft = state.draft || { to: "", cc: "", subject: "", text: "" };
  state.draft = null;
  document.title = "New message – tidings";
  const heading = h("h1", { tabindex: "-1" }, draft.reply_to ? "Reply" : draft.forward_of ? "Forward" : "New message");
  const to = field("To", { name: "to", type: "text", value: draft.to, autocomplete: "email", required: true, autocapitalize: "none", spellcheck: "false" }, "Separate addresses with commas.");
  const cc = field("Cc", { name: "cc", type: "text", value: draft.cc, autocapitalize: "none", spellcheck: "false" });
  const subject = field("Subject", { name: "subject", value: draft.subject, maxlength: "998" });
  const text = field("Message", { tag: "textarea", name: "text", rows: "10" });
  text.input.value = draft.text;
  const files = field("Attach files", { name: "attachments", type: "file", multiple: true });
  const attached = [];
  let attachedBytes = 0;
  const attachedList = h("ul", { class: "attached", "aria-label": "Attached files" });
  const status = statusLine();
  const renderAttached = () => {
    replace(attachedList, attached.map((a, i) => h("li", {},
      h("span", {}, a.filename), " ", h("span", { class: "meta" }, humanSize(a.size)), " ",
      h("button", { type: "button", class: "small", "aria-label": `Remove ${a.filename}`, onclick: () => {
        attachedBytes -= attached[i].size;
        attached.splice(i, 1);
        renderAttached();
        files.input.focus();
      } }, "Remove"))));
  };
  files.input.addEventListener("change", async () => {
    for (const file of files.input.files) {
      if (attachedBytes + file.size > ATTACHMENTS_MAX_BYTES) {
        status.error(`${file.name} is too large: attachments may total ${humanSize(ATTACHMENTS_MAX_BYTES)}.`);
        continue;
      }
      try {
        const content = await readFile(file);
        attached.push({ filename: file.name, content_type: file.type || "application/octet-stream", content, size: file.size });
        attachedBytes += file.size;
      } catch (err) { status.error(`${file.name} could not be read.`); }
    }
    files.input.value = "";
    renderAttached();
    announce(`${attached.length} file${attached.length === 1 ? "" : "s"} attached.`);
  });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const form = h("form", { class: "compose stack" }, to.el, cc.el, subject.el, text.el, files.el, attachedList, status.el,
    h("div", { class: "buttons" }, send, h("a", { class: "button", href: "#/mail/INBOX" }, "Discard")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    const recipients = splitAddresses(to.input.value);
    if (!recipients.length) {
      status.error("Give at least one recipient.");
      to.input.focus();
      return;
    }
    const body = {
      to: recipients,
      cc: splitAddresses(cc.input.value),
      subject: subject.input.value,
      text: text.input.value,
      attachments: attached.map(({ filename, content_type, content }) => ({ filename, content_type, data_base64: content })),
    };
    if (draft.reply_to) body.reply_to = draft.reply_to;
    if (draft.forward_of) body.forward_of = draft.forward_of;
    send.disabled = true;
    form.setAttribute("aria-busy", "true");
    status.note("Sending…");
    try {
      await api("POST", "/mail/send", body);
      announce("Message sent.");
      go("#/mail/INBOX");
    } catch (err) {
      send.disabled = false;
      form.setAttribute("aria-busy", "false");
      status.error(explain(err));
    }
  });
  replace(main, h("section", { class: "card wide", "aria-labelledby": "compose-title" }, heading, form));
  heading.id = "compose-title";
  return draft.to ? text.input : (draft.forward_of ? to.input : heading);
}
