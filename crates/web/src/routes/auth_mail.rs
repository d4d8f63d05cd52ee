//! `/api/v1/auth/email/*` and `/api/v1/auth/password/{forgot,reset}`: what works through the
//! user's mailbox (a code to verify the address, a link to reset the password).

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, Meta, NotDelegated};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::auth::{email_verification, password_reset, RequestMeta};
use palisade_core::rate_limit::ClientKey;
use palisade_core::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_email))
        .routes(routes!(resend_email_code))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The 6-digit code from the verification mail.
    #[schema(example = "042917", max_length = 32)]
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyEmailResponse {
    /// Always true.
    pub email_verified: bool,
}

/// An empty object: the request was accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The address of the account. Any string is accepted and answered the same way.
    #[schema(max_length = 1024)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `pal_pr_…` token from the link in the reset mail.
    #[schema(pattern = "^pal_pr_")]
    pub token: String,
    /// Under the tenant's password policy: 12 to 128 characters, not guessable, not a recent one.
    #[schema(min_length = 12, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetPasswordResponse {
    /// Sessions of the user that were signed out (all of them).
    pub sessions_revoked: usize,
    /// Only when the new password was accepted with a warning: `password_breached`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<super::auth::PasswordWarning>)]
    pub warnings: Vec<&'static str>,
}

pub(crate) async fn per_address(
    limit: &palisade_core::rate_limit::Limit<ClientKey>,
    meta: &RequestMeta,
    message: &str,
) -> ApiResult<()> {
    match meta.ip {
        Some(ip) => limit
            .check(&ClientKey::of(ip))
            .await
            .map_err(|wait| ApiError(AppError::rate_limited(message, wait))),
        None => Ok(()),
    }
}

/// Verify the signed-in user's email address with the 6-digit code from the verification mail.
/// A code works once, for 10 minutes, and dies after 5 wrong tries. An address that is already
/// verified answers 200 whatever the code.
#[utoipa::path(post, path = "/api/v1/auth/email/verify", tag = "auth", security(("bearer" = [])),
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The address is verified", body = VerifyEmailResponse),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 422, description = "`invalid_code`: wrong, expired, used or replaced by a newer code", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: the code had 5 wrong tries, ask for a new one; or `rate_limited` (more than 20 requests a minute), see Retry-After", body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> ApiResult<Json<VerifyEmailResponse>> {
    let s = &state.services;
    p.session_id()?;
    s.limits
        .email_verify
        .check(&p.user_id.as_uuid())
        .await
        .map_err(|wait| {
            ApiError(AppError::rate_limited(
                "too many verification tries; slow down",
                wait,
            ))
        })?;
    email_verification::verify(s, &p, &meta, &req.code).await?;
    Ok(Json(VerifyEmailResponse {
        email_verified: true,
    }))
}

/// Mail the signed-in user a new verification code; older codes stop working. At most one a
/// minute and 5 an hour.
#[utoipa::path(post, path = "/api/v1/auth/email/resend", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 202, description = "A new code is on its way", body = AcceptedResponse),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 409, description = "`already_verified`: the address is verified already", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a code was sent less than a minute ago, or 5 in the last hour; see Retry-After", body = ErrorBody)))]
pub async fn resend_email_code(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
) -> ApiResult<(StatusCode, Json<AcceptedResponse>)> {
    email_verification::resend(&state.services, &p, &meta).await?;
    Ok((StatusCode::ACCEPTED, Json(AcceptedResponse {})))
}

/// Ask for a password reset link by mail. Always answers `202 {}` at once, whether or not the
/// address belongs to an account: for an existing one a mail with a link to
/// `<PALISADE_PUBLIC_URL>/reset-password?token=pal_pr_…` follows (at most 5 an hour per
/// account; beyond that nothing is sent, and the answer is still the same).
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Accepted (the same answer for every address)", body = AcceptedResponse),
        (status = 403, description = "Sent with an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than 5 requests an hour from this client address; see Retry-After", body = ErrorBody)))]
pub async fn forgot_password(
    State(state): State<AppState>,
    _: NotDelegated,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<ForgotPasswordRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedResponse>)> {
    let s = &state.services;
    per_address(
        &s.limits.password_forgot,
        &meta,
        "too many password reset requests from your address; try again later",
    )
    .await?;
    password_reset::forgot(s, &meta, &req.email);
    Ok((StatusCode::ACCEPTED, Json(AcceptedResponse {})))
}

/// Set a new password with the token from a reset mail. The token works once, for 30 minutes,
/// and only the newest one works. Every session of the user is signed out, a lock on the
/// account is lifted, the address counts as verified, and the user is mailed.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password set; sign in with it", body = ResetPasswordResponse),
        (status = 400, description = "`invalid_token`: unknown, used, expired or replaced by a newer one", body = ErrorBody),
        (status = 403, description = "Sent with an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 422, description = "The new password breaks the policy (every failed rule listed under `fields.new_password`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this client address; see Retry-After", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    _: NotDelegated,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<Json<ResetPasswordResponse>> {
    let s = &state.services;
    per_address(
        &s.limits.login,
        &meta,
        "too many attempts from your address; slow down",
    )
    .await?;
    let done = password_reset::reset(s, &meta, &req.token, &req.new_password).await?;
    Ok(Json(ResetPasswordResponse {
        sessions_revoked: done.sessions_revoked,
        warnings: done.warnings,
    }))
}
