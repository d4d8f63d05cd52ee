// Live updates over the API's websocket (cookie-authenticated; docs/realtime.md). A page that
// wants them imports `connect` and gets callbacks: `onEvent(frame)` for each event
// (`{type, data}`: message.created, message.status, conversation.updated, …), `onResync()` when
// it must reload what it shows because events may have been missed (a `lagged` frame
// `{"type":"lagged","data":{"missed":n}}`, or any `ready`: the first one too, as the page was
// rendered before its socket was listening), and `onStatus("live" | "reconnecting" | "offline")`.
// Close codes: 4401 (the credential stopped being valid) renews the session and reconnects, or
// sends the person to sign in; 4403 (authenticated but not allowed) and 4429 (too many sockets)
// are not retried in a loop ("offline"); anything else reconnects with backoff.
import { renewSession } from "./app.js";

const CONTROL = new Set(["ready", "pong", "error", "lagged"]);

export function connect({ onEvent, onResync, onStatus = () => {} }) {
  let attempt = 0;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
  const open = () => {
    const ws = new WebSocket(url);
    ws.addEventListener("message", (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; }
      if (frame.type === "ready") {
        onStatus("live");
        // Events may have been missed while the socket was down, and on the first `ready`
        // between the server rendering the page and this socket listening (a reply sent in
        // that moment was lost to a page just opened): load the current state after `ready`,
        // as docs/realtime.md asks of every client.
        onResync();
        attempt = 0;
      } else if (frame.type === "lagged") onResync();
      else if (!CONTROL.has(frame.type)) onEvent(frame);
    });
    ws.addEventListener("close", async (e) => {
      if (e.code === 4403 || e.code === 4429) {
        onStatus("offline");
        return;
      }
      onStatus("reconnecting");
      if (e.code === 4401 || e.code === 1008) {
        if (!(await renewSession())) {
          location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
          return;
        }
      }
      attempt += 1;
      setTimeout(open, Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2));
    });
  };
  open();
}
