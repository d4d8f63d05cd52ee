//! Registration and the email verification page.

use super::*;

#[derive(Template)]
#[template(path = "auth/register.html")]
pub(super) struct RegisterPage {
    asset_version: &'static str,
    csrf: String,
    tenant_name: String,
    name: String,
    email: String,
    error: Refusal,
}

pub(super) async fn register_page(
    State(state): State<AppState>,
    viewer: MaybeViewer,
    headers: HeaderMap,
) -> Response {
    if let Some(p) = &viewer.0 {
        return Redirect::to(home_of(p)).into_response();
    }
    let (csrf, set) = form_token(&headers, state.services.settings.cookie_secure);
    with_cookie(
        render(&RegisterPage {
            asset_version: assets::version(),
            csrf,
            tenant_name: String::new(),
            name: String::new(),
            email: String::new(),
            error: Refusal::default(),
        }),
        set,
    )
}

#[derive(Deserialize)]
pub(super) struct RegisterForm {
    tenant_name: String,
    name: String,
    email: String,
    password: String,
    csrf: String,
}

impl WithCsrf for RegisterForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn register_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    _headers: HeaderMap,
    SignInStep(f): SignInStep<RegisterForm>,
) -> Response {
    let s = &state.services;
    let result = match ip_limit(&s.limits.register, &meta).await {
        Ok(()) => {
            register::register(s, &meta, &f.tenant_name, &f.name, &f.email, &f.password).await
        }
        Err(e) => Err(e.0),
    };
    match result {
        Ok(r) => {
            // Registration mailed a code: the next step is entering it (skippable unless
            // verification is required).
            let mut resp = see_other("/verify-email");
            resp.headers_mut().extend(with_cookies(s, &r.tokens));
            resp
        }
        Err(e) => {
            let error = Refusal::of(e);
            render_with(
                error.status(),
                &RegisterPage {
                    asset_version: assets::version(),
                    csrf: f.csrf,
                    tenant_name: f.tenant_name,
                    name: f.name,
                    email: f.email,
                    error,
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "auth/verify_email.html")]
pub(super) struct VerifyEmailPage {
    chrome: Chrome,
    verified: bool,
    /// `PALISADE_EMAIL_VERIFICATION=required`: no way around it.
    required: bool,
}

pub(super) async fn verify_email_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let verified = viewer.principal.user.email_verified;
    let required = state.services.settings.email_verification
        == palisade_core::settings::EmailVerification::Required;
    let chrome = Chrome::new(&state.services, &viewer, "Verify your email", Nav::None);
    render(&VerifyEmailPage {
        chrome,
        verified,
        required,
    })
}
