//! Signing in: the password form, the second factor when asked, or a passkey alone.

use super::*;

#[derive(Template)]
#[template(path = "auth/login.html")]
pub(super) struct LoginPage {
    asset_version: &'static str,
    csrf: String,
    next: String,
    email: String,
    notice: Option<String>,
    error: Refusal,
}

#[derive(Template)]
#[template(path = "auth/login_2fa.html")]
pub(super) struct SecondFactorPage {
    asset_version: &'static str,
    csrf: String,
    next: String,
    recovery: bool,
    error: Refusal,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoginQuery {
    next: String,
    step: String,
    recovery: Option<String>,
    reason: String,
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    viewer: MaybeViewer,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let s = &state.services;
    if let Some(p) = &viewer.0 {
        let to = safe_next(&q.next).unwrap_or(home_of(p)).to_owned();
        return Redirect::to(&to).into_response();
    }
    let (csrf, set) = form_token(&headers, s.settings.cookie_secure);
    let has_challenge = cookies::get(
        &headers,
        &cookies::name(MFA_COOKIE, s.settings.cookie_secure),
    )
    .is_some();
    let resp = if q.step == "2fa" && has_challenge {
        render(&SecondFactorPage {
            asset_version: assets::version(),
            csrf,
            next: q.next,
            recovery: q.recovery.is_some(),
            error: Refusal::default(),
        })
    } else {
        let notice = viewer.1.or_else(|| match q.reason.as_str() {
            "expired" => Some("Your sign-in step took too long; start again.".to_owned()),
            "reset" => Some("Your password was changed. Sign in with the new one.".to_owned()),
            "signed_out" => Some("You are signed out.".to_owned()),
            _ => None,
        });
        render(&LoginPage {
            asset_version: assets::version(),
            csrf,
            next: q.next,
            email: String::new(),
            notice,
            error: Refusal::default(),
        })
    };
    with_cookie(resp, set)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

impl WithCsrf for LoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    _headers: HeaderMap,
    SignInStep(f): SignInStep<LoginForm>,
) -> Response {
    let s = &state.services;
    let result = match login_limit(s, &meta, &f.email).await {
        Ok(()) => sessions::login(s, &meta, &f.email, &f.password).await,
        Err(e) => Err(e.0),
    };
    match result {
        Ok(LoginOutcome::SignedIn(t)) => {
            let mut resp = see_other(&next_or_home(&f.next));
            resp.headers_mut().extend(with_cookies(s, &t));
            resp
        }
        Ok(LoginOutcome::MfaRequired(c)) => {
            let to = format!("/login?step=2fa&next={}", url_encode(&f.next));
            with_cookie(
                see_other(&to),
                cookie(
                    MFA_COOKIE,
                    &c.mfa_token,
                    c.expires_in,
                    s.settings.cookie_secure,
                ),
            )
        }
        Err(e) => {
            let error = Refusal::of(e);
            render_with(
                error.status(),
                &LoginPage {
                    asset_version: assets::version(),
                    csrf: f.csrf,
                    next: f.next,
                    email: f.email,
                    notice: None,
                    error,
                },
            )
        }
    }
}

#[derive(Deserialize)]
pub(super) struct SecondFactorForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

impl WithCsrf for SecondFactorForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn login_second_factor(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    SignInStep(f): SignInStep<SecondFactorForm>,
) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let Some(token) = cookies::get(&headers, &cookies::name(MFA_COOKIE, secure)) else {
        return see_other("/login?reason=expired");
    };
    let recovery = !f.recovery_code.trim().is_empty();
    let factor = if recovery {
        Factor::RecoveryCode(f.recovery_code.trim())
    } else {
        Factor::Totp(f.code.trim())
    };
    let result = match ip_limit(&s.limits.login, &meta).await {
        Ok(()) => challenge::complete(s, &meta, token, factor).await,
        Err(e) => Err(e.0),
    };
    match result {
        Ok(t) => {
            let mut resp = see_other(&next_or_home(&f.next));
            resp.headers_mut().extend(with_cookies(s, &t));
            with_cookie(resp, cookie(MFA_COOKIE, "", 0, secure))
        }
        Err(e) => {
            let error = Refusal::of(e);
            if error.code == palisade_core::error::code::INVALID_MFA_TOKEN {
                return with_cookie(
                    see_other("/login?reason=expired"),
                    cookie(MFA_COOKIE, "", 0, secure),
                );
            }
            render_with(
                error.status(),
                &SecondFactorPage {
                    asset_version: assets::version(),
                    csrf: f.csrf,
                    next: f.next,
                    recovery,
                    error,
                },
            )
        }
    }
}

/// A JSON answer for the sign-in script: `{"error": {"message": …}}` on failure.
pub(super) fn json_error(e: AppError) -> Response {
    let c = classify(e);
    (
        c.status,
        Json(serde_json::json!({"error": {"code": c.code, "message": c.message}})),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct PasskeyStart {
    /// The second step of a password sign-in (the challenge is in its cookie) rather than a
    /// passwordless sign-in.
    #[serde(default)]
    second_factor: bool,
}

/// Guards the sign-in script's JSON posts: same origin, and the form token in `X-CSRF-Token`.
pub(super) fn guard_json(s: &Services, headers: &HeaderMap) -> Result<(), Response> {
    let sent = headers
        .get(cookies::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    sign_in_origin(s, headers, sent)
}

/// What both passkey steps check first: the script's origin and form token, a body of the
/// step's `shape` (a `400` saying it otherwise), and the sign-in limit per address.
async fn passkey_request<T>(
    s: &Services,
    meta: &RequestMeta,
    headers: &HeaderMap,
    body: Result<Json<T>, JsonRejection>,
    shape: &str,
) -> Result<T, Response> {
    guard_json(s, headers)?;
    let Ok(Json(req)) = body else {
        return Err(json_error(AppError::BadRequest {
            code: palisade_core::error::code::INVALID_BODY,
            message: format!("send {shape}"),
        }));
    };
    ip_limit(&s.limits.login, meta)
        .await
        .map_err(|e| json_error(e.0))?;
    Ok(req)
}

pub(super) async fn passkey_start(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Result<Json<PasskeyStart>, JsonRejection>,
) -> Response {
    let s = &state.services;
    let req =
        match passkey_request(s, &meta, &headers, body, "{\"second_factor\": true|false}").await {
            Ok(r) => r,
            Err(r) => return r,
        };
    let mfa = if req.second_factor {
        match cookies::get(
            &headers,
            &cookies::name(MFA_COOKIE, s.settings.cookie_secure),
        ) {
            Some(t) => Some(t.to_owned()),
            None => {
                return json_error(AppError::Unauthenticated {
                    code: palisade_core::error::code::INVALID_MFA_TOKEN,
                    message: "your sign-in step took too long; start again".into(),
                })
            }
        }
    } else {
        None
    };
    match passkeys::start_sign_in(s, &meta, mfa.as_deref()).await {
        Ok(c) => Json(serde_json::json!({
            "challenge_id": c.challenge_id.as_uuid(),
            "options": c.options,
        }))
        .into_response(),
        Err(e) => json_error(e),
    }
}

#[derive(Deserialize)]
pub(super) struct PasskeyFinish {
    challenge_id: uuid::Uuid,
    credential: serde_json::Value,
    #[serde(default)]
    next: String,
}

pub(super) async fn passkey_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Result<Json<PasskeyFinish>, JsonRejection>,
) -> Response {
    let s = &state.services;
    let req = match passkey_request(
        s,
        &meta,
        &headers,
        body,
        "{\"challenge_id\": …, \"credential\": …}",
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    match passkeys::finish_sign_in(s, &meta, req.challenge_id, req.credential).await {
        Ok(t) => {
            let mut resp =
                Json(serde_json::json!({"redirect": next_or_home(&req.next)})).into_response();
            resp.headers_mut().extend(with_cookies(s, &t));
            with_cookie(resp, cookie(MFA_COOKIE, "", 0, s.settings.cookie_secure))
        }
        Err(e) => json_error(e),
    }
}
