//! `/api/v1/auth/2fa/*`: TOTP enrolment and removal, recovery codes, and the factor status.
//! Signed-in users only, for themselves: an API key answers `403 api_key_not_allowed`, an
//! impersonation `403 impersonation_forbidden`. Completing a sign-in with a second factor is
//! `POST /api/v1/auth/login/2fa` (in `auth`).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::auth::two_factor::{self, RecoveryCodes, TotpSetup, TwoFactorStatus};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(setup_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(disable_totp))
        .routes(routes!(regenerate_recovery_codes))
}

/// Re-authentication with the current password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The user's current password.
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    /// The 6-digit code the authenticator shows now.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotpRequest {
    /// The user's current password.
    pub password: String,
    /// A 6-digit TOTP code, or one of the recovery codes.
    pub code: String,
}

/// The signed-in user's second factors, and whether one is required of them.
#[utoipa::path(get, path = "/api/v1/auth/2fa", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The user's second factors", body = TwoFactorStatus),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<TwoFactorStatus>> {
    Ok(Json(two_factor::status(&state.services, &p).await?))
}

/// Start TOTP enrolment: a new secret for an authenticator app, inactive until confirmed. A new
/// setup replaces an unconfirmed one.
#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/setup", tag = "auth", security(("bearer" = [])),
    request_body = PasswordRequest,
    responses((status = 200, description = "The secret, its `otpauth://` URI and a QR code", body = TotpSetup),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 409, description = "TOTP is already active (`totp_already_enabled`)", body = ErrorBody),
        (status = 422, description = "Wrong password (`validation_failed`, `fields.password`)", body = ErrorBody),
        (status = 429, description = "Too many two-factor changes (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn setup_totp(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> ApiResult<Json<TotpSetup>> {
    Ok(Json(
        two_factor::setup_totp(&state.services, &p, &meta, &req.password).await?,
    ))
}

/// Activate TOTP with a code from the authenticator. Answers ten recovery codes, shown only
/// here.
#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/confirm", tag = "auth", security(("bearer" = [])),
    request_body = ConfirmTotpRequest,
    responses((status = 200, description = "TOTP is active; the recovery codes", body = RecoveryCodes),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 409, description = "No setup to confirm (`totp_not_set_up`) or TOTP already active (`totp_already_enabled`)", body = ErrorBody),
        (status = 422, description = "Wrong code (`invalid_code`)", body = ErrorBody),
        (status = 429, description = "Too many two-factor changes (`rate_limited`)", body = ErrorBody)))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<ConfirmTotpRequest>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(
        two_factor::confirm_totp(&state.services, &p, &meta, &req.code).await?,
    ))
}

/// Turn TOTP off. Needs the password and a TOTP or recovery code.
#[utoipa::path(delete, path = "/api/v1/auth/2fa/totp", tag = "auth", security(("bearer" = [])),
    request_body = DisableTotpRequest,
    responses((status = 204, description = "TOTP removed (with the recovery codes when no other factor is left)"),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 409, description = "TOTP is not active (`totp_not_enabled`), or it is the last second factor and one is required (`2fa_required`)", body = ErrorBody),
        (status = 422, description = "Wrong password (`validation_failed`), wrong code (`invalid_code`) or a code already used (`code_already_used`)", body = ErrorBody),
        (status = 429, description = "Too many two-factor changes (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn disable_totp(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<DisableTotpRequest>,
) -> ApiResult<StatusCode> {
    two_factor::disable_totp(&state.services, &p, &meta, &req.password, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ten new recovery codes; the previous ones stop working.
#[utoipa::path(post, path = "/api/v1/auth/2fa/recovery-codes", tag = "auth", security(("bearer" = [])),
    request_body = PasswordRequest,
    responses((status = 200, description = "The new recovery codes, shown only here", body = RecoveryCodes),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 409, description = "No second factor is active (`totp_not_enabled`)", body = ErrorBody),
        (status = 422, description = "Wrong password (`validation_failed`, `fields.password`)", body = ErrorBody),
        (status = 429, description = "Too many two-factor changes (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(
        two_factor::regenerate_recovery_codes(&state.services, &p, &meta, &req.password).await?,
    ))
}
