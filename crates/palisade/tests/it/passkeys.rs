//! Passkeys: registration, listing, removal and passwordless sign-in, with a software
//! authenticator (`SoftPasskey`) standing in for the browser and the device.
//!
//! `SoftPasskey` keeps no resident credentials: it signs only for a credential named in
//! `allowCredentials`, and returns no user handle. For a passwordless sign-in the tests do what a
//! resident-key authenticator does by itself: they name the credential it holds and add the
//! user handle it stored at registration (the user's id). Neither is covered by the signature,
//! so the server's checks (challenge, origin, RP id, signature, user verification, counter) all
//! run on the real answer.

use crate::support::{assert_error, audit_count, field_messages};
use palisade_testkit::{spawn_app_with, Db, Resp, Session, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

both!(
    a_passkey_signs_in_without_a_password,
    challenges_are_single_use_and_expire,
    two_finishes_of_one_challenge_sign_in_once,
    a_credential_belongs_to_one_account,
    a_wrong_origin_is_refused,
    removing_a_passkey_needs_the_password_and_ownership,
    keys_and_impersonations_are_refused_on_every_route,
    deleted_users_and_suspended_tenants_cannot_sign_in,
    a_counter_that_goes_backwards_is_refused,
    malformed_and_unsupported_requests_are_precise_4xx,
    without_a_domain_passkeys_are_off,
    sign_in_is_rate_limited_like_login,
    a_passkey_is_the_second_factor_after_a_password,
    the_last_passkey_stays_while_the_tenant_requires_a_second_factor,
    refused_passkey_answers_use_up_the_second_steps_tries,
);

const ORIGIN: &str = "http://localhost:8080";

async fn app(db: Db) -> TestApp {
    spawn_app_with(db, |c| c.public_url = Some(ORIGIN.into())).await
}

fn device() -> SoftPasskey {
    // `true`: the soft authenticator claims user verification (PIN or biometrics).
    SoftPasskey::new(true)
}

/// A registered credential: its id (bytes, and as the browser encodes it) and its owner.
struct Registered {
    raw_id: Vec<u8>,
    user_id: uuid::Uuid,
    id: String,
}

async fn register_start(app: &TestApp, s: &Session) -> Value {
    let r = app
        .post(
            "/api/v1/auth/passkeys/register/start",
            Some(&s.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The device's answer to registration options, from `origin`.
fn answer_registration(
    dev: &mut SoftPasskey,
    origin: &str,
    options: &Value,
) -> RegisterPublicKeyCredential {
    let ccr: CreationChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    dev.do_registration(Url::parse(origin).unwrap(), ccr)
        .expect("the soft authenticator registers")
}

async fn register_finish(app: &TestApp, s: &Session, name: &str, cred: &Value) -> Resp {
    app.post(
        "/api/v1/auth/passkeys/register/finish",
        Some(&s.access_token),
        json!({"name": name, "credential": cred}),
    )
    .await
}

async fn add_passkey(app: &TestApp, s: &Session, dev: &mut SoftPasskey, name: &str) -> Registered {
    let options = register_start(app, s).await;
    let answer = answer_registration(dev, ORIGIN, &options);
    let r = register_finish(app, s, name, &serde_json::to_value(&answer).unwrap()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    Registered {
        raw_id: answer.raw_id.clone(),
        user_id: s.user_id.parse().unwrap(),
        id: r.body["id"].as_str().unwrap().to_owned(),
    }
}

async fn login_start(app: &TestApp) -> Value {
    let r = app
        .post("/api/v1/auth/passkeys/login/start", None, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The device's answer to a passwordless sign-in, from `origin` (see the module comment).
fn answer_sign_in(
    dev: &mut SoftPasskey,
    origin: &str,
    start: &Value,
    key: &Registered,
) -> PublicKeyCredential {
    let mut rcr: RequestChallengeResponse =
        serde_json::from_value(json!({"publicKey": start["publicKey"]})).unwrap();
    rcr.public_key.allow_credentials =
        vec![
            serde_json::from_value(json!({"type": "public-key", "id": b64url(&key.raw_id)}))
                .unwrap(),
        ];
    let mut cred = dev
        .do_authentication(Url::parse(origin).unwrap(), rcr)
        .expect("the soft authenticator signs");
    cred.response.user_handle = Some(key.user_id.as_bytes().to_vec());
    cred
}

async fn login_finish(app: &TestApp, challenge_id: &Value, cred: &PublicKeyCredential) -> Resp {
    app.post(
        "/api/v1/auth/passkeys/login/finish",
        None,
        json!({"challenge_id": challenge_id, "credential": cred}),
    )
    .await
}

async fn sign_in(app: &TestApp, dev: &mut SoftPasskey, key: &Registered) -> Resp {
    let start = login_start(app).await;
    let cred = answer_sign_in(dev, ORIGIN, &start, key);
    login_finish(app, &start["challenge_id"], &cred).await
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn a_passkey_signs_in_without_a_password(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let options = register_start(&app, &owner).await;
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], "ana@acme.example");
    assert_eq!(
        pk["user"]["id"],
        b64url(uuid::Uuid::parse_str(&owner.user_id).unwrap().as_bytes()),
        "the user handle is the user's id"
    );
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 43));

    let mut dev = device();
    let answer = answer_registration(&mut dev, ORIGIN, &options);
    let r = register_finish(
        &app,
        &owner,
        "  Laptop  ",
        &serde_json::to_value(&answer).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "Laptop");
    assert!(r.body["created_at"].is_string());
    assert!(r.body["last_used_at"].is_null());
    let key = Registered {
        raw_id: answer.raw_id.clone(),
        user_id: owner.user_id.parse().unwrap(),
        id: r.body["id"].as_str().unwrap().to_owned(),
    };
    let mail = app.wait_mail("ana@acme.example", "passkey_added").await;
    assert!(mail.text.contains("Laptop"), "{}", mail.text);
    assert!(!mail.subject.contains("Laptop"));
    assert_eq!(audit_count(&app, "auth.passkey.added").await, 1);

    let list = app.get("/api/v1/auth/passkeys", &owner.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0]["id"], key.id.as_str());

    // A second start excludes the registered credential.
    let again = register_start(&app, &owner).await;
    assert_eq!(
        again["publicKey"]["excludeCredentials"][0]["id"],
        b64url(&key.raw_id)
    );

    let start = login_start(&app).await;
    assert!(start["challenge_id"].is_string());
    assert!(start.get("mediation").is_none());
    assert_eq!(start["publicKey"]["userVerification"], "required");
    let cred = answer_sign_in(&mut dev, ORIGIN, &start, &key);
    let r = login_finish(&app, &start["challenge_id"], &cred).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for field in ["access_token", "refresh_token", "session_id", "csrf_token"] {
        assert!(r.body[field].is_string(), "{field}: {}", r.body);
    }
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(r
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("access")));
    let me = app
        .get("/api/v1/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], owner.user_id.as_str());
    let recorded = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login.succeeded' \
             AND CAST(metadata AS TEXT) LIKE '%\"passkey\"%'",
        )
        .await;
    assert_eq!(
        recorded.unwrap(),
        1,
        "auth.login.succeeded with method passkey"
    );

    // The same answer again: the challenge is spent.
    let r = login_finish(&app, &start["challenge_id"], &cred).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");
    let list = app.get("/api/v1/auth/passkeys", &owner.access_token).await;
    assert!(list.body["data"][0]["last_used_at"].is_string());
    // And a second sign-in works (the counter moved on).
    assert_eq!(sign_in(&app, &mut dev, &key).await.status, StatusCode::OK);
}

async fn challenges_are_single_use_and_expire(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    // A registration finished after five minutes is refused; so is its replay after success.
    let options = register_start(&app, &owner).await;
    let answer = serde_json::to_value(answer_registration(&mut dev, ORIGIN, &options)).unwrap();
    app.clock.advance(time::Duration::seconds(301));
    let r = register_finish(&app, &owner, "Late", &answer).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let options = register_start(&app, &owner).await;
    let answer = serde_json::to_value(answer_registration(&mut dev, ORIGIN, &options)).unwrap();
    assert_eq!(
        register_finish(&app, &owner, "Phone", &answer).await.status,
        StatusCode::CREATED
    );
    let r = register_finish(&app, &owner, "Phone", &answer).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");

    // A sign-in challenge lives five minutes.
    let start = login_start(&app).await;
    let cred = answer_sign_in(&mut dev, ORIGIN, &start, &key);
    app.clock.advance(time::Duration::seconds(301));
    let r = login_finish(&app, &start["challenge_id"], &cred).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");
    // An answer to one challenge does not fit another.
    let other = login_start(&app).await;
    let r = login_finish(&app, &other["challenge_id"], &cred).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
    // ...and that failed try spent the other challenge too.
    let cred = answer_sign_in(&mut dev, ORIGIN, &other, &key);
    let r = login_finish(&app, &other["challenge_id"], &cred).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");
}

async fn two_finishes_of_one_challenge_sign_in_once(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let start = login_start(&app).await;
    let cred = answer_sign_in(&mut dev, ORIGIN, &start, &key);
    let (a, b) = tokio::join!(
        login_finish(&app, &start["challenge_id"], &cred),
        login_finish(&app, &start["challenge_id"], &cred)
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{} / {}", a.body, b.body);
}

async fn a_credential_belongs_to_one_account(db: Db) {
    let app = app(db).await;
    let ana = app.register("Acme", "ana@acme.example").await;
    let bob = app.register("Beta", "bob@beta.example").await;
    let mut dev = device();
    let options = register_start(&app, &bob).await;
    let answer = answer_registration(&mut dev, ORIGIN, &options);
    // The same credential is already registered to another account (in another tenant): as if
    // the authenticator had answered Ana's registration with it before.
    {
        use palisade_store::passkeys::{insert, StoredPasskey};
        use palisade_store::SystemScope;
        let mut tx = app
            .services
            .store
            .begin(SystemScope::new("test.passkey"))
            .await
            .unwrap();
        insert(
            &mut tx,
            &StoredPasskey {
                id: palisade_domain::PasskeyId::new(),
                tenant_id: Some(palisade_domain::TenantId::from_uuid(
                    ana.tenant_id.parse().unwrap(),
                )),
                user_id: palisade_domain::UserId::from_uuid(ana.user_id.parse().unwrap()),
                name: "Ana's".into(),
                credential_id: answer.raw_id.clone(),
                passkey: "{}".into(),
                sign_count: 0,
                created_at: time::OffsetDateTime::now_utc(),
                last_used_at: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let r = register_finish(&app, &bob, "Mine", &serde_json::to_value(&answer).unwrap()).await;
    assert_error(&r, StatusCode::CONFLICT, "passkey_exists");
    let list = app.get("/api/v1/auth/passkeys", &bob.access_token).await;
    assert_eq!(list.body["data"], json!([]));
    // Ana's list shows hers, Bob's none: lists are per user.
    let list = app.get("/api/v1/auth/passkeys", &ana.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

async fn a_wrong_origin_is_refused(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    let options = register_start(&app, &owner).await;
    // A page on another origin under the same registrable domain.
    let answer = answer_registration(&mut dev, "https://evil.localhost", &options);
    let r = register_finish(
        &app,
        &owner,
        "Evil",
        &serde_json::to_value(&answer).unwrap(),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_passkey");
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let start = login_start(&app).await;
    let cred = answer_sign_in(&mut dev, "https://evil.localhost", &start, &key);
    let r = login_finish(&app, &start["challenge_id"], &cred).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
    assert!(audit_count(&app, "auth.login.failed").await >= 1);
    // Any port of localhost is this development server.
    assert_eq!(
        {
            let start = login_start(&app).await;
            let cred = answer_sign_in(&mut dev, "http://localhost:9999", &start, &key);
            login_finish(&app, &start["challenge_id"], &cred)
                .await
                .status
        },
        StatusCode::OK
    );
}

async fn removing_a_passkey_needs_the_password_and_ownership(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "al@acme.example", "agent").await;
    let other = app.register("Beta", "bob@beta.example").await;
    let mut dev = device();
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let path = format!("/api/v1/auth/passkeys/{}", key.id);
    let del = |token: &str, password: &str| {
        let (path, token, password) = (path.clone(), token.to_owned(), password.to_owned());
        let app = &app;
        async move {
            app.send(
                reqwest::Method::DELETE,
                &path,
                Some(&token),
                Some(json!({"password": password})),
            )
            .await
        }
    };
    let r = del(&owner.access_token, "not-my-password-at-all").await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "password").is_empty());
    // Another user's passkey, in the tenant or outside it, is not found (with their password).
    for s in [&agent, &other] {
        let r = del(&s.access_token, GOOD_PASSWORD).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    let r = app
        .send(
            reqwest::Method::DELETE,
            &path,
            Some(&owner.access_token),
            None,
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    assert_eq!(sign_in(&app, &mut dev, &key).await.status, StatusCode::OK);
    let r = del(&owner.access_token, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(audit_count(&app, "auth.passkey.removed").await, 1);
    let r = del(&owner.access_token, GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let list = app.get("/api/v1/auth/passkeys", &owner.access_token).await;
    assert_eq!(list.body["data"], json!([]));
    let r = sign_in(&app, &mut dev, &key).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
}

async fn impersonate(app: &TestApp, root: &Session, tenant: &str) -> String {
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{tenant}/impersonate"),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn keys_and_impersonations_are_refused_on_every_route(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let api_key = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(api_key.status, StatusCode::CREATED, "{}", api_key.body);
    let api_key = api_key.body["key"].as_str().unwrap().to_owned();
    let root = app.super_admin("root@platform.example").await;
    let imp = impersonate(&app, &root, &owner.tenant_id).await;
    let del = format!("/api/v1/auth/passkeys/{}", key.id);
    for (token, code) in [
        (api_key.as_str(), "api_key_not_allowed"),
        (imp.as_str(), "impersonation_forbidden"),
    ] {
        let routes: Vec<(reqwest::Method, &str, Option<Value>)> = vec![
            (
                reqwest::Method::POST,
                "/api/v1/auth/passkeys/register/start",
                Some(json!({})),
            ),
            (
                reqwest::Method::POST,
                "/api/v1/auth/passkeys/register/finish",
                Some(json!({"name": "x", "credential": {}})),
            ),
            (reqwest::Method::GET, "/api/v1/auth/passkeys", None),
            (
                reqwest::Method::DELETE,
                &del,
                Some(json!({"password": GOOD_PASSWORD})),
            ),
            // The sign-in routes take no credential; one that acts for someone else is refused.
            (
                reqwest::Method::POST,
                "/api/v1/auth/passkeys/login/start",
                Some(json!({})),
            ),
            (
                reqwest::Method::POST,
                "/api/v1/auth/passkeys/login/finish",
                Some(json!({"challenge_id": uuid::Uuid::nil(), "credential": {}})),
            ),
            (
                reqwest::Method::POST,
                "/api/v1/auth/login/2fa",
                Some(json!({"mfa_token": "pal_mfa_x", "code": "123456"})),
            ),
        ];
        for (method, path, body) in routes {
            let r = app.send(method.clone(), path, Some(token), body).await;
            assert_error(&r, StatusCode::FORBIDDEN, code);
        }
    }
    // Nothing was removed.
    let list = app.get("/api/v1/auth/passkeys", &owner.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    // A super admin's own passkey works like anyone's.
    let mut root_dev = device();
    let root_key = add_passkey(&app, &root, &mut root_dev, "Root key").await;
    assert_eq!(
        sign_in(&app, &mut root_dev, &root_key).await.status,
        StatusCode::OK
    );
}

async fn deleted_users_and_suspended_tenants_cannot_sign_in(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "al@acme.example", "agent").await;
    let mut agent_dev = device();
    let agent_key = add_passkey(&app, &agent, &mut agent_dev, "Phone").await;
    let mut owner_dev = device();
    let owner_key = add_passkey(&app, &owner, &mut owner_dev, "Laptop").await;
    let r = app
        .delete(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = sign_in(&app, &mut agent_dev, &agent_key).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
    // A credential answering with someone else's user handle is refused.
    let forged = Registered {
        raw_id: owner_key.raw_id.clone(),
        user_id: agent_key.user_id,
        id: owner_key.id.clone(),
    };
    let r = sign_in(&app, &mut owner_dev, &forged).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");

    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "unpaid"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = sign_in(&app, &mut owner_dev, &owner_key).await;
    assert_error(&r, StatusCode::FORBIDDEN, "tenant_suspended");
}

async fn a_counter_that_goes_backwards_is_refused(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    // An answer signed now (counter n) but presented after a later one (counter n + 1): what a
    // copy of the authenticator would send.
    let early = login_start(&app).await;
    let early_answer = answer_sign_in(&mut dev, ORIGIN, &early, &key);
    assert_eq!(sign_in(&app, &mut dev, &key).await.status, StatusCode::OK);
    let r = login_finish(&app, &early["challenge_id"], &early_answer).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
    assert_eq!(audit_count(&app, "auth.passkey.counter_regressed").await, 1);
    // The owner sees the refused answer in their login history, after the sign-in before it.
    let history = app
        .get("/api/v1/auth/login-history", &owner.access_token)
        .await;
    let rows = history.body["data"].as_array().unwrap();
    assert_eq!(rows[0]["result"], "failure", "{}", history.body);
    assert_eq!(rows[0]["method"], "passkey", "{}", history.body);
    assert_eq!(rows[1]["result"], "success", "{}", history.body);
}

async fn malformed_and_unsupported_requests_are_precise_4xx(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    // No pending registration.
    let options = register_start(&app, &owner).await;
    let answer = serde_json::to_value(answer_registration(&mut dev, ORIGIN, &options)).unwrap();
    let r = register_finish(&app, &owner, "   ", &json!({"id": 1})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "name").is_empty());
    assert!(!field_messages(&r, "credential").is_empty());
    let r = register_finish(&app, &owner, &"x".repeat(65), &answer).await;
    assert!(!field_messages(&r, "name").is_empty(), "{}", r.body);
    // Refused shapes spend nothing: the registration still finishes.
    assert_eq!(
        register_finish(&app, &owner, "Laptop", &answer)
            .await
            .status,
        StatusCode::CREATED
    );
    let r = register_finish(&app, &owner, "Laptop", &answer).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");
    let r = app
        .post(
            "/api/v1/auth/passkeys/register/finish",
            Some(&owner.access_token),
            json!({"name": "x", "credential": {}, "extra": 1}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);

    let r = app
        .post(
            "/api/v1/auth/passkeys/login/finish",
            None,
            json!({"challenge_id": uuid::Uuid::now_v7(), "credential": {"id": "x"}}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let start = login_start(&app).await;
    let r = app
        .post(
            "/api/v1/auth/passkeys/login/finish",
            None,
            json!({"challenge_id": "not-a-uuid", "credential": {}}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    // An unknown credential for a real challenge.
    let stranger = Registered {
        raw_id: vec![7; 32],
        user_id: owner.user_id.parse().unwrap(),
        id: String::new(),
    };
    let mut other = device();
    let other_key = add_passkey(&app, &owner, &mut other, "Other").await;
    let cred = answer_sign_in(&mut other, ORIGIN, &start, &other_key);
    let mut unknown = cred.clone();
    unknown.raw_id = stranger.raw_id.clone();
    let r = login_finish(&app, &start["challenge_id"], &unknown).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
    let r = app
        .post(
            "/api/v1/auth/passkeys/login/finish",
            None,
            json!({"challenge_id": uuid::Uuid::now_v7(), "credential": cred}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_challenge");
    // Without a body, login/start is a passwordless start too.
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/passkeys/login/start",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // An unknown two-step token is refused like at login/2fa.
    let r = app
        .post(
            "/api/v1/auth/passkeys/login/start",
            None,
            json!({"mfa_token": "pal_mfa_whatever"}),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    // Signed-in routes need a sign-in.
    let r = app
        .send(reqwest::Method::GET, "/api/v1/auth/passkeys", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn without_a_domain_passkeys_are_off(db: Db) {
    // A public URL that is an IP address (not loopback) gives no relying party id.
    let app = spawn_app_with(db, |c| c.public_url = Some("http://10.0.0.7:8080".into())).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post("/api/v1/auth/passkeys/login/start", None, json!({}))
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PALISADE_WEBAUTHN_RP_ID"));
    let r = app
        .post(
            "/api/v1/auth/passkeys/register/start",
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    // Listing still works (there is nothing to list).
    let r = app.get("/api/v1/auth/passkeys", &owner.access_token).await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn sign_in_is_rate_limited_like_login(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.public_url = Some(ORIGIN.into());
        c.rate_limit_login_per_minute = 2;
    })
    .await;
    for _ in 0..2 {
        login_start(&app).await;
    }
    let r = app
        .post("/api/v1/auth/passkeys/login/start", None, json!({}))
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.header("retry-after").is_some());
    let r = app
        .post(
            "/api/v1/auth/passkeys/login/finish",
            None,
            json!({"challenge_id": uuid::Uuid::now_v7(), "credential": {}}),
        )
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

async fn password_login(app: &TestApp, email: &str) -> Resp {
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": GOOD_PASSWORD}),
    )
    .await
}

async fn a_passkey_is_the_second_factor_after_a_password(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    add_passkey(&app, &owner, &mut dev, "Laptop").await;

    // The right password of an account with a passkey yields a challenge, not a session.
    let r = password_login(&app, "ana@acme.example").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["mfa_required"], true, "{}", r.body);
    assert!(r.body.get("access_token").is_none(), "{}", r.body);
    let methods: Vec<&str> = r.body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(methods.contains(&"passkey"), "{methods:?}");
    let mfa_token = r.body["mfa_token"].as_str().unwrap().to_owned();

    // With the token, the options name the account's own passkeys.
    let start = app
        .post(
            "/api/v1/auth/passkeys/login/start",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let allowed = start.body["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1, "{}", start.body);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({"publicKey": start.body["publicKey"]})).unwrap();
    let cred = dev
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .expect("the soft authenticator signs");
    let done = login_finish(&app, &start.body["challenge_id"], &cred).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let token = done.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::OK);

    // The password's challenge is spent: neither another passkey ceremony nor a code uses it.
    let again = app
        .post(
            "/api/v1/auth/passkeys/login/start",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    let code = app
        .post(
            "/api/v1/auth/login/2fa",
            None,
            json!({"mfa_token": mfa_token, "code": "123456"}),
        )
        .await;
    assert_error(&code, StatusCode::UNAUTHORIZED, "invalid_mfa_token");

    // The sign-in is in the login history as a passkey sign-in.
    let history = app.get("/api/v1/auth/login-history", &token).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert_eq!(
        history.body["data"][0]["method"], "passkey",
        "{}",
        history.body
    );
    assert_eq!(
        history.body["data"][0]["result"], "success",
        "{}",
        history.body
    );

    // A made-up token is refused before any ceremony starts.
    let bad = app
        .post(
            "/api/v1/auth/passkeys/login/start",
            None,
            json!({"mfa_token": "pal_mfa_not-a-real-token"}),
        )
        .await;
    assert_error(&bad, StatusCode::UNAUTHORIZED, "invalid_mfa_token");
}

async fn the_last_passkey_stays_while_the_tenant_requires_a_second_factor(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    let key = add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let factors = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(factors.body["passkeys"], 1, "{}", factors.body);

    let set = |value: &'static str| {
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            let r = app
                .patch("/api/v1/tenant", &token, json!({"require_2fa": value}))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
    };
    set("everyone").await;
    let path = format!("/api/v1/auth/passkeys/{}", key.id);
    let r = app
        .send(
            reqwest::Method::DELETE,
            &path,
            Some(&owner.access_token),
            Some(json!({"password": GOOD_PASSWORD})),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "2fa_required");
    // The passkey is still there and still signs in.
    assert_eq!(sign_in(&app, &mut dev, &key).await.status, StatusCode::OK);

    set("off").await;
    let r = app
        .send(
            reqwest::Method::DELETE,
            &path,
            Some(&owner.access_token),
            Some(json!({"password": GOOD_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

// For the end-to-end story (account_story.rs).
pub async fn passkey_app(db: Db) -> TestApp {
    app(db).await
}

pub fn passkey_device() -> SoftPasskey {
    device()
}

pub struct StoryKey(Registered);

pub async fn add_passkey_for_story(
    app: &TestApp,
    s: &Session,
    dev: &mut SoftPasskey,
    name: &str,
) -> StoryKey {
    StoryKey(add_passkey(app, s, dev, name).await)
}

pub async fn passkey_sign_in(app: &TestApp, dev: &mut SoftPasskey, key: &StoryKey) -> Resp {
    sign_in(app, dev, &key.0).await
}

async fn refused_passkey_answers_use_up_the_second_steps_tries(db: Db) {
    let app = app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut dev = device();
    add_passkey(&app, &owner, &mut dev, "Laptop").await;
    let r = password_login(&app, "ana@acme.example").await;
    let mfa_token = r.body["mfa_token"].as_str().unwrap().to_owned();
    // Five answers from another origin: each is refused and counts as a wrong second step.
    for _ in 0..5 {
        let start = app
            .post(
                "/api/v1/auth/passkeys/login/start",
                None,
                json!({"mfa_token": mfa_token}),
            )
            .await;
        assert_eq!(start.status, StatusCode::OK, "{}", start.body);
        let rcr: RequestChallengeResponse =
            serde_json::from_value(json!({"publicKey": start.body["publicKey"]})).unwrap();
        let cred = dev
            .do_authentication(Url::parse("https://evil.localhost").unwrap(), rcr)
            .expect("the soft authenticator signs for any origin it is given");
        let r = login_finish(&app, &start.body["challenge_id"], &cred).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_passkey");
    }
    // The challenge is dead now, for passkeys and codes alike.
    let r = app
        .post(
            "/api/v1/auth/passkeys/login/start",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    let history = app
        .get("/api/v1/auth/login-history", &owner.access_token)
        .await;
    let failures = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "mfa_failure" && a["method"] == "passkey")
        .count();
    assert_eq!(failures, 5, "{}", history.body);
}
