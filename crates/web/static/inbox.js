// The inbox and a conversation, live. Listens on the websocket (live.js) and re-fetches the
// server-rendered parts an event touches, then swaps them in:
// - [data-fragment] elements (#conversation-list, #thread, #details) say where they come from;
// - a message or conversation event re-fetches the list, and, when it is the open
//   conversation's, its messages (and details); a resync (lagged frame, reconnect) re-fetches all.
// Focus and scroll are kept: a part holding the focus of a form control is swapped when the
// person leaves it; the thread stays at the bottom if it was there, else where it was.
// Also: the template composer's parameters (one per line) become Meta's components, and a sent
// reply or note clears its form and refreshes the thread at once.
import { localTimes } from "./app.js";
import { connect } from "./live.js";

const conversationId = document.querySelector("[data-conversation]")?.dataset.conversation || null;
const statusEl = () => document.querySelector("[data-live-status]");

function setStatus(s) {
  const el = statusEl();
  if (!el) return;
  const words = { live: "Live", reconnecting: "Reconnecting…", offline: "Live updates are off; reload the page to see changes" };
  el.textContent = words[s] || s;
  el.dataset.state = s;
}

// A control inside `el` has the focus and may hold something being typed or picked.
const busy = (el) => el.contains(document.activeElement) && document.activeElement.matches("input, select, textarea");

const pending = new Set();
// `el` holds the focus of a form control: swap it in when the person leaves it, not now.
function deferWhileBusy(id, el) {
  if (!busy(el)) return false;
  if (!pending.has(id)) {
    pending.add(id);
    el.addEventListener("focusout", () => setTimeout(() => {
      pending.delete(id);
      if (!busy(el)) refresh(id);
      else deferWhileBusy(id, el);
    }, 0), { once: true });
  }
  return true;
}

async function refresh(id) {
  const el = document.getElementById(id);
  if (!el || !el.dataset.fragment) return;
  if (deferWhileBusy(id, el)) return;
  let res;
  try {
    res = await fetch(el.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } });
  } catch { return; }
  if (res.redirected && new URL(res.url).pathname === "/login") { location.reload(); return; }
  if (!res.ok) return;
  const doc = new DOMParser().parseFromString(await res.text(), "text/html");
  const fresh = doc.getElementById(id);
  const current = document.getElementById(id);
  if (!fresh || !current) return;
  // The person started typing or picking while this part loaded: what they typed wins.
  if (deferWhileBusy(id, current)) return;
  // Keep the focus on the same item (links carry data-key) and the thread's scroll position.
  const focusedKey = current.contains(document.activeElement) ? document.activeElement.closest("[data-key]")?.dataset.key : null;
  const scroller = document.scrollingElement;
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const top = scroller.scrollTop;
  current.replaceWith(fresh);
  localTimes(fresh);
  if (focusedKey) fresh.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
  if (id === "thread" && atBottom) scroller.scrollTop = scroller.scrollHeight;
  else scroller.scrollTop = top;
}

// Several events of one change arrive together: one re-fetch per part per burst.
const queued = new Set();
let timer = null;
function schedule(...ids) {
  ids.forEach((i) => queued.add(i));
  clearTimeout(timer);
  timer = setTimeout(() => {
    const ids = [...queued];
    queued.clear();
    ids.forEach(refresh);
  }, 120);
}

function onEvent(frame) {
  const d = frame.data || {};
  if (frame.type === "message.created" || frame.type === "message.status") {
    schedule("conversation-list");
    if (conversationId && d.conversation_id === conversationId) schedule("thread");
  } else if (frame.type === "conversation.updated" || frame.type === "conversation.created") {
    schedule("conversation-list");
    if (conversationId && d.id === conversationId) schedule("details", "thread");
  }
}

if (statusEl()) {
  connect({
    onEvent,
    onResync: () => schedule("conversation-list", "thread", "details"),
    onStatus: setStatus,
  });
}

// Start a conversation at its latest message.
if (conversationId) document.scrollingElement.scrollTop = document.scrollingElement.scrollHeight;

// A reply or note was accepted: clear it and show it now (the event will follow).
document.addEventListener("inbox-sent", (e) => {
  const form = e.target;
  form.reset();
  const components = form.querySelector("[data-template-components]");
  if (components) components.value = "";
  form.querySelector("textarea")?.focus();
  schedule("thread");
});
// Assign, status, labels: show the result now.
document.addEventListener("inbox-changed", () => schedule("details", "conversation-list"));

// The template's parameters → [{type: "body", parameters: [{type: "text", text}, …]}].
document.addEventListener("input", (e) => {
  if (!e.target.matches("[data-template-params]")) return;
  const hidden = e.target.form.querySelector("[data-template-components]");
  const params = e.target.value.split("\n").map((s) => s.trim()).filter(Boolean);
  hidden.value = params.length
    ? JSON.stringify([{ type: "body", parameters: params.map((text) => ({ type: "text", text })) }])
    : "";
});
