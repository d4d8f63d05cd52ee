// /settings/security: the steps a plain data-api form can't take on its own.
// - TOTP setup answers a QR code (an SVG document): shown as an <img> with a data: URL (never
//   inserted as markup), with the secret as text for manual entry, then the confirm form.
// - The recovery codes (after confirming TOTP, or regenerating them) are shown once.
// - Passkeys: registration through WebAuthn with the API's register/start and /finish; removal
//   through one password form aimed at the passkey whose "Remove" was pressed.
import { api, ApiError, showErrors } from "./app.js";
import { creationOptions, attestationJson, describeError } from "./webauthn.js";

document.addEventListener("totp-setup", (e) => {
  const { secret, qr_svg: svg } = e.detail || {};
  const panel = document.getElementById("totp-confirm");
  if (!panel) return;
  const img = panel.querySelector("[data-totp-qr]");
  const bytes = new TextEncoder().encode(svg || "");
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  img.src = `data:image/svg+xml;base64,${btoa(bin)}`;
  panel.querySelector("[data-totp-secret]").textContent = secret || "";
  panel.querySelector("[data-totp-link]").href = e.detail?.otpauth_uri || "#";
  document.getElementById("totp-setup").hidden = true;
  panel.hidden = false;
  panel.querySelector('input[name="code"]')?.focus();
});

document.addEventListener("recovery-codes", (e) => {
  const box = document.getElementById("recovery-codes");
  if (!box) return;
  box.querySelector("[data-recovery-list]").textContent = (e.detail?.recovery_codes || []).join("\n");
  // What led here (the confirm step, or the forms of an active authenticator) is done.
  for (const el of document.querySelectorAll("#totp-confirm, .panel-grid")) el.hidden = true;
  box.hidden = false;
  box.querySelector("[data-focus]")?.focus();
});

// ---- passkeys ----

const removeForm = document.getElementById("passkey-remove");
document.addEventListener("click", (e) => {
  const b = e.target.closest("[data-passkey-remove]");
  if (b && removeForm) {
    const name = b.dataset.passkeyName || "";
    removeForm.dataset.api = `DELETE /api/v1/auth/passkeys/${encodeURIComponent(b.dataset.passkeyRemove)}`;
    removeForm.dataset.confirm = `Remove the passkey “${name}”? You can no longer sign in with it.`;
    removeForm.querySelector("[data-passkey-remove-name]").textContent = `“${name}”`;
    removeForm.hidden = false;
    removeForm.querySelector('input[name="password"]').focus();
    return;
  }
  if (e.target.closest("[data-passkey-remove-cancel]") && removeForm) {
    removeForm.hidden = true;
    delete removeForm.dataset.api;
  }
});

const addForm = document.querySelector("[data-passkey-register]");
if (addForm) {
  const button = addForm.querySelector('button[type="submit"]');
  if (!window.PublicKeyCredential) {
    button.disabled = true;
    showErrors(addForm, { message: "This browser does not support passkeys.", fields: {} });
  }
  addForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = addForm.querySelector('input[name="name"]').value.trim();
    button.disabled = true;
    addForm.setAttribute("aria-busy", "true");
    try {
      const options = await api("POST", "/api/v1/auth/passkeys/register/start");
      const cred = await navigator.credentials.create(creationOptions(options));
      await api("POST", "/api/v1/auth/passkeys/register/finish", { name, credential: attestationJson(cred) });
      location.reload();
    } catch (err) {
      showErrors(addForm, err instanceof ApiError ? err : { message: describeError(err), fields: {} });
      button.disabled = false;
      addForm.removeAttribute("aria-busy");
    }
  });
}
