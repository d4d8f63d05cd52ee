//! The web console over plain HTTP (what a browser sends, without a browser): sign-in steps and
//! their protections, session cookies, redirects, escaping, the error pages, static files.
//! The browser suite (crates/browser-tests) drives the same pages in Chromium.

use crate::two_factor::{enable_totp, next_step, totp_now};
use palisade_testkit::{spawn_app, Db, TestApp, GOOD_PASSWORD};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use std::collections::BTreeMap;

both!(
    anonymous_visitors_are_sent_to_sign_in,
    every_page_has_the_strict_content_security_policy,
    sign_in_sets_the_session_cookies_and_opens_the_inbox,
    sign_in_forms_from_another_site_or_without_their_token_are_refused,
    a_refused_sign_in_shows_the_api_message_and_escapes_what_was_typed,
    the_second_factor_is_asked_on_the_sign_in_page,
    an_expired_access_cookie_is_renewed_by_the_next_page,
    signing_out_ends_the_session,
    the_renewal_route_needs_the_csrf_token,
    a_reset_link_moves_its_token_out_of_the_address_bar,
    unknown_pages_are_html_404s_and_api_404s_stay_json,
    static_files_are_versioned_and_cacheable,
    registration_through_the_console_signs_the_owner_in,
);

/// A cookie jar and a client that does not follow redirects: a browser, step by step (shared by
/// the console page tests).
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    pub(crate) jar: BTreeMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the hidden `csrf` field of the page's form.
    pub(crate) fn form_token(&self) -> String {
        let at = self.text.find(r#"name="csrf" value=""#).expect("a form");
        let rest = &self.text[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    pub(crate) fn cookie(&self, base: &str) -> Option<&String> {
        self.jar
            .get(&format!("__Host-{base}"))
            .or_else(|| self.jar.get(base))
    }

    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let mut req = self
            .client
            .request(method, self.app.url(path))
            .header("accept", "text/html");
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !cookies.is_empty() {
            req = req.header("cookie", cookies.join("; "));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_owned(), v.to_owned());
            }
        }
        let text = r.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            text,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        self.request(
            Method::GET,
            path,
            &[("sec-fetch-site", "same-origin")],
            None,
        )
        .await
    }

    pub(crate) async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.request(
            Method::POST,
            path,
            &[("sec-fetch-site", "same-origin")],
            Some(form),
        )
        .await
    }

    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let token = self.get("/login").await.form_token();
        self.post_form(
            "/login",
            &[("email", email), ("password", password), ("csrf", &token)],
        )
        .await
    }
}

/// A console page requested as a signed-in browser does: the API's access cookie (under both
/// names the console reads), no redirect followed.
pub(crate) async fn signed_in_get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("accept", "text/html")
        .header(
            "cookie",
            format!("palisade_access={token}; __Host-palisade_access={token}"),
        )
        .send()
        .await
        .unwrap()
}

/// [`signed_in_get`]'s status and HTML.
pub(crate) async fn signed_in_page(app: &TestApp, token: &str, path: &str) -> (StatusCode, String) {
    let r = signed_in_get(app, token, path).await;
    (r.status(), r.text().await.unwrap())
}

async fn anonymous_visitors_are_sent_to_sign_in(db: Db) {
    let app = spawn_app(db).await;
    let mut b = Browser::new(&app);
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/login");
    let inbox = b.get("/inbox?status=open").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER);
    assert_eq!(inbox.location(), "/login?next=/inbox%3Fstatus%3Dopen");
    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.text.contains("<h1>Sign in</h1>"), "{}", login.text);
    assert!(b.cookie("palisade_form").is_some(), "the form token cookie");
}

async fn every_page_has_the_strict_content_security_policy(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let mut b = Browser::new(&app);
    let mut pages = vec![b.get("/login").await, b.get("/register").await];
    b.sign_in("ana@acme.example", GOOD_PASSWORD).await;
    pages.push(b.get("/inbox").await);
    for p in pages {
        assert_eq!(p.status, StatusCode::OK);
        let csp = p.headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(p.headers["cache-control"], "no-store");
        // No inline script, handler or style anywhere in the page.
        assert!(!p.text.contains("<script>"), "inline script");
        assert!(!p.text.contains(" style="), "inline style");
        assert!(!p.text.contains(" onclick="), "inline handler");
    }
}

async fn sign_in_sets_the_session_cookies_and_opens_the_inbox(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let mut b = Browser::new(&app);
    let token = b
        .get("/login?next=/inbox%3Fstatus%3Dopen")
        .await
        .form_token();
    let r = b
        .post_form(
            "/login",
            &[
                ("email", "ana@acme.example"),
                ("password", GOOD_PASSWORD),
                ("csrf", &token),
                ("next", "/inbox?status=open"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), "/inbox?status=open");
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let access = set.iter().find(|c| c.contains("palisade_access=")).unwrap();
    assert!(access.contains("HttpOnly") && access.contains("SameSite=Strict"));
    let inbox = b.get("/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.text.contains("<h1>Inbox</h1>"));
    assert!(inbox.text.contains("Owner Person"));
    // A next that leaves the site is ignored.
    let mut other = Browser::new(&app);
    let token = other.get("/login").await.form_token();
    let r = other
        .post_form(
            "/login",
            &[
                ("email", "ana@acme.example"),
                ("password", GOOD_PASSWORD),
                ("csrf", &token),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/");
    // Signed in, /login goes home.
    assert_eq!(other.get("/login").await.location(), "/inbox");
}

async fn sign_in_forms_from_another_site_or_without_their_token_are_refused(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let mut b = Browser::new(&app);
    let token = b.get("/login").await.form_token();
    let form = [
        ("email", "ana@acme.example"),
        ("password", GOOD_PASSWORD),
        ("csrf", token.as_str()),
    ];
    let cross = b
        .request(
            Method::POST,
            "/login",
            &[("sec-fetch-site", "cross-site")],
            Some(&form),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let no_headers = b.request(Method::POST, "/login", &[], Some(&form)).await;
    assert_eq!(no_headers.status, StatusCode::FORBIDDEN);
    let other_origin = b
        .request(
            Method::POST,
            "/login",
            &[("origin", "https://evil.example")],
            Some(&form),
        )
        .await;
    assert_eq!(other_origin.status, StatusCode::FORBIDDEN);
    let wrong_token = b
        .post_form(
            "/login",
            &[
                ("email", "ana@acme.example"),
                ("password", GOOD_PASSWORD),
                ("csrf", &"0".repeat(64)),
            ],
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    assert!(b.cookie("palisade_access").is_none(), "nobody signed in");
    let ok = b.post_form("/login", &form).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

async fn a_refused_sign_in_shows_the_api_message_and_escapes_what_was_typed(db: Db) {
    let app = spawn_app(db).await;
    let mut b = Browser::new(&app);
    let typed = r#""><script>alert(1)</script>"#;
    let r = b.sign_in(typed, "wrong-password-entirely").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains(r#"role="alert""#));
    assert!(r.text.contains("email or password"), "{}", r.text);
    assert!(
        !r.text.contains("<script>alert(1)"),
        "typed text is escaped"
    );
    assert!(
        r.text.contains("&lt;script&gt;alert(1)") || r.text.contains("&#60;script&#62;alert(1)"),
        "{}",
        r.text
    );
}

async fn the_second_factor_is_asked_on_the_sign_in_page(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (uri, _) = enable_totp(&app, &owner).await;
    let mut b = Browser::new(&app);
    let r = b.sign_in("ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location().starts_with("/login?step=2fa"),
        "{}",
        r.location()
    );
    assert!(b.cookie("palisade_access").is_none());
    let step = b.get(r.location()).await;
    assert!(step.text.contains("Authentication code"), "{}", step.text);
    assert!(step.text.contains("Use a passkey"));
    assert!(
        !step.text.contains("pal_mfa_"),
        "the challenge stays in its cookie"
    );
    let token = step.form_token();
    let wrong = b
        .post_form("/login/2fa", &[("code", "000000"), ("csrf", &token)])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains(r#"role="alert""#));
    next_step(&app);
    let code = totp_now(&app, &uri);
    let ok = b
        .post_form("/login/2fa", &[("code", &code), ("csrf", &token)])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert_eq!(ok.location(), "/");
    assert!(b.cookie("palisade_access").is_some());
    assert!(
        b.cookie("palisade_mfa").is_none(),
        "the challenge cookie is gone"
    );
    assert_eq!(b.get("/inbox").await.status, StatusCode::OK);
}

async fn an_expired_access_cookie_is_renewed_by_the_next_page(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let mut b = Browser::new(&app);
    b.sign_in("ana@acme.example", GOOD_PASSWORD).await;
    let old_access = b.cookie("palisade_access").unwrap().clone();
    app.clock.advance(time::Duration::minutes(16));
    let r = b.get("/inbox").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_access = b.cookie("palisade_access").unwrap().clone();
    assert_ne!(
        new_access, old_access,
        "a new access token came with the page"
    );
    // A refresh cookie that was already used is reuse: the session ends and the page sends
    // the visitor to sign in.
    let mut replay = Browser::new(&app);
    let _ = replay.get("/login").await;
    replay.jar = b.jar.clone();
    replay.jar.retain(|k, _| !k.contains("palisade_access"));
    b.jar.retain(|k, _| !k.contains("palisade_access"));
    assert_eq!(b.get("/inbox").await.status, StatusCode::OK, "renewed once");
    let again = replay.get("/inbox").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.location().starts_with("/login"));
}

async fn signing_out_ends_the_session(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let mut b = Browser::new(&app);
    b.sign_in("ana@acme.example", GOOD_PASSWORD).await;
    let access = b.cookie("palisade_access").unwrap().clone();
    let inbox = b.get("/inbox").await;
    let csrf = inbox.form_token();
    let forged = b.post_form("/logout", &[("csrf", &"ab".repeat(32))]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let r = b.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?reason=signed_out");
    assert!(b.cookie("palisade_access").is_none());
    let me = app.get("/api/v1/me", &access).await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "the session is revoked"
    );
}

async fn the_renewal_route_needs_the_csrf_token(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let mut b = Browser::new(&app);
    b.sign_in("ana@acme.example", GOOD_PASSWORD).await;
    let csrf = b.cookie("palisade_csrf").unwrap().clone();
    let refused = b
        .request(
            Method::POST,
            "/session/refresh",
            &[("sec-fetch-site", "same-origin")],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let ok = b
        .request(
            Method::POST,
            "/session/refresh",
            &[("sec-fetch-site", "same-origin"), ("x-csrf-token", &csrf)],
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body: serde_json::Value = serde_json::from_str(&ok.text).unwrap();
    assert!(body["expires_at"].as_i64().unwrap() > 0);
    assert!(!ok.text.contains("pal_rt_"), "no token in the answer");
}

async fn a_reset_link_moves_its_token_out_of_the_address_bar(db: Db) {
    let app = spawn_app(db).await;
    let mut b = Browser::new(&app);
    let r = b.get("/reset-password?token=pal_pr_abc").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/reset-password");
    assert_eq!(b.cookie("palisade_reset").unwrap(), "pal_pr_abc");
    let page = b.get("/reset-password").await;
    assert!(page.text.contains("New password"), "{}", page.text);
    assert!(!page.text.contains("pal_pr_abc"));
    let token = page.form_token();
    let bad = b
        .post_form(
            "/reset-password",
            &[
                ("new_password", "a-brand-new-long-passphrase"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Send a new link"));
    assert!(
        b.cookie("palisade_reset").is_none(),
        "a dead token is dropped"
    );
}

async fn unknown_pages_are_html_404s_and_api_404s_stay_json(db: Db) {
    let app = spawn_app(db).await;
    let mut b = Browser::new(&app);
    let page = b.get("/no-such-page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.text.contains("Page not found"));
    let api = b.get("/api/v1/no-such-route").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.text.starts_with("{\"error\""), "{}", api.text);
}

async fn static_files_are_versioned_and_cacheable(db: Db) {
    let app = spawn_app(db).await;
    let mut b = Browser::new(&app);
    let login = b.get("/login").await;
    let at = login.text.find("/static/app.css?v=").unwrap();
    let href = &login.text[at..];
    let href = &href[..href.find('"').unwrap()];
    let css = b.get(href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(css.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let unversioned = b.get("/static/app.js").await;
    assert_eq!(unversioned.headers["cache-control"], "no-cache");
    assert_eq!(b.get("/static/nope.js").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get("/static/..%2Fsrc%2Flib.rs").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn registration_through_the_console_signs_the_owner_in(db: Db) {
    let app = spawn_app(db).await;
    let mut b = Browser::new(&app);
    let token = b.get("/register").await.form_token();
    let weak = b
        .post_form(
            "/register",
            &[
                ("tenant_name", "Acme"),
                ("name", "Ana"),
                ("email", "ana@acme.example"),
                ("password", "short"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.text.contains(r#"id="password-error""#));
    assert!(weak.text.contains(r#"aria-invalid="true""#));
    assert!(weak.text.contains(r#"value="ana@acme.example""#), "kept");
    let ok = b
        .post_form(
            "/register",
            &[
                ("tenant_name", "Acme"),
                ("name", "Ana"),
                ("email", "ana@acme.example"),
                ("password", GOOD_PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert_eq!(
        ok.location(),
        "/verify-email",
        "the mailed code is the next step"
    );
    let verify = b.get("/verify-email").await;
    assert!(verify.text.contains("Verification code"));
    assert!(verify.text.contains("Skip for now"), "optional by default");
    let inbox = b.get("/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.text.contains("No conversations yet"));
}
