// "Sign in with a passkey" and "Use a passkey" (second step) on /login. The console answers
// both steps itself and sets the session cookies; no token passes through this script.
import { requestOptions, assertionJson, describeError } from "./webauthn.js";

async function post(path, body, csrf) {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((json.error && json.error.message) || `Request failed (${res.status})`);
  return json;
}

for (const box of document.querySelectorAll("[data-passkey-login]")) {
  const button = box.querySelector("[data-passkey-start]");
  const error = box.querySelector("[data-passkey-error]");
  const secondFactor = box.hasAttribute("data-second-factor");
  if (!window.PublicKeyCredential) {
    button.disabled = true;
    error.textContent = "This browser does not support passkeys.";
    error.hidden = false;
    continue;
  }
  button.addEventListener("click", async () => {
    error.hidden = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      const csrf = box.dataset.csrf;
      const start = await post("/login/passkey/start", { second_factor: secondFactor }, csrf);
      const cred = await navigator.credentials.get(requestOptions(start.options));
      const done = await post(
        "/login/passkey/finish",
        { challenge_id: start.challenge_id, credential: assertionJson(cred), next: box.dataset.next || "" },
        csrf,
      );
      window.location.assign(done.redirect || "/");
    } catch (e) {
      error.textContent = describeError(e);
      error.hidden = false;
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  });
}
