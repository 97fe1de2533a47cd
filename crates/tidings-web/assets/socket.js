// The one WebSocket of the page (/ws, docs/chat-api.md). The session cookie logs it in; it carries
// chat requests and events, and the mail events (`mail`, `mailboxes`) of docs/web-api.md.
// It reconnects with exponential backoff (1 s doubling to 30 s, with jitter).

const REQUEST_TIMEOUT_MS = 20000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;

/** A chat error reply: `code` as in docs/chat-api.md. */
export class ChatError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

export class Socket {
  constructor() {
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.backoff = BACKOFF_MIN_MS;
    this.timer = null;
    this.stopped = true;
    this.ready = false;
    this.hello = null;
  }

  /** `fn(event)` for every event of `type`; "*" for all; "open"/"close" for the link. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, event) {
    for (const key of [type, "*"]) {
      for (const fn of this.listeners.get(key) || []) {
        try { fn(event); } catch (e) { console.warn("listener failed", e); }
      }
    }
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("message", (e) => this.receive(e.data));
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      for (const { reject, timer } of this.pending.values()) {
        clearTimeout(timer);
        reject(new ChatError("disconnected", "The connection was lost."));
      }
      this.pending.clear();
      this.emit("close", {});
      if (!this.stopped) {
        const wait = this.backoff * (0.75 + Math.random() / 2);
        this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
        this.timer = setTimeout(() => this.connect(), wait);
      }
    });
  }

  receive(data) {
    let frame;
    try { frame = JSON.parse(data); } catch (e) { return; }
    if (!frame || typeof frame !== "object") return;
    if ((frame.type === "ok" || frame.type === "error") && frame.id !== undefined && this.pending.has(frame.id)) {
      const { resolve, reject, timer } = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      clearTimeout(timer);
      if (frame.type === "ok") resolve(frame);
      else reject(new ChatError(frame.code, frame.message));
      return;
    }
    if (frame.type === "hello") {
      this.hello = frame;
      this.ready = true;
      this.backoff = BACKOFF_MIN_MS;
      this.emit("open", frame);
      return;
    }
    this.emit(frame.type, frame);
  }

  /** Sends a request; resolves with its `ok` reply, rejects with a ChatError. */
  request(type, fields = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new ChatError("disconnected", "Not connected; reconnecting."));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChatError("timeout", "The server did not answer."));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...fields, type, id }));
    });
  }
}

export const socket = new Socket();
