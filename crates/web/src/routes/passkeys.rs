//! `/api/v1/auth/passkeys/*`: adding, listing and removing passkeys, and signing in with one.

use super::auth::{ip_limit, with_cookies, TokenResponse};
use super::ListResponse;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::auth::passkeys::{self, PasskeyView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_start))
        .routes(routes!(register_finish))
        .routes(routes!(list_passkeys))
        .routes(routes!(delete_passkey))
        .routes(routes!(login_start))
        .routes(routes!(login_finish))
}

/// WebAuthn options for the browser: pass `publicKey` to `navigator.credentials.create` (or
/// `.get`). Binary fields are base64url strings (WebAuthn's JSON form, as
/// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read).
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyRegistrationOptionsResponse {
    /// PublicKeyCredentialCreationOptions in WebAuthn's JSON form: `rp`, `user` (its `id` is the
    /// user's id), `challenge`, `pubKeyCredParams`, `timeout`, `excludeCredentials` (the user's
    /// passkeys), `authenticatorSelection` (`residentKey: "preferred"`, `userVerification:
    /// "required"`), `attestation`, `extensions`.
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterFinishRequest {
    /// A name to recognise it by, e.g. `Laptop`: 1 to 64 characters once trimmed.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// The browser's RegistrationResponseJSON (`PublicKeyCredential.toJSON()` of the created
    /// credential): `id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.attestationObject`, base64url-encoded.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyDeleteRequest {
    /// The current password (re-authentication).
    pub password: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginStartRequest {
    /// The `pal_mfa_…` token of a password sign-in that needs a second factor. Omit it for a
    /// passwordless sign-in. With it, the options name the account's own passkeys, and a
    /// successful answer spends the token.
    pub mfa_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyLoginStartResponse {
    /// Send back with the answer to `/api/v1/auth/passkeys/login/finish`. Single-use, five
    /// minutes.
    pub challenge_id: Uuid,
    /// PublicKeyCredentialRequestOptions in WebAuthn's JSON form: `challenge`, `timeout`,
    /// `rpId`, `allowCredentials` (empty for a passwordless sign-in: any passkey of this site),
    /// `userVerification: "required"`. No `mediation` is asked for; pass
    /// `mediation: "conditional"` to `navigator.credentials.get` for autofill.
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginFinishRequest {
    /// The `challenge_id` from `login/start`.
    pub challenge_id: Uuid,
    /// The browser's AuthenticationResponseJSON (`PublicKeyCredential.toJSON()` of the
    /// assertion): `id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.authenticatorData`, `response.signature`, `response.userHandle`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// Start adding a passkey to the signed-in user. One registration is pending per user; starting
/// again replaces it. Five minutes to finish.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/start", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Options for `navigator.credentials.create`", body = PasskeyRegistrationOptionsResponse),
        (status = 403, description = "An API key (`api_key_not_allowed`), an impersonation (`impersonation_forbidden`) or an expired password (`password_expired`)", body = ErrorBody),
        (status = 429, description = "Too many registrations started (`rate_limited`); see Retry-After", body = ErrorBody),
        (status = 503, description = "Passkeys are not configured on this server (`unavailable`)", body = ErrorBody)))]
pub async fn register_start(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
) -> ApiResult<Json<PasskeyRegistrationOptionsResponse>> {
    let options = passkeys::start_registration(&state.services, &p, &meta).await?;
    Ok(Json(PasskeyRegistrationOptionsResponse {
        public_key: options
            .get("publicKey")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    }))
}

/// Finish adding a passkey with the browser's answer. Mails the user that a passkey was added.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/finish", tag = "auth",
    security(("bearer" = [])), request_body = PasskeyRegisterFinishRequest,
    responses(
        (status = 201, description = "Passkey added", body = PasskeyView),
        (status = 400, description = "No pending registration, or it expired or was used (`invalid_challenge`)", body = ErrorBody),
        (status = 403, description = "An API key (`api_key_not_allowed`), an impersonation (`impersonation_forbidden`) or an expired password (`password_expired`)", body = ErrorBody),
        (status = 409, description = "This credential is already registered to an account (`passkey_exists`)", body = ErrorBody),
        (status = 422, description = "A bad name or credential shape (`validation_failed`), or an answer that does not verify: origin, challenge, user verification (`invalid_passkey`)", body = ErrorBody),
        (status = 503, description = "Passkeys are not configured on this server (`unavailable`)", body = ErrorBody)))]
pub async fn register_finish(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasskeyRegisterFinishRequest>,
) -> ApiResult<Response> {
    let view = passkeys::finish_registration(&state.services, &p, &meta, &req.name, req.credential)
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The signed-in user's passkeys, oldest first.
#[utoipa::path(get, path = "/api/v1/auth/passkeys", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Passkeys", body = ListResponse<PasskeyView>),
        (status = 403, description = "An API key (`api_key_not_allowed`), an impersonation (`impersonation_forbidden`) or an expired password (`password_expired`)", body = ErrorBody)))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<PasskeyView>>> {
    let data = passkeys::list(&state.services, &p).await?;
    Ok(Json(ListResponse { data }))
}

/// Remove one of the signed-in user's passkeys; needs the current password.
#[utoipa::path(delete, path = "/api/v1/auth/passkeys/{id}", tag = "auth",
    security(("bearer" = [])), request_body = PasskeyDeleteRequest,
    params(("id" = Uuid, Path, description = "Passkey id")),
    responses(
        (status = 204, description = "Passkey removed"),
        (status = 403, description = "An API key (`api_key_not_allowed`), an impersonation (`impersonation_forbidden`) or an expired password (`password_expired`)", body = ErrorBody),
        (status = 404, description = "No such passkey of yours", body = ErrorBody),
        (status = 422, description = "Wrong password (`validation_failed`, field `password`)", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn delete_passkey(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<PasskeyDeleteRequest>,
) -> ApiResult<StatusCode> {
    let s = &state.services;
    // A password guess: counted like a sign-in.
    ip_limit(&s.limits.login, &meta).await?;
    passkeys::remove(s, &p, &meta, id, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a passkey sign-in. Without `mfa_token`, passwordless: any passkey of this site. With
/// it, the second factor of a password sign-in: the account's passkeys.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/login/start", tag = "auth",
    request_body(content = Option<PasskeyLoginStartRequest>, description = "Optional: `{}` or no body for a passwordless sign-in"),
    responses(
        (status = 200, description = "Options for `navigator.credentials.get`", body = PasskeyLoginStartResponse),
        (status = 400, description = "A malformed body (`invalid_body`)", body = ErrorBody),
        (status = 401, description = "The `mfa_token` is unknown, used, expired or out of tries (`invalid_mfa_token`)", body = ErrorBody),
        (status = 403, description = "Sent with an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 422, description = "The account of the `mfa_token` has no passkey (`invalid_passkey`)", body = ErrorBody),
        (status = 429, description = "Throttled like password sign-in (`rate_limited`); see Retry-After", body = ErrorBody),
        (status = 503, description = "Passkeys are not configured on this server (`unavailable`)", body = ErrorBody)))]
pub async fn login_start(
    State(state): State<AppState>,
    _: crate::extract::NotDelegated,
    Meta(meta): Meta,
    crate::extract::ApiOptionalJson(req): crate::extract::ApiOptionalJson<PasskeyLoginStartRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    ip_limit(&s.limits.login, &meta).await?;
    let mfa = req.and_then(|r| r.mfa_token);
    let c = passkeys::start_sign_in(s, &meta, mfa.as_deref()).await?;
    Ok(Json(PasskeyLoginStartResponse {
        challenge_id: c.challenge_id.as_uuid(),
        public_key: c
            .options
            .get("publicKey")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    })
    .into_response())
}

/// Finish a passkey sign-in: the same answer (and cookies) as a password sign-in. A passkey
/// with user verification is a complete multi-factor sign-in.
#[utoipa::path(post, path = "/api/v1/auth/passkeys/login/finish", tag = "auth",
    request_body = PasskeyLoginFinishRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Unknown, used or expired challenge (`invalid_challenge`)", body = ErrorBody),
        (status = 401, description = "The passkey is not registered, belongs to no active account, or its answer does not verify (`invalid_passkey`); for a second factor, the password sign-in was completed meanwhile (`invalid_mfa_token`)", body = ErrorBody),
        (status = 403, description = "The tenant is suspended (`tenant_suspended`), or sent with an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 422, description = "`credential` is not an AuthenticationResponseJSON (`validation_failed`)", body = ErrorBody),
        (status = 429, description = "Throttled like password sign-in (`rate_limited`); see Retry-After", body = ErrorBody),
        (status = 503, description = "Passkeys are not configured on this server (`unavailable`)", body = ErrorBody)))]
pub async fn login_finish(
    State(state): State<AppState>,
    _: crate::extract::NotDelegated,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasskeyLoginFinishRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    ip_limit(&s.limits.login, &meta).await?;
    let t = passkeys::finish_sign_in(s, &meta, req.challenge_id, req.credential).await?;
    Ok((with_cookies(s, &t), Json(TokenResponse::from(&t))).into_response())
}
