//! TOTP and recovery codes: enrolment, the two-step sign-in, replays, the challenge's limits,
//! removal, and the credentials that may never touch a user's second factors.

use crate::support::{assert_error, audit_count, login_from, login_resp, set_cookies};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp, Session, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    the_whole_story_setup_confirm_logout_and_sign_in_with_a_code,
    a_code_is_accepted_once_and_wrong_codes_count_toward_the_lockout,
    an_mfa_token_allows_five_tries_one_success_and_five_minutes,
    two_concurrent_completions_of_one_challenge_let_exactly_one_in,
    a_recovery_code_works_once_mails_and_regenerating_voids_the_old_ones,
    disabling_needs_the_password_and_a_code,
    setup_replaces_a_pending_secret_and_refuses_while_active,
    keys_and_impersonations_are_refused_on_every_route,
    another_tenants_codes_and_challenges_are_worthless_here,
    malformed_second_steps_are_precise_4xx,
);

/// The current code of the authenticator described by `otpauth_uri`, at the app's clock.
pub fn totp_now(app: &TestApp, otpauth_uri: &str) -> String {
    let totp = totp_rs::Totp::from_url(otpauth_uri).expect("a valid otpauth URI");
    let t = u64::try_from(app.services.clock.now().unix_timestamp()).unwrap();
    totp.generate(t).to_string()
}

/// The next 30-second step, so a fresh code exists.
pub fn next_step(app: &TestApp) {
    app.clock.advance(time::Duration::seconds(30));
}

/// Sets up and confirms TOTP for `s`; answers the otpauth URI and the recovery codes.
pub async fn enable_totp(app: &TestApp, s: &Session) -> (String, Vec<String>) {
    let r = app
        .post(
            "/api/v1/auth/2fa/totp/setup",
            Some(&s.access_token),
            json!({"password": s.password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let uri = r.body["otpauth_uri"].as_str().unwrap().to_owned();
    let code = totp_now(app, &uri);
    let r = app
        .post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&s.access_token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (uri, codes)
}

/// The first step of a sign-in for a user with a second factor: the `mfa_token`.
pub async fn mfa_token(app: &TestApp, email: &str) -> String {
    let r = login_resp(app, email, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["mfa_required"], true, "{}", r.body);
    r.body["mfa_token"].as_str().unwrap().to_owned()
}

pub async fn second_step(app: &TestApp, token: &str, field: &str, code: &str) -> Resp {
    app.post(
        "/api/v1/auth/login/2fa",
        None,
        json!({"mfa_token": token, field: code}),
    )
    .await
}

async fn the_whole_story_setup_confirm_logout_and_sign_in_with_a_code(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(st.status, StatusCode::OK);
    assert_eq!(
        st.body,
        json!({"totp": false, "passkeys": 0, "recovery_codes_left": 0, "required": false})
    );

    let wrong = app
        .post(
            "/api/v1/auth/2fa/totp/setup",
            Some(&owner.access_token),
            json!({"password": "not-the-password-at-all"}),
        )
        .await;
    assert_error(
        &wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(wrong.body["error"]["fields"]["password"].is_array());

    let r = app
        .post(
            "/api/v1/auth/2fa/totp/setup",
            Some(&owner.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap();
    let uri = r.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Palisade:ana%40acme.example?"),
        "{uri}"
    );
    let parsed = totp_rs::Totp::from_url(uri).unwrap();
    assert_eq!(parsed.issuer(), Some("Palisade"));
    assert_eq!(parsed.account_name(), "ana@acme.example");
    assert_eq!(parsed.digits(), 6);
    assert_eq!(parsed.step(), 30);
    assert_eq!(parsed.algorithm(), totp_rs::Algorithm::SHA1);
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(r.body["qr_svg"].as_str().unwrap().contains("<svg"));
    // Inactive until confirmed: signing in still needs only the password.
    assert_eq!(
        login_resp(&app, &owner.email, GOOD_PASSWORD).await.body["mfa_required"],
        Value::Null
    );

    let bad = app
        .post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&owner.access_token),
            json!({"code": "000000"}),
        )
        .await;
    let good_code = totp_now(&app, uri);
    if good_code != "000000" {
        assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code");
    }
    let r = app
        .post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&owner.access_token),
            json!({"code": good_code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes = r.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let mut distinct: Vec<&str> = codes.iter().map(|c| c.as_str().unwrap()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    let mail = app.wait_mail(&owner.email, "2fa_enabled").await;
    assert!(!mail.subject.contains(secret));
    assert_eq!(audit_count(&app, "auth.2fa.totp_enabled").await, 1);
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(
        st.body,
        json!({"totp": true, "passkeys": 0, "recovery_codes_left": 10, "required": false})
    );

    assert_eq!(
        app.post("/api/v1/auth/logout", Some(&owner.access_token), json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let first = login_resp(&app, &owner.email, GOOD_PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["mfa_required"], true);
    assert_eq!(first.body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(first.body["expires_in"], 300);
    let token = first.body["mfa_token"].as_str().unwrap();
    assert!(token.starts_with("pal_mfa_"));
    assert!(first.body.get("access_token").is_none());
    assert!(first.body.get("refresh_token").is_none());
    assert!(
        set_cookies(&first).is_empty(),
        "no cookies before the second factor"
    );

    // The code that confirmed the authenticator was accepted once already.
    let replay = second_step(&app, token, "code", &good_code).await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "code_already_used");
    next_step(&app);
    let done = second_step(&app, token, "code", &totp_now(&app, uri)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("pal_rt_"));
    assert_eq!(done.body["token_type"], "Bearer");
    assert!(
        !set_cookies(&done).is_empty(),
        "cookies as a password sign-in sets them"
    );
    let me = app
        .get("/api/v1/me", done.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], owner.user_id.as_str());
    assert_eq!(audit_count(&app, "auth.login.mfa_required").await, 1);
    assert_eq!(audit_count(&app, "auth.login.mfa_failed").await, 1);
}

async fn a_code_is_accepted_once_and_wrong_codes_count_toward_the_lockout(db: Db) {
    let app = spawn_app_with(db, |raw| raw.trusted_proxies = "127.0.0.1".into()).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (uri, _) = enable_totp(&app, &owner).await;
    next_step(&app);
    let code = totp_now(&app, &uri);
    let t1 = mfa_token(&app, &owner.email).await;
    assert_eq!(
        second_step(&app, &t1, "code", &code).await.status,
        StatusCode::OK
    );
    // The same code on a fresh challenge: a replay.
    let t2 = mfa_token(&app, &owner.email).await;
    assert_error(
        &second_step(&app, &t2, "code", &code).await,
        StatusCode::UNAUTHORIZED,
        "code_already_used",
    );
    // The previous and next steps are accepted, once each: the next step's code works now.
    let later = {
        let totp = totp_rs::Totp::from_url(&uri).unwrap();
        let t = u64::try_from(app.services.clock.now().unix_timestamp()).unwrap() + 30;
        totp.generate(t).to_string()
    };
    let t3 = mfa_token(&app, &owner.email).await;
    assert_eq!(
        second_step(&app, &t3, "code", &later).await.status,
        StatusCode::OK
    );

    // Someone with the password at another address: wrong codes count toward the account
    // lock like wrong passwords (threshold 5; the success above cleared the replay's count).
    let attacker = "203.0.113.9";
    let r = login_from(&app, attacker, &owner.email, GOOD_PASSWORD).await;
    let t4 = r.body["mfa_token"].as_str().unwrap().to_owned();
    let wrong = if later == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        assert_error(
            &second_step(&app, &t4, "code", wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        );
    }
    assert_eq!(audit_count(&app, "auth.login.locked").await, 1);
    let locked = login_from(&app, attacker, &owner.email, GOOD_PASSWORD).await;
    assert_error(&locked, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    // The owner, at an address they signed in from, still gets in with a fresh code.
    next_step(&app);
    next_step(&app);
    let t5 = mfa_token(&app, &owner.email).await;
    let r = second_step(&app, &t5, "code", &totp_now(&app, &uri)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn an_mfa_token_allows_five_tries_one_success_and_five_minutes(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (uri, codes) = enable_totp(&app, &owner).await;
    next_step(&app);
    // Five wrong recovery codes (they count toward the lock, which an admin could lift; the
    // challenge itself is dead after the fifth).
    let t = mfa_token(&app, &owner.email).await;
    for _ in 0..5 {
        assert_error(
            &second_step(&app, &t, "recovery_code", "AAAAA-AAAAA").await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        );
    }
    assert_error(
        &second_step(&app, &t, "code", &totp_now(&app, &uri)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_token",
    );
    // Lift the lock the failures caused (the admin route), then: single use.
    app.db
        .execute_as_owner("DELETE FROM login_throttle")
        .await
        .unwrap();
    let t = mfa_token(&app, &owner.email).await;
    assert_eq!(
        second_step(&app, &t, "code", &totp_now(&app, &uri))
            .await
            .status,
        StatusCode::OK
    );
    next_step(&app);
    assert_error(
        &second_step(&app, &t, "code", &totp_now(&app, &uri)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_token",
    );
    // Five minutes.
    let t = mfa_token(&app, &owner.email).await;
    app.clock.advance(time::Duration::seconds(301));
    assert_error(
        &second_step(&app, &t, "recovery_code", &codes[0]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_token",
    );
    // The recovery code was not spent by the refused attempt.
    let t = mfa_token(&app, &owner.email).await;
    assert_eq!(
        second_step(&app, &t, "recovery_code", &codes[0])
            .await
            .status,
        StatusCode::OK
    );
}

async fn two_concurrent_completions_of_one_challenge_let_exactly_one_in(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (uri, codes) = enable_totp(&app, &owner).await;
    for round in 0..3 {
        next_step(&app);
        let t = mfa_token(&app, &owner.email).await;
        let (field, code) = if round == 1 {
            ("recovery_code", codes[0].clone())
        } else {
            ("code", totp_now(&app, &uri))
        };
        let (a, b) = tokio::join!(
            second_step(&app, &t, field, &code),
            second_step(&app, &t, field, &code)
        );
        let ok = [&a, &b]
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "exactly one wins: {} / {}", a.body, b.body);
        let loser = if a.status == StatusCode::OK { &b } else { &a };
        assert_eq!(loser.status, StatusCode::UNAUTHORIZED, "{}", loser.body);
    }
    let sessions = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM sessions")
        .await
        .unwrap();
    assert_eq!(sessions, 4, "registration + one per round");
}

async fn a_recovery_code_works_once_mails_and_regenerating_voids_the_old_ones(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (_, codes) = enable_totp(&app, &owner).await;
    let t = mfa_token(&app, &owner.email).await;
    // Case and the dash do not matter.
    let typed = codes[3].to_lowercase().replace('-', "");
    let r = second_step(&app, &t, "recovery_code", &typed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mail = app.wait_mail(&owner.email, "recovery_code_used").await;
    assert!(mail.text.contains("9 unused"), "{}", mail.text);
    assert_eq!(audit_count(&app, "auth.2fa.recovery_code_used").await, 1);
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(st.body["recovery_codes_left"], 9);
    let t = mfa_token(&app, &owner.email).await;
    assert_error(
        &second_step(&app, &t, "recovery_code", &codes[3]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    );

    let wrong = app
        .post(
            "/api/v1/auth/2fa/recovery-codes",
            Some(&owner.access_token),
            json!({"password": "not-the-password-at-all"}),
        )
        .await;
    assert_error(
        &wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let r = app
        .post(
            "/api/v1/auth/2fa/recovery-codes",
            Some(&owner.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh: Vec<String> = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    app.wait_mail(&owner.email, "recovery_codes_regenerated")
        .await;
    let t = mfa_token(&app, &owner.email).await;
    assert_error(
        &second_step(&app, &t, "recovery_code", &codes[0]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    );
    assert_eq!(
        second_step(&app, &t, "recovery_code", &fresh[0])
            .await
            .status,
        StatusCode::OK
    );
    // Without a second factor there is nothing to recover.
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    assert_error(
        &app.post(
            "/api/v1/auth/2fa/recovery-codes",
            Some(&agent.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await,
        StatusCode::CONFLICT,
        "totp_not_enabled",
    );
}

async fn disable(app: &TestApp, s: &Session, password: &str, code: &str) -> Resp {
    app.send(
        Method::DELETE,
        "/api/v1/auth/2fa/totp",
        Some(&s.access_token),
        Some(json!({"password": password, "code": code})),
    )
    .await
}

async fn disabling_needs_the_password_and_a_code(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (uri, codes) = enable_totp(&app, &owner).await;
    next_step(&app);
    let code = totp_now(&app, &uri);
    assert_error(
        &disable(&app, &owner, "not-the-password-at-all", &code).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let wrong = if code == "123456" { "654321" } else { "123456" };
    assert_error(
        &disable(&app, &owner, GOOD_PASSWORD, wrong).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
    );
    assert_error(
        &disable(&app, &owner, GOOD_PASSWORD, "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
    );
    // A recovery code works too.
    let r = disable(&app, &owner, GOOD_PASSWORD, &codes[0]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.wait_mail(&owner.email, "2fa_disabled").await;
    assert_eq!(audit_count(&app, "auth.2fa.totp_disabled").await, 1);
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(st.body["totp"], false);
    assert_eq!(st.body["recovery_codes_left"], 0);
    let r = login_resp(&app, &owner.email, GOOD_PASSWORD).await;
    assert!(r.body["access_token"].is_string(), "{}", r.body);
    assert_error(
        &disable(&app, &owner, GOOD_PASSWORD, &code).await,
        StatusCode::CONFLICT,
        "totp_not_enabled",
    );
}

async fn setup_replaces_a_pending_secret_and_refuses_while_active(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let setup = || async {
        app.post(
            "/api/v1/auth/2fa/totp/setup",
            Some(&owner.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await
    };
    assert_error(
        &app.post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&owner.access_token),
            json!({"code": "123456"}),
        )
        .await,
        StatusCode::CONFLICT,
        "totp_not_set_up",
    );
    let first = setup().await;
    let second = setup().await;
    assert_ne!(first.body["secret"], second.body["secret"]);
    let old_code = totp_now(&app, first.body["otpauth_uri"].as_str().unwrap());
    let new_code = totp_now(&app, second.body["otpauth_uri"].as_str().unwrap());
    if old_code != new_code {
        assert_error(
            &app.post(
                "/api/v1/auth/2fa/totp/confirm",
                Some(&owner.access_token),
                json!({"code": old_code}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
        );
    }
    let r = app
        .post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&owner.access_token),
            json!({"code": new_code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error(&setup().await, StatusCode::CONFLICT, "totp_already_enabled");
    assert_error(
        &app.post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&owner.access_token),
            json!({"code": new_code}),
        )
        .await,
        StatusCode::CONFLICT,
        "totp_already_enabled",
    );
    // The secret is stored encrypted, never as the base32 the user saw.
    let secret = second.body["secret"].as_str().unwrap();
    let plain = app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM totp_credentials WHERE secret LIKE '%{secret}%'"
        ))
        .await
        .unwrap();
    assert_eq!(plain, 0);
}

/// Every route of this module, with a body that would otherwise be acceptable.
fn routes(password: &str) -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/auth/2fa", None),
        (
            Method::POST,
            "/api/v1/auth/2fa/totp/setup",
            Some(json!({"password": password})),
        ),
        (
            Method::POST,
            "/api/v1/auth/2fa/totp/confirm",
            Some(json!({"code": "123456"})),
        ),
        (
            Method::POST,
            "/api/v1/auth/2fa/recovery-codes",
            Some(json!({"password": password})),
        ),
        (
            Method::DELETE,
            "/api/v1/auth/2fa/totp",
            Some(json!({"password": password, "code": "123456"})),
        ),
    ]
}

async fn keys_and_impersonations_are_refused_on_every_route(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "sync", "scopes": ["full_access"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    for (method, path, body) in routes(GOOD_PASSWORD) {
        let r = app
            .send(method.clone(), path, Some(&key), body.clone())
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "api_key_not_allowed");
        let r = app.send(method.clone(), path, Some(&imp), body).await;
        assert_error(&r, StatusCode::FORBIDDEN, "impersonation_forbidden");
    }
    // Nor may support change who must use a second factor.
    let r = app
        .patch("/api/v1/tenant", &imp, json!({"require_2fa": "off"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "impersonation_forbidden");
    let r = app
        .patch("/api/v1/tenant", &key, json!({"require_2fa": "off"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "api_key_not_allowed");
    // Nothing was set up meanwhile.
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(st.body["totp"], false);
    let n = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM totp_credentials")
        .await
        .unwrap();
    assert_eq!(n, 0);
}

async fn another_tenants_codes_and_challenges_are_worthless_here(db: Db) {
    let app = spawn_app(db).await;
    let ana = app.register("Acme", "ana@acme.example").await;
    let bo = app.register("Globex", "bo@globex.example").await;
    let (ana_uri, ana_codes) = enable_totp(&app, &ana).await;
    let (bo_uri, _) = enable_totp(&app, &bo).await;
    next_step(&app);
    let bo_token = mfa_token(&app, &bo.email).await;
    // Ana's recovery code and TOTP code do not complete Bo's sign-in.
    assert_error(
        &second_step(&app, &bo_token, "recovery_code", &ana_codes[0]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    );
    let ana_code = totp_now(&app, &ana_uri);
    if ana_code != totp_now(&app, &bo_uri) {
        assert_error(
            &second_step(&app, &bo_token, "code", &ana_code).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        );
    }
    // Each sees only their own status.
    let st = app.get("/api/v1/auth/2fa", &bo.access_token).await;
    assert_eq!(st.body["recovery_codes_left"], 10);
    let r = second_step(&app, &bo_token, "code", &totp_now(&app, &bo_uri)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let me = app
        .get("/api/v1/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.body["id"], bo.user_id.as_str());
}

async fn malformed_second_steps_are_precise_4xx(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    enable_totp(&app, &owner).await;
    let t = mfa_token(&app, &owner.email).await;
    let both = app
        .post(
            "/api/v1/auth/login/2fa",
            None,
            json!({"mfa_token": t, "code": "123456", "recovery_code": "AAAAA-AAAAA"}),
        )
        .await;
    assert_error(&both, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let neither = app
        .post("/api/v1/auth/login/2fa", None, json!({"mfa_token": t}))
        .await;
    assert_error(
        &neither,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    for token in ["pal_mfa_unknown", "pal_rt_whatever", "", &"x".repeat(5000)] {
        let r = second_step(&app, token, "code", "123456").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    }
    let extra = app
        .post(
            "/api/v1/auth/login/2fa",
            None,
            json!({"mfa_token": t, "code": "123456", "remember": true}),
        )
        .await;
    assert_error(&extra, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let short = app
        .post(
            "/api/v1/auth/2fa/totp/confirm",
            Some(&owner.access_token),
            json!({"code": 123456}),
        )
        .await;
    assert_error(&short, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
}
