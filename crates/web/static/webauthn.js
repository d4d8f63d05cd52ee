// WebAuthn JSON <-> browser objects. The server (webauthn-rs) speaks base64url in JSON; the
// browser API wants ArrayBuffers. Used by the sign-in page and the security settings.

export function fromB64url(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  const pad = b64.length % 4 ? "=".repeat(4 - (b64.length % 4)) : "";
  const bin = atob(b64 + pad);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

export function toB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// `{"publicKey": PublicKeyCredentialRequestOptions}` from the server, for credentials.get().
export function requestOptions(json) {
  const pk = { ...json.publicKey };
  pk.challenge = fromB64url(pk.challenge);
  if (pk.allowCredentials) {
    pk.allowCredentials = pk.allowCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
  }
  return { publicKey: pk };
}

// `{"publicKey": PublicKeyCredentialCreationOptions}` from the server, for credentials.create().
export function creationOptions(json) {
  const pk = { ...json.publicKey };
  pk.challenge = fromB64url(pk.challenge);
  pk.user = { ...pk.user, id: fromB64url(pk.user.id) };
  if (pk.excludeCredentials) {
    pk.excludeCredentials = pk.excludeCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
  }
  return { publicKey: pk };
}

// An assertion (credentials.get) as AuthenticationResponseJSON.
export function assertionJson(cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: toB64url(r.clientDataJSON),
      authenticatorData: toB64url(r.authenticatorData),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    extensions: cred.getClientExtensionResults(),
  };
}

// An attestation (credentials.create) as RegistrationResponseJSON.
export function attestationJson(cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: toB64url(r.clientDataJSON),
      attestationObject: toB64url(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [],
    },
    extensions: cred.getClientExtensionResults(),
  };
}

// A sentence for a person when the browser refuses or the user cancels.
export function describeError(e) {
  if (e && e.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
  if (e && e.name === "InvalidStateError") return "This passkey is already registered.";
  if (e && e.message) return e.message;
  return "The passkey could not be used.";
}
