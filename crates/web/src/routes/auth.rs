//! `/api/v1/auth/*`: registration, login, token refresh, logout, sessions, passwords.

use super::users::UserResponse;
use super::ListResponse;
use crate::cookies;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiOptionalJson, ApiPath, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::auth::session_view::SessionView;
use palisade_core::auth::sessions::{IssuedTokens, LoginOutcome};
use palisade_core::auth::two_factor::challenge::{self, Factor};
use palisade_core::auth::{passwords, register, sessions, RequestMeta};
use palisade_core::error::code;
use palisade_core::{AppError, Services};
use palisade_domain::SessionId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_tenant))
        .routes(routes!(login))
        .routes(routes!(login_second_factor))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(change_password))
        .routes(routes!(generate_password))
        .routes(routes!(accept_invite))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub tenant_name: String,
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 12 to 128 characters, and not guessable (a strength estimate and a list of common
    /// passwords decide; the document cannot say which).
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The second step of a sign-in: the challenge token and exactly one factor.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginSecondFactorRequest {
    /// The `pal_mfa_…` token from `POST /api/v1/auth/login`.
    #[schema(pattern = "^pal_mfa_")]
    pub mfa_token: String,
    /// A 6-digit code from the authenticator app (or send `recovery_code`).
    pub code: Option<String>,
    /// One of the recovery codes (or send `code`).
    pub recovery_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Omit to use the refresh cookie (then send `X-CSRF-Token`).
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// Under the tenant's password policy: 12 to 128 characters, not guessable, not a recent one.
    #[schema(min_length = 12, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The `pal_inv_…` token from user creation.
    #[schema(pattern = "^pal_inv_")]
    pub token: String,
    /// Under the tenant's password policy: 12 to 128 characters, not guessable.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
}

/// A token pair. The same values are also set as `__Host-` cookies for browsers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// EdDSA-signed JWT; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque `pal_rt_…` token; single use, exchanged at `/api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires (at most 900).
    pub expires_in: i64,
    pub session_id: Uuid,
    /// True when the password has expired: the token then only allows changing it.
    pub password_expired: bool,
    /// For cookie-authenticated browsers: echo in `X-CSRF-Token` on unsafe requests.
    pub csrf_token: String,
    /// Only when the request also chose a password that was accepted with a warning:
    /// `password_breached` (the breached-password check is in `warn` mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<PasswordWarning>)]
    pub warnings: Vec<&'static str>,
}

/// A warning about an accepted password.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordWarning {
    /// The password appears in known data breaches (`PALISADE_HIBP_MODE=warn`).
    PasswordBreached,
}

impl From<&IssuedTokens> for TokenResponse {
    fn from(t: &IssuedTokens) -> Self {
        TokenResponse {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
            token_type: "Bearer",
            expires_in: t.expires_in,
            session_id: t.session_id.as_uuid(),
            password_expired: t.password_expired,
            csrf_token: t.csrf_token.clone(),
            warnings: t.warnings.clone(),
        }
    }
}

/// The password was right and the account has a second factor: no session yet. Finish with
/// `POST /api/v1/auth/login/2fa`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallengeResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// `pal_mfa_…`: single-use, 5 minutes, 5 wrong codes.
    pub mfa_token: String,
    /// What the sign-in can be completed with: `totp`, `recovery_code` (later `passkey`).
    pub methods: Vec<String>,
    /// Seconds until `mfa_token` expires (300).
    pub expires_in: i64,
}

/// The answer to a correct password: a token pair, or a second-factor challenge.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    MfaRequired(MfaChallengeResponse),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSummary {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub tenant: TenantSummary,
    pub user: UserResponse,
    #[serde(flatten)]
    pub tokens: TokenResponse,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutAllResponse {
    pub sessions_revoked: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePasswordResponse {
    /// Other sessions of the user that were signed out.
    pub other_sessions_revoked: usize,
    /// Only when the new password was accepted with a warning: `password_breached`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<PasswordWarning>)]
    pub warnings: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedPasswordResponse {
    /// 24 random characters with upper and lower case, digits and symbols.
    pub password: String,
}

/// The sign-in family's limit per client address (sign-in, second factor, passkeys, invites).
pub(crate) async fn ip_limit(
    limit: &palisade_core::rate_limit::Limit<palisade_core::rate_limit::ClientKey>,
    meta: &RequestMeta,
) -> ApiResult<()> {
    super::auth_mail::per_address(
        limit,
        meta,
        "too many attempts from your address; slow down",
    )
    .await
}

/// The per-address limit of a password sign-in: a refused attempt is still noted for the
/// detection rules (`sessions::note_throttled`) before the 429.
pub(crate) async fn login_limit(s: &Services, meta: &RequestMeta, email: &str) -> ApiResult<()> {
    let limited = ip_limit(&s.limits.login, meta).await;
    if limited.is_err() {
        sessions::note_throttled(s, meta, email).await;
    }
    limited
}

pub(crate) fn with_cookies(s: &Services, t: &IssuedTokens) -> HeaderMap {
    let mut h = HeaderMap::new();
    let max_age = i64::try_from(s.settings.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
    cookies::set_tokens(&mut h, t, max_age, s.settings.cookie_secure);
    h
}

/// Create a tenant and its first admin (the owner), and sign them in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Tenant and owner created, signed in", body = RegisterResponse),
        (status = 409, description = "Email already registered (`email_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid fields; a weak password lists every failed rule", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn register_tenant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    ip_limit(&s.limits.register, &meta).await?;
    let r = register::register(
        s,
        &meta,
        &req.tenant_name,
        &req.name,
        &req.email,
        &req.password,
    )
    .await?;
    let body = RegisterResponse {
        tenant: TenantSummary {
            id: r.tenant.id.as_uuid(),
            name: r.tenant.name.clone(),
        },
        user: UserResponse::from(&r.user),
        tokens: TokenResponse::from(&r.tokens),
    };
    Ok((StatusCode::CREATED, with_cookies(s, &r.tokens), Json(body)).into_response())
}

/// Sign in with email and password. Creates a device session, or, when the account has a
/// second factor, answers a challenge to complete with `POST /api/v1/auth/login/2fa` (no
/// tokens, no cookies).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in (a token pair), or a second factor is required (`mfa_required: true`)", body = LoginResponse),
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = ErrorBody),
        (status = 403, description = "The tenant is suspended", body = ErrorBody),
        (status = 429, description = "Throttled (`rate_limited`) or locked (`account_locked`); see Retry-After", body = ErrorBody),
        (status = 503, description = "Password checks are saturated; see Retry-After", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    login_limit(s, &meta, &req.email).await?;
    match sessions::login(s, &meta, &req.email, &req.password).await? {
        LoginOutcome::SignedIn(t) => {
            Ok((with_cookies(s, &t), Json(TokenResponse::from(&t))).into_response())
        }
        LoginOutcome::MfaRequired(c) => Ok(Json(MfaChallengeResponse {
            mfa_required: true,
            mfa_token: c.mfa_token,
            methods: c.methods.iter().map(|m| (*m).to_owned()).collect(),
            expires_in: c.expires_in,
        })
        .into_response()),
    }
}

/// Complete a sign-in with a second factor: a TOTP `code` or a `recovery_code`. Answers as a
/// password sign-in does (tokens and cookies). A wrong code counts toward the account lockout.
#[utoipa::path(post, path = "/api/v1/auth/login/2fa", tag = "auth", request_body = LoginSecondFactorRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Unknown, used, expired or exhausted `mfa_token` (`invalid_mfa_token`), wrong code (`invalid_code`), or a TOTP code already used (`code_already_used`)", body = ErrorBody),
        (status = 403, description = "The tenant is suspended (`tenant_suspended`), or sent with an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 422, description = "Neither or both of `code` and `recovery_code`", body = ErrorBody),
        (status = 429, description = "Throttled (`rate_limited`) or locked (`account_locked`); see Retry-After", body = ErrorBody)))]
pub async fn login_second_factor(
    State(state): State<AppState>,
    _: crate::extract::NotDelegated,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<LoginSecondFactorRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    ip_limit(&s.limits.login, &meta).await?;
    let factor = match (req.code.as_deref(), req.recovery_code.as_deref()) {
        (Some(c), None) => Factor::Totp(c),
        (None, Some(c)) => Factor::RecoveryCode(c),
        _ => {
            return Err(ApiError(AppError::validation([
                palisade_domain::FieldError::new(
                    "code",
                    "send exactly one of code and recovery_code",
                ),
            ])))
        }
    };
    let t = challenge::complete(s, &meta, &req.mfa_token, factor).await?;
    Ok((with_cookies(s, &t), Json(TokenResponse::from(&t))).into_response())
}

/// Exchange a refresh token (body, or the cookie) for a new pair. Each refresh token works
/// once; presenting a used one signs the whole session out.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>, description = "Optional when the refresh cookie is sent"),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 400, description = "No refresh token in the body nor in the cookie (`refresh_token_missing`)", body = ErrorBody),
        (status = 401, description = "Invalid, expired or reused refresh token", body = ErrorBody),
        (status = 403, description = "Cookie refresh without a matching `X-CSRF-Token`", body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    ApiOptionalJson(req): ApiOptionalJson<RefreshRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let token = match req.and_then(|r| r.refresh_token) {
        Some(t) => t,
        None => {
            let Some(t) = cookies::get(&headers, &cookies::name(cookies::REFRESH, secure)) else {
                return Err(ApiError(AppError::BadRequest {
                    code: code::REFRESH_TOKEN_MISSING,
                    message: "send {\"refresh_token\": \"…\"} or the refresh cookie".into(),
                }));
            };
            let csrf_cookie =
                cookies::get(&headers, &cookies::name(cookies::CSRF, secure)).unwrap_or("");
            let csrf_header = headers
                .get(cookies::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if csrf_cookie.is_empty() || csrf_cookie != csrf_header {
                return Err(ApiError(AppError::Forbidden {
                    code: code::CSRF_FAILED,
                    message: "a cookie refresh needs the X-CSRF-Token header".into(),
                }));
            }
            t.to_owned()
        }
    };
    let t = sessions::refresh(s, &meta, &token).await?;
    Ok((with_cookies(s, &t), Json(TokenResponse::from(&t))).into_response())
}

/// Sign out this session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Signed out; cookies cleared")))]
pub async fn logout(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
) -> ApiResult<Response> {
    let s = &state.services;
    sessions::logout(s, &p, &meta).await?;
    let mut h = HeaderMap::new();
    cookies::clear(&mut h, s.settings.cookie_secure);
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

/// Sign out every session of the current user, this one included.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "All sessions signed out", body = LogoutAllResponse),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody)))]
pub async fn logout_all(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
) -> ApiResult<Response> {
    let s = &state.services;
    let n = sessions::logout_all(s, &p, &meta).await?;
    let mut h = HeaderMap::new();
    cookies::clear(&mut h, s.settings.cookie_secure);
    Ok((
        h,
        Json(LogoutAllResponse {
            sessions_revoked: n,
        }),
    )
        .into_response())
}

/// The current user's active device sessions, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Active sessions", body = ListResponse<SessionView>)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<SessionView>>> {
    let data = sessions::list(&state.services, &p).await?;
    Ok(Json(ListResponse { data }))
}

/// Sign out one of the current user's sessions.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Session revoked"),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 404, description = "No such active session of yours", body = ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    sessions::revoke(&state.services, &p, &meta, SessionId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the current user's password; signs out their other sessions.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 200, description = "Password changed", body = ChangePasswordResponse),
        (status = 409, description = "`password_changed`: the password was changed by another request meanwhile", body = ErrorBody),
        (status = 422, description = "Wrong current password, or the new one breaks the policy (every failed rule listed)", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<ChangePasswordResponse>> {
    let changed = passwords::change(
        &state.services,
        &p,
        &meta,
        &req.current_password,
        &req.new_password,
    )
    .await?;
    Ok(Json(ChangePasswordResponse {
        other_sessions_revoked: changed.other_sessions_revoked,
        warnings: changed.warnings,
    }))
}

/// A strong random password that satisfies every policy preset.
#[utoipa::path(get, path = "/api/v1/auth/password/generate", tag = "auth",
    responses((status = 200, description = "A generated password", body = GeneratedPasswordResponse)))]
pub async fn generate_password() -> Json<GeneratedPasswordResponse> {
    Json(GeneratedPasswordResponse {
        password: passwords::generate(),
    })
}

/// Set the first password of an invited user and sign them in.
#[utoipa::path(post, path = "/api/v1/auth/accept-invite", tag = "auth", request_body = AcceptInviteRequest,
    responses((status = 200, description = "Password set, signed in", body = TokenResponse),
        (status = 400, description = "Invalid, used or expired invitation (`invalid_invite`)", body = ErrorBody),
        (status = 422, description = "The password breaks the policy", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn accept_invite(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<AcceptInviteRequest>,
) -> ApiResult<Response> {
    let s = &state.services;
    ip_limit(&s.limits.login, &meta).await?;
    let t = passwords::accept_invite(s, &meta, &req.token, &req.password).await?;
    Ok((with_cookies(s, &t), Json(TokenResponse::from(&t))).into_response())
}
