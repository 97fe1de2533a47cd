// DOM helpers. Every piece of text goes in through textContent or attributes set one by one:
// nothing here ever parses HTML, so content from mail or chat cannot become markup.

/**
 * Makes an element: `h("a", {href: "#/x", class: "link"}, "text", child)`.
 * Attributes: `class`, `for`, `on<Event>` (a listener), booleans (set when true), others as strings.
 * Children: strings (text nodes), nodes, arrays of either, null/undefined/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (as for `h`) to `el`. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A form field: a label tied to its input by id. */
let fieldSerial = 0;
export function field(label, attrs, hint) {
  const id = attrs.id || `f${++fieldSerial}`;
  const hintId = hint ? `${id}-hint` : null;
  const input = h(attrs.tag || "input", { ...attrs, tag: null, id, "aria-describedby": hintId });
  return {
    input,
    el: h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint", id: hintId }, hint) : null),
  };
}

/** Says `text` to screen readers (a polite live region) without moving focus. */
export function announce(text) {
  const live = document.getElementById("announcer");
  if (!live) return;
  live.textContent = "";
  // A fresh text node in a later task is what makes screen readers speak a repeated message.
  setTimeout(() => { live.textContent = text; }, 30);
}

/** A status line for a form: errors are role=alert, other notes are role=status. */
export function statusLine() {
  const el = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
  return {
    el,
    error(text) { el.className = "form-status error"; el.setAttribute("role", "alert"); el.textContent = text; },
    note(text) { el.className = "form-status note"; el.setAttribute("role", "status"); el.textContent = text; },
    clear() { el.className = "form-status"; el.textContent = ""; },
  };
}

/** Formats Unix seconds or milliseconds for a list: the time today, the date otherwise. */
export function shortTime(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}

/** Formats a time in full. */
export function longTime(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

/** A size in octets for people. */
export function humanSize(n) {
  if (n === undefined || n === null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Runs `render`, which rebuilds `container`'s children, and gives focus back to the link that had
 * it (found again by its href), so that a live refresh does not throw a keyboard user out.
 */
export function keepFocus(container, render) {
  const active = document.activeElement;
  const href = active && container.contains(active) ? active.getAttribute("href") : null;
  render();
  if (href) {
    const again = [...container.querySelectorAll("a[href]")].find((a) => a.getAttribute("href") === href);
    if (again) again.focus({ preventScroll: true });
  }
}
