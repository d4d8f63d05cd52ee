// The console's shared behaviour, loaded by every page (a module: no globals, no inline code).
// - api(): calls the JSON API with the session cookie and the CSRF token; renews an expired
//   session once and retries; sends the person to /login when the session is gone.
// - <form data-api="METHOD /api/v1/…">: sends the form as JSON (a multipart form as
//   multipart/form-data) to the API and shows the API's errors next to the fields (see
//   docs/console.md for the attributes).
// - data-confirm on a form: a confirmation dialog before it is sent.
// - data-copy="#id" on a button: copies that element's text.
// - <time datetime>: shown in the reader's time zone.
// - Renews the access cookie a minute before it expires, one tab at a time.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

// ---- session renewal ----

let renewing = null;

// Renews the session (once at a time in this tab, and one tab at a time). Resolves to true
// when the session is good.
export function renewSession() {
  if (renewing) return renewing;
  const run = async () => {
    const mine = Number(localStorage.getItem("palisade.expires") || 0);
    // Another tab may have just renewed it: nothing to do if the cookie is fresh.
    if (mine - Date.now() / 1000 > 120) return true;
    const res = await fetch("/session/refresh", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken() },
    });
    if (!res.ok) return false;
    const { expires_at } = await res.json();
    localStorage.setItem("palisade.expires", String(expires_at));
    schedule(expires_at);
    return true;
  };
  const locked = navigator.locks ? navigator.locks.request("palisade-refresh", run) : run();
  renewing = locked.finally(() => { renewing = null; });
  return renewing;
}

let timer = null;
function schedule(expiresAt) {
  if (!expiresAt) return;
  clearTimeout(timer);
  const wait = Math.max(5, expiresAt - Date.now() / 1000 - 60) * 1000;
  timer = setTimeout(() => renewSession(), Math.min(wait, 2 ** 31 - 1));
}

const expiresMeta = Number(document.querySelector('meta[name="session-expires"]')?.content || 0);
if (expiresMeta) {
  const known = Number(localStorage.getItem("palisade.expires") || 0);
  if (expiresMeta > known) localStorage.setItem("palisade.expires", String(expiresMeta));
  schedule(Math.max(expiresMeta, known));
}

function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

// ---- the API ----

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `The request failed (${status}).`);
    this.status = status;
    this.code = e.code || "";
    this.fields = e.fields || {};
  }
}

// Calls the JSON API. Resolves to the parsed body (or null for 204); rejects with ApiError.
// A FormData body is sent as multipart/form-data (the browser sets the boundary).
export async function api(method, path, body) {
  const multipart = body instanceof FormData;
  const send = () =>
    fetch(path, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(body === undefined || multipart ? {} : { "Content-Type": "application/json" }),
        ...(method === "GET" ? {} : { "X-CSRF-Token": csrfToken() }),
      },
      body: body === undefined || multipart ? body : JSON.stringify(body),
    });
  let res = await send();
  if (res.status === 401) {
    if (await renewSession()) res = await send();
    if (res.status === 401) {
      toLogin();
      throw new ApiError(401, null);
    }
  }
  if (res.status === 204) return null;
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

// ---- forms ----

// The objects setPath made for the dots of a name (numberedLists turns only these into lists,
// never a value the form holds, such as a data-type="json" field's object).
const madeByPath = new WeakSet();

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (o[k] == null) { o[k] = {}; madeByPath.add(o[k]); }
    o = o[k];
  }
  o[keys[keys.length - 1]] = value;
}

// The JSON body of a data-api form. Field rules (attributes on the control):
// name="a.b" nests; data-type="number" | "list" (comma or line separated) | "json" | "bool";
// a checkbox is a boolean unless it has a value and data-type="list-item" (then all checked
// boxes of that name form a list); select[multiple] is a list; an empty text field is left out
// unless it has data-keep-empty (then it is sent as null) or data-send-empty (sent as ""
// for the API to name what is missing); an empty list is sent as [] unless it
// has data-omit-empty (then it is left out: "no list", where [] would mean "none"). Numbered
// names (name="stages.0.name", "stages.1.name") make a list of objects in their numbers' order.
export function formBody(form) {
  const body = {};
  const lists = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === "submit" || el.type === "button") continue;
    const type = el.dataset.type;
    if (el.type === "checkbox" && type === "list-item") {
      lists[el.name] ??= [];
      if (el.checked) lists[el.name].push(el.value);
      continue;
    }
    if (el.type === "checkbox" && el.dataset.on !== undefined) {
      setPath(body, el.name, el.checked ? el.dataset.on : el.dataset.off ?? "");
      continue;
    }
    if (el.type === "checkbox") { setPath(body, el.name, el.checked); continue; }
    if (el.type === "radio") { if (el.checked) setPath(body, el.name, el.value); continue; }
    if (el.tagName === "SELECT" && el.multiple) {
      setPath(body, el.name, [...el.selectedOptions].map((o) => o.value));
      continue;
    }
    const v = el.value;
    if (v.trim() === "" && (type !== "list" || el.hasAttribute("data-omit-empty"))) {
      if (el.hasAttribute("data-keep-empty")) setPath(body, el.name, null);
      else if (el.hasAttribute("data-send-empty")) setPath(body, el.name, "");
      continue;
    }
    if (type === "number") setPath(body, el.name, Number(v));
    else if (type === "bool") setPath(body, el.name, v === "true");
    else if (type === "list") setPath(body, el.name, v.split(/[,\n]/).map((s) => s.trim()).filter(Boolean));
    else if (type === "json") setPath(body, el.name, JSON.parse(v));
    else setPath(body, el.name, v);
  }
  for (const [k, v] of Object.entries(lists)) setPath(body, k, v);
  return numberedLists(body);
}

// {"0": a, "2": b} → [a, b] (at any depth) for the objects numbered names were filled into.
function numberedLists(body) {
  const convert = (v) => {
    if (!madeByPath.has(v)) return v;
    const keys = Object.keys(v);
    for (const k of keys) v[k] = convert(v[k]);
    return keys.length > 0 && keys.every((k) => /^\d+$/.test(k))
      ? keys.sort((a, b) => Number(a) - Number(b)).map((k) => v[k])
      : v;
  };
  for (const k of Object.keys(body)) body[k] = convert(body[k]);
  return body;
}

function errorSlot(form, name) {
  const id = `${name.replace(/[^A-Za-z0-9_-]/g, "_")}-error`;
  let slot = form.querySelector(`[id="${id}"]`);
  const control = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (!slot && control) {
    slot = document.createElement("p");
    slot.className = "field-error";
    slot.id = id;
    control.closest(".field")?.append(slot) ?? control.after(slot);
    const d = control.getAttribute("aria-describedby");
    control.setAttribute("aria-describedby", d ? `${d} ${id}` : id);
  }
  return { slot, control };
}

function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = form.querySelector("[data-form-error]");
  if (general) { general.hidden = true; general.textContent = ""; }
}

// Shows an ApiError on a form: each field's problems next to it, the message on top.
export function showErrors(form, err) {
  clearErrors(form);
  let first = null;
  const unplaced = [];
  for (const [name, problems] of Object.entries(err.fields || {})) {
    const { slot, control } = errorSlot(form, name);
    if (!slot) { unplaced.push(`${name}: ${problems.join(" ")}`); continue; }
    slot.textContent = problems.join(" ");
    slot.hidden = false;
    if (control) { control.setAttribute("aria-invalid", "true"); first ??= control; }
  }
  const general = form.querySelector("[data-form-error]");
  if (general) {
    general.textContent = [err.message, ...unplaced].join(" ");
    general.hidden = false;
  }
  (first || general)?.focus?.();
}

function fillPath(template, data) {
  return template.replace(/\{([a-z_.]+)\}/g, (_, k) =>
    encodeURIComponent(k.split(".").reduce((o, p) => (o == null ? o : o[p]), data) ?? ""));
}

// What happens after a form succeeded (data-then): "reload", "go:/path/{id}",
// "notice:text" (into [data-form-notice]), "fill:#id" (response fields into [data-field]
// elements of #id, which is then shown), or "event:name" (a DOM event with the response).
function then(form, spec, data) {
  const [kind, ...rest] = (spec || "reload").split(":");
  const arg = rest.join(":");
  if (kind === "reload") location.reload();
  else if (kind === "go") location.assign(fillPath(arg, data || {}));
  else if (kind === "notice") {
    const n = form.querySelector("[data-form-notice]");
    if (n) { n.textContent = arg; n.hidden = false; }
  } else if (kind === "fill") {
    const target = document.querySelector(arg);
    if (!target) return;
    for (const el of target.querySelectorAll("[data-field]")) {
      const v = el.dataset.field.split(".").reduce((o, p) => (o == null ? o : o[p]), data);
      el.textContent = v == null ? "" : Array.isArray(v) ? v.join("\n") : String(v);
    }
    target.hidden = false;
    target.querySelector("[data-focus]")?.focus();
  } else if (kind === "event") {
    form.dispatchEvent(new CustomEvent(arg, { bubbles: true, detail: data }));
  }
}

// A modal confirmation (a real <dialog>, so it is announced and traps focus).
export function confirmDialog(message, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const d = document.createElement("dialog");
    d.className = "confirm";
    d.setAttribute("aria-labelledby", "confirm-text");
    const p = document.createElement("p");
    p.id = "confirm-text";
    p.textContent = message;
    const actions = document.createElement("div");
    actions.className = "actions";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "btn btn-secondary";
    cancel.textContent = "Cancel";
    const ok = document.createElement("button");
    ok.type = "button";
    ok.className = "btn btn-danger";
    ok.textContent = confirmLabel;
    actions.append(cancel, ok);
    d.append(p, actions);
    document.body.append(d);
    const done = (v) => { d.close(); d.remove(); resolve(v); };
    cancel.addEventListener("click", () => done(false));
    ok.addEventListener("click", () => done(true));
    d.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
    d.showModal();
    cancel.focus();
  });
}

async function submitApiForm(form, submitter) {
  const [method, path] = form.dataset.api.split(" ");
  if (form.dataset.confirm && !(await confirmDialog(form.dataset.confirm, form.dataset.confirmLabel))) return;
  // A form with enctype="multipart/form-data" (a file upload) is sent as it is.
  const multipart = form.enctype === "multipart/form-data";
  let body;
  try {
    body = multipart ? {} : formBody(form);
  } catch {
    showErrors(form, { message: "A field holds text that is not valid JSON.", fields: {} });
    return;
  }
  const hasBody = multipart || !["GET", "DELETE"].includes(method) || Object.keys(body).length > 0;
  clearErrors(form);
  const buttons = [...form.querySelectorAll('button[type="submit"]')];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute("aria-busy", "true");
  try {
    const sent = multipart ? new FormData(form) : body;
    const data = await api(method, fillPath(path, body), hasBody ? sent : undefined);
    then(form, (submitter && submitter.dataset.then) || form.dataset.then, data);
  } catch (err) {
    if (err instanceof ApiError) showErrors(form, err);
    else showErrors(form, { message: "The server could not be reached. Check your connection and try again.", fields: {} });
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute("aria-busy");
  }
}

document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form instanceof HTMLFormElement && form.dataset.api) {
    e.preventDefault();
    submitApiForm(form, e.submitter);
  } else if (form instanceof HTMLFormElement && form.dataset.confirm && !form.dataset.confirmed) {
    // A plain form (e.g. sign out elsewhere) that asks first.
    e.preventDefault();
    confirmDialog(form.dataset.confirm, form.dataset.confirmLabel).then((ok) => {
      if (ok) { form.dataset.confirmed = "1"; form.requestSubmit(e.submitter); }
    });
  }
});

// ---- small things ----

document.addEventListener("click", async (e) => {
  const b = e.target.closest("[data-copy]");
  if (!b) return;
  const source = document.querySelector(b.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    const label = b.textContent;
    b.textContent = "Copied";
    setTimeout(() => { b.textContent = label; }, 1500);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
});

export function localTimes(root = document) {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const t of root.querySelectorAll("time[datetime]:not([data-raw])")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!Number.isNaN(d.getTime())) t.textContent = fmt.format(d);
  }
}
localTimes();
