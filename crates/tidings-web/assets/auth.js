// Sign-in, sign-up (an emailed code, then the account) and password reset (a code sent to the
// recovery address, then the new password).

import { h, replace, field, statusLine } from "./dom.js";
import { api, explain } from "./api.js";
import { go, signedIn } from "./app.js";

/** A note and a user name carried to the sign-in screen (after a reset). */
let flash = null;

export function render(main, route) {
  if (route.name === "signup") return signup(main);
  if (route.name === "reset") return reset(main);
  return signin(main);
}

function card(title, ...body) {
  const heading = h("h1", { tabindex: "-1" }, title);
  return { heading, el: h("section", { class: "card", "aria-labelledby": "auth-title" }, heading, ...body) };
}

async function createSession(user, password) {
  const info = await api("POST", "/session", { user, password, mode: "cookie" }, { quiet401: true });
  signedIn(info);
  go("#/mail/INBOX");
}

function busy(form, on) {
  for (const el of form.querySelectorAll("button, input")) el.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

function signin(main) {
  const user = field("Address or user name", { name: "user", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const status = statusLine();
  if (flash) {
    status.note(flash.note);
    user.input.value = flash.user || "";
    flash = null;
  }
  const form = h("form", { class: "stack", novalidate: false }, user.el, password.el, status.el,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    busy(form, true);
    try {
      await createSession(user.input.value.trim(), password.input.value);
    } catch (err) {
      busy(form, false);
      status.error(err.status === 401 ? "Wrong address or password." : explain(err));
      password.input.select();
    }
  });
  const { heading, el } = card("Sign in", form,
    h("p", { class: "alt" }, "No account yet? ", h("a", { href: "#/signup" }, "Create one"), "."),
    h("p", { class: "alt" }, h("a", { href: "#/reset" }, "Forgot your password?")));
  heading.id = "auth-title";
  replace(main, el);
  return user.input.value ? password.input : heading;
}

function signup(main) {
  const email = field("Your current email address", { name: "email", type: "email", autocomplete: "email", required: true },
    "We send a six-digit code there; it also becomes your recovery address.");
  const status1 = statusLine();
  const send = h("button", { type: "submit" }, "Send code");
  const form1 = h("form", { class: "stack", id: "signup-email" }, email.el, status1.el, send);

  const code = field("Code from the email", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true });
  const address = field("New address", { name: "address", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" },
    "A name such as alice, or a full address on this server.");
  const password = field("Password", { name: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: "8" }, "At least 8 characters.");
  const confirm = field("Password again", { name: "confirm-password", type: "password", autocomplete: "new-password", required: true });
  const status2 = statusLine();
  const form2 = h("form", { class: "stack", id: "signup-account", hidden: true }, code.el, address.el, password.el, confirm.el, status2.el,
    h("button", { type: "submit", class: "primary" }, "Create account"));

  address.input.addEventListener("change", async () => {
    const value = address.input.value.trim();
    if (!value) return;
    try {
      const r = await api("GET", `/accounts/exists?address=${encodeURIComponent(value)}`, undefined, { quiet401: true });
      if (r && r.exists) status2.error(`${r.address || value} is taken; choose another.`);
      else status2.clear();
    } catch (err) { /* checked again on submit */ }
  });

  form1.addEventListener("submit", async (e) => {
    e.preventDefault();
    status1.clear();
    busy(form1, true);
    try {
      await api("POST", "/accounts/codes", { email: email.input.value.trim() }, { quiet401: true });
      status1.note(`Code sent to ${email.input.value.trim()}. It is valid for 10 minutes.`);
      send.textContent = "Send another code";
      form2.hidden = false;
      busy(form1, false);
      code.input.focus();
    } catch (err) {
      busy(form1, false);
      status1.error(explain(err));
    }
  });
  form2.addEventListener("submit", async (e) => {
    e.preventDefault();
    status2.clear();
    if (password.input.value !== confirm.input.value) {
      status2.error("The passwords differ.");
      confirm.input.focus();
      return;
    }
    busy(form2, true);
    try {
      const r = await api("POST", "/accounts", {
        address: address.input.value.trim(),
        password: password.input.value,
        email: email.input.value.trim(),
        code: code.input.value.trim(),
      }, { quiet401: true });
      await createSession((r && (r.address || r.account)) || address.input.value.trim(), password.input.value);
    } catch (err) {
      busy(form2, false);
      status2.error(err.code === "invalid_code" ? "That code is wrong or has expired." : err.code === "exists" ? "That address is taken; choose another." : explain(err));
    }
  });
  const { heading, el } = card("Create an account", form1, form2,
    h("p", { class: "alt" }, "Have an account? ", h("a", { href: "#/signin" }, "Sign in"), "."));
  heading.id = "auth-title";
  replace(main, el);
  return heading;
}

function reset(main) {
  const address = field("Your address", { name: "address", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const status1 = statusLine();
  const send = h("button", { type: "submit" }, "Send code");
  const form1 = h("form", { class: "stack", id: "reset-address" }, address.el, status1.el, send);

  const code = field("Code from the email", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", required: true });
  const password = field("New password", { name: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: "8" }, "At least 8 characters.");
  const confirm = field("New password again", { name: "confirm-password", type: "password", autocomplete: "new-password", required: true });
  const status2 = statusLine();
  const form2 = h("form", { class: "stack", id: "reset-password", hidden: true }, code.el, password.el, confirm.el, status2.el,
    h("button", { type: "submit", class: "primary" }, "Set password"));

  form1.addEventListener("submit", async (e) => {
    e.preventDefault();
    status1.clear();
    busy(form1, true);
    try {
      await api("POST", "/accounts/password-reset/code", { address: address.input.value.trim() }, { quiet401: true });
      status1.note("If the account exists, a code is on its way to its recovery address.");
      send.textContent = "Send another code";
      form2.hidden = false;
      busy(form1, false);
      code.input.focus();
    } catch (err) {
      busy(form1, false);
      status1.error(explain(err));
    }
  });
  form2.addEventListener("submit", async (e) => {
    e.preventDefault();
    status2.clear();
    if (password.input.value !== confirm.input.value) {
      status2.error("The passwords differ.");
      confirm.input.focus();
      return;
    }
    busy(form2, true);
    try {
      await api("POST", "/accounts/password-reset", {
        address: address.input.value.trim(),
        code: code.input.value.trim(),
        password: password.input.value,
      }, { quiet401: true });
      flash = { note: "Password changed. Sign in with the new one.", user: address.input.value.trim() };
      go("#/signin");
    } catch (err) {
      busy(form2, false);
      status2.error(err.code === "invalid_code" ? "That code is wrong or has expired." : explain(err));
    }
  });
  const { heading, el } = card("Reset your password", form1, form2,
    h("p", { class: "alt" }, h("a", { href: "#/signin" }, "Back to sign in")));
  heading.id = "auth-title";
  replace(main, el);
  return heading;
}
