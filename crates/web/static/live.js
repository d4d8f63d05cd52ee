// Live updates over the API's websocket (cookie-authenticated). A page that wants them imports
// `connect` and gets two callbacks: `onEvent(event)` for each event, and `onResync()` when it
// must reload what it shows because events may have been missed (a `lagged` frame, or a
// reconnect after the socket dropped). Reconnects with backoff; gives up (and sends the person
// to sign in) when the session is gone.
import { renewSession } from "./app.js";

export function connect({ onEvent, onResync, onStatus = () => {} }) {
  let attempt = 0;
  let opened = false;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
  const open = () => {
    const ws = new WebSocket(url);
    ws.addEventListener("open", () => {
      onStatus("live");
      if (opened) onResync();
      opened = true;
      attempt = 0;
    });
    ws.addEventListener("message", (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; }
      if (frame.type === "lagged") onResync();
      else onEvent(frame);
    });
    ws.addEventListener("close", async (e) => {
      onStatus("reconnecting");
      // 4401/4403: the session ended or was revoked; renewing decides whether to go on.
      if (e.code === 4401 || e.code === 4403 || e.code === 1008) {
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
