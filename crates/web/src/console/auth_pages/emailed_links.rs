//! The pages a mailed link opens: a forgotten password, its reset, and accepting an
//! invitation (their one-time tokens moved into a short-lived HttpOnly cookie at once).

use super::*;

#[derive(Template)]
#[template(path = "auth/forgot.html")]
pub(super) struct ForgotPage {
    asset_version: &'static str,
    csrf: String,
    sent: bool,
    error: Refusal,
}

pub(super) async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, set) = form_token(&headers, state.services.settings.cookie_secure);
    with_cookie(
        render(&ForgotPage {
            asset_version: assets::version(),
            csrf,
            sent: false,
            error: Refusal::default(),
        }),
        set,
    )
}

#[derive(Deserialize)]
pub(super) struct ForgotForm {
    email: String,
    csrf: String,
}

impl WithCsrf for ForgotForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn forgot_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    _headers: HeaderMap,
    SignInStep(f): SignInStep<ForgotForm>,
) -> Response {
    let s = &state.services;
    let limited = per_address(
        &s.limits.password_forgot,
        &meta,
        "too many password reset requests from your address; try again later",
    )
    .await;
    let (sent, error) = match limited {
        Ok(()) => {
            password_reset::forgot(s, &meta, &f.email);
            (true, Refusal::default())
        }
        Err(e) => (false, Refusal::of(e.0)),
    };
    render_with(
        error.status(),
        &ForgotPage {
            asset_version: assets::version(),
            csrf: f.csrf,
            sent,
            error,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TokenQuery {
    token: Option<String>,
}

/// Moves a one-time token from the link into a cookie and cleans the address bar.
pub(super) fn stash_token(s: &Services, path: &str, cookie_name: &str, token: &str) -> Response {
    // 30 minutes: a reset token's lifetime; an invitation lives longer, but the page does not
    // need to stay open that long.
    with_cookie(
        see_other(path),
        cookie(cookie_name, token, 30 * 60, s.settings.cookie_secure),
    )
}

pub(super) fn stashed<'a>(
    s: &Services,
    headers: &'a HeaderMap,
    cookie_name: &str,
) -> Option<&'a str> {
    cookies::get(
        headers,
        &cookies::name(cookie_name, s.settings.cookie_secure),
    )
    .filter(|t| !t.is_empty())
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
pub(super) struct ResetPage {
    asset_version: &'static str,
    csrf: String,
    has_token: bool,
    error: Refusal,
}

#[derive(Template)]
#[template(path = "auth/accept_invite.html")]
pub(super) struct InvitePage {
    asset_version: &'static str,
    csrf: String,
    has_token: bool,
    error: Refusal,
}

/// The two pages that set a password with a mailed link's one-time token: a password reset
/// and an invitation. They share their steps (the link's token moves into a cookie, the form
/// posts a new password with it) and differ in their address, cookie, template and in what the
/// token does, which stays in each submit handler.
#[derive(Clone, Copy)]
pub(super) enum TokenPage {
    Reset,
    Invite,
}

impl TokenPage {
    fn path(self) -> &'static str {
        match self {
            TokenPage::Reset => "/reset-password",
            TokenPage::Invite => "/accept-invite",
        }
    }

    fn cookie(self) -> &'static str {
        match self {
            TokenPage::Reset => RESET_COOKIE,
            TokenPage::Invite => INVITE_COOKIE,
        }
    }

    fn render(self, status: StatusCode, csrf: String, has_token: bool, error: Refusal) -> Response {
        let asset_version = assets::version();
        match self {
            TokenPage::Reset => render_with(
                status,
                &ResetPage {
                    asset_version,
                    csrf,
                    has_token,
                    error,
                },
            ),
            TokenPage::Invite => render_with(
                status,
                &InvitePage {
                    asset_version,
                    csrf,
                    has_token,
                    error,
                },
            ),
        }
    }

    /// The page: a link's token is stashed (and the address bar cleaned), else the form.
    fn show(self, s: &Services, headers: &HeaderMap, q: TokenQuery) -> Response {
        if let Some(t) = q.token.filter(|t| !t.is_empty() && t.len() <= 128) {
            return stash_token(s, self.path(), self.cookie(), &t);
        }
        let (csrf, set) = form_token(headers, s.settings.cookie_secure);
        let has_token = stashed(s, headers, self.cookie()).is_some();
        with_cookie(
            self.render(StatusCode::OK, csrf, has_token, Refusal::default()),
            set,
        )
    }

    /// The checks before a posted password is tried (the form and its token were checked by
    /// [`SignInStep`]): the stashed token (without one, back to the page) and the sign-in limit
    /// per address.
    async fn posted<'h>(
        self,
        s: &Services,
        meta: &RequestMeta,
        headers: &'h HeaderMap,
        f: NewPasswordForm,
    ) -> Result<(NewPasswordForm, &'h str), Response> {
        let token = stashed(s, headers, self.cookie()).ok_or_else(|| see_other(self.path()))?;
        if let Err(e) = ip_limit(&s.limits.login, meta).await {
            return Err(self.refused(f.csrf, Refusal::of(e.0)));
        }
        Ok((f, token))
    }

    /// The form again after a refusal; a refused token (`400`) leaves only the page's advice.
    fn refused(self, csrf: String, error: Refusal) -> Response {
        let invalid = error.status() == StatusCode::BAD_REQUEST;
        self.render(error.status(), csrf, !invalid, error)
    }

    fn clear_cookie(self, s: &Services) -> Option<HeaderValue> {
        cookie(self.cookie(), "", 0, s.settings.cookie_secure)
    }
}

pub(super) async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    TokenPage::Reset.show(&state.services, &headers, q)
}

#[derive(Deserialize)]
pub(super) struct NewPasswordForm {
    new_password: String,
    csrf: String,
}

impl WithCsrf for NewPasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn reset_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    SignInStep(form): SignInStep<NewPasswordForm>,
) -> Response {
    let s = &state.services;
    let page = TokenPage::Reset;
    let (f, token) = match page.posted(s, &meta, &headers, form).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    match password_reset::reset(s, &meta, token, &f.new_password).await {
        Ok(_) => with_cookie(see_other("/login?reason=reset"), page.clear_cookie(s)),
        Err(e) => {
            let error = Refusal::of(e);
            let invalid = error.status() == StatusCode::BAD_REQUEST;
            let resp = page.refused(f.csrf, error);
            if invalid {
                with_cookie(resp, page.clear_cookie(s))
            } else {
                resp
            }
        }
    }
}

// ---- invitations ----

pub(super) async fn invite_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    TokenPage::Invite.show(&state.services, &headers, q)
}

pub(super) async fn invite_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    SignInStep(form): SignInStep<NewPasswordForm>,
) -> Response {
    let s = &state.services;
    let page = TokenPage::Invite;
    let (f, token) = match page.posted(s, &meta, &headers, form).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    match passwords::accept_invite(s, &meta, token, &f.new_password).await {
        Ok(t) => {
            let mut resp = see_other("/inbox");
            resp.headers_mut().extend(with_cookies(s, &t));
            with_cookie(resp, page.clear_cookie(s))
        }
        Err(e) => {
            let mut error = Refusal::of(e);
            // The API names the field `password`; this form calls it `new_password`.
            if let Some(v) = error.fields.0.remove("password") {
                error.fields.0.insert("new_password".into(), v);
            }
            page.refused(f.csrf, error)
        }
    }
}
