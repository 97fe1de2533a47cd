// The tidings web app: the shell, the session and the hash router.
//
// Routes: #/signin, #/signup, #/reset, #/mail/<folder>[/<uid>][?page=&q=], #/compose,
// #/chat[/<room>]. Each route change renders its view into <main> and moves focus to the view's
// heading (or what the view names), so keyboard and screen reader users land on the new content.

import { api, setCsrf, setUnauthenticatedHandler } from "./api.js";
import { socket } from "./socket.js";
import * as auth from "./auth.js";
import * as mail from "./mail.js";
import * as chat from "./chat.js";

/** The signed-in account (`{account, csrf_token, expires_at}`), or null. */
export const session = { info: null };

const main = document.getElementById("main");
let currentView = null;

/** The route of a hash: `{name, parts, query}`. */
export function parseRoute(hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?", 2);
  const parts = path.split("/").filter((p) => p !== "").map((p) => {
    try { return decodeURIComponent(p); } catch (e) { return p; }
  });
  return { name: parts[0] || "", parts: parts.slice(1), query: new URLSearchParams(search || "") };
}

/** Goes to a route (a hash such as "#/mail/INBOX"). */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const VIEWS = { signin: auth, signup: auth, reset: auth, mail, compose: mail, chat };
const PUBLIC = new Set(["signin", "signup", "reset"]);

async function route() {
  const r = parseRoute(location.hash);
  if (!session.info && !PUBLIC.has(r.name)) {
    if (location.hash !== "#/signin") { location.replace("#/signin"); return; }
  }
  if (session.info && (PUBLIC.has(r.name) || !VIEWS[r.name])) {
    location.replace("#/mail/INBOX");
    return;
  }
  const view = VIEWS[r.name] || auth;
  if (currentView && currentView !== view && currentView.leave) currentView.leave();
  const same = currentView === view;
  currentView = view;
  document.getElementById("nav-mail").toggleAttribute("aria-current", r.name === "mail" || r.name === "compose");
  if (r.name === "mail" || r.name === "compose") document.getElementById("nav-mail").setAttribute("aria-current", "page");
  document.getElementById("nav-chat").toggleAttribute("aria-current", r.name === "chat");
  if (r.name === "chat") document.getElementById("nav-chat").setAttribute("aria-current", "page");
  let focusTarget;
  try {
    focusTarget = await view.render(main, r, { same });
  } catch (e) {
    console.warn(e);
  }
  const target = focusTarget || main.querySelector("h1");
  if (target) {
    if (!target.hasAttribute("tabindex") && !/^(INPUT|BUTTON|A|TEXTAREA|SELECT)$/.test(target.tagName)) target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: false });
  }
}

function showShell() {
  const signedIn = !!session.info;
  document.getElementById("mainnav").hidden = !signedIn;
  document.getElementById("account").hidden = !signedIn;
  document.getElementById("account-name").textContent = signedIn ? session.info.account : "";
}

/** Records a new session (from POST or GET /session), starts the socket and goes on. */
export function signedIn(info) {
  session.info = info;
  setCsrf(info.csrf_token);
  showShell();
  socket.start();
}

function signedOut() {
  session.info = null;
  setCsrf(null);
  socket.stop();
  mail.reset();
  chat.reset();
  showShell();
}

async function signOut() {
  try { await api("DELETE", "/session"); } catch (e) { /* the session is gone either way */ }
  signedOut();
  go("#/signin");
}

function linkState(text) {
  document.getElementById("link-state").textContent = text;
}

async function start() {
  setUnauthenticatedHandler(() => {
    if (session.info) {
      signedOut();
      go("#/signin");
    }
  });
  document.getElementById("signout").addEventListener("click", signOut);
  socket.on("open", () => {
    linkState("");
    document.documentElement.dataset.link = "up";
  });
  socket.on("close", () => {
    document.documentElement.dataset.link = "down";
    if (session.info) linkState("Reconnecting…");
  });
  mail.init(socket);
  chat.init(socket);
  try {
    const info = await api("GET", "/session", undefined, { quiet401: true });
    signedIn(info);
  } catch (e) {
    session.info = null;
    showShell();
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
