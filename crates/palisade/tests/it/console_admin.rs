//! The tenant administration pages over plain HTTP: who may open them (admins; agents get the
//! 403 page; an impersonation gets the API's refusal for users and keys), that another tenant's
//! records never show, that user content is escaped, and that the forms carry what the API
//! needs (the scopes from the domain, the key shown once, confirmation on destructive actions).

use crate::console::signed_in_page as page;
use palisade_testkit::{spawn_app, spawn_app_with, Db, Session};
use reqwest::StatusCode;
use serde_json::json;

both!(
    admin_pages_open_for_admins_and_refuse_agents,
    the_users_page_lists_the_team_escaped_with_its_actions,
    unlock_is_offered_only_for_a_locked_user,
    the_api_keys_page_offers_every_scope_and_lists_keys_without_secrets,
    the_tenant_page_shows_the_current_settings,
    the_audit_page_filters_pages_and_explains_bad_filters,
    an_impersonation_gets_the_api_refusals_on_users_and_keys,
    another_tenants_records_never_show,
    notifications_are_counted_by_the_api_and_listed_on_their_page,
);

const ADMIN_PAGES: [&str; 4] = [
    "/settings/users",
    "/settings/api-keys",
    "/settings/tenant",
    "/audit",
];

async fn admin_pages_open_for_admins_and_refuse_agents(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    for path in ADMIN_PAGES {
        for who in [&owner, &admin] {
            let (status, body) = page(&app, &who.access_token, path).await;
            assert_eq!(status, StatusCode::OK, "{path} for {}: {body}", who.email);
            assert_eq!(body.matches("<h1").count(), 1, "{path}: one heading");
        }
        let (status, body) = page(&app, &agent.access_token, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} for an agent");
        assert!(body.contains("You can&#39;t open this page"), "{body}");
    }
    // Everyone has notifications; agents see no admin links in the header.
    let (status, body) = page(&app, &agent.access_token, "/notifications").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains(r#"href="/audit""#));
    assert!(!body.contains(r#"href="/settings/users""#));
    let (_, body) = page(&app, &admin.access_token, "/settings/users").await;
    assert!(body.contains(r#"href="/audit""#));
    assert!(body.contains(r#"href="/settings/api-keys""#));
    // Signed out: to sign-in, with the way back.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/settings/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
}

async fn the_users_page_lists_the_team_escaped_with_its_actions(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let r = app
        .patch(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token,
            json!({"name": "<img src=x onerror=alert(1)>"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let invited = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "new@acme.example", "name": "Nia New", "role": "agent"}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED);
    let gone = app.add_user(&owner, "gone@acme.example", "agent").await;
    assert_eq!(
        app.delete(
            &format!("/api/v1/users/{}", gone.user_id),
            &owner.access_token
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    let (status, body) = page(&app, &owner.access_token, "/settings/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("<img src=x"), "user content is escaped");
    assert!(body.contains("&#60;img src=x onerror=alert(1)&#62;"));
    assert!(body.contains("new@acme.example") && body.contains(">invited<"));
    assert!(body.contains("gone@acme.example") && body.contains(">deleted<"));
    assert!(body.contains(r#"data-api="POST /api/v1/users""#));
    assert!(body.contains(&format!(
        r#"data-api="DELETE /api/v1/users/{}""#,
        agent.user_id
    )));
    assert!(body.contains(&format!(
        r#"data-api="PATCH /api/v1/users/{}""#,
        agent.user_id
    )));
    assert!(
        !body.contains("/unlock\""),
        "nobody is locked: no Unlock button"
    );
    // The owner can hand the tenant over (with the password); nobody deletes the owner.
    assert!(body.contains(&format!(
        r#"data-api="POST /api/v1/users/{}/transfer-ownership""#,
        agent.user_id
    )));
    assert!(!body.contains(&format!(
        r#"data-api="DELETE /api/v1/users/{}""#,
        owner.user_id
    )));
    // Every destructive form asks first.
    for form in body.split("<form").skip(1) {
        let head = &form[..form.find('>').unwrap()];
        if head.contains("DELETE ") || head.contains("transfer-ownership") {
            assert!(head.contains("data-confirm="), "{head}");
        }
    }
    // Restore is the platform operator's: a tenant admin is told so instead of a button.
    assert!(!body.contains("/restore\""));
    assert!(body.contains("A platform operator can restore"));

    // An admin who is not the owner cannot transfer ownership.
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let (_, body) = page(&app, &admin.access_token, "/settings/users").await;
    assert!(!body.contains("transfer-ownership"));
}

/// The lock comes from failed passwords (the login throttle); the users list shows it to those
/// who may lift it, with the Unlock button on that user only, and no longer once lifted.
async fn unlock_is_offered_only_for_a_locked_user(db: Db) {
    let app = spawn_app_with(db, |c| c.lockout_threshold = 3).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let other = app.add_user(&owner, "other@acme.example", "agent").await;
    for _ in 0..3 {
        let r = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "agent@acme.example", "password": "not-the-password-1"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    let unlock = |id: &str| format!(r#"data-api="POST /api/v1/users/{id}/unlock""#);

    let (status, body) = page(&app, &owner.access_token, "/settings/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&unlock(&agent.user_id.to_string())), "{body}");
    assert!(!body.contains(&unlock(&other.user_id.to_string())));
    assert!(!body.contains(&unlock(&owner.user_id.to_string())));
    assert_eq!(body.matches(">locked<").count(), 1);

    // The API says the same to an admin, and nothing about locks to an agent.
    let listed = app.get("/api/v1/users", &owner.access_token).await;
    let of = |list: &serde_json::Value, id: String| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .unwrap()
            .clone()
    };
    let locked = of(&listed.body, agent.user_id.to_string());
    assert!(
        locked["locked_until"].as_str().unwrap().ends_with('Z'),
        "{locked}"
    );
    assert!(of(&listed.body, other.user_id.to_string())
        .get("locked_until")
        .is_none());
    let one = app
        .get(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token,
        )
        .await;
    assert_eq!(one.body["locked_until"], locked["locked_until"]);
    let as_agent = app.get("/api/v1/users", &other.access_token).await;
    assert_eq!(as_agent.status, StatusCode::OK);
    assert!(of(&as_agent.body, agent.user_id.to_string())
        .get("locked_until")
        .is_none());

    let r = app
        .post(
            &format!("/api/v1/users/{}/unlock", agent.user_id),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let (_, body) = page(&app, &owner.access_token, "/settings/users").await;
    assert!(!body.contains("/unlock\""), "unlocked: the button is gone");
    assert!(!body.contains(">locked<"));
}

async fn the_api_keys_page_offers_every_scope_and_lists_keys_without_secrets(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (status, body) = page(&app, &owner.access_token, "/settings/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("No API keys yet"), "an empty state");
    for scope in palisade_domain::Scope::GRANTS {
        assert!(
            body.contains(&format!(r#"name="scopes" value="{}""#, scope.as_str())),
            "{scope:?}"
        );
    }
    assert!(body.contains(r##"data-then="fill:#new-key""##));
    assert!(body.contains(r##"data-copy="#new-key-value""##));
    // Allowed addresses: a labelled list field, left out when empty, with its error slot.
    assert!(body.contains(r#"<label for="key-ips">Allowed IP addresses</label>"#));
    assert!(body.contains(r#"name="allowed_ips""#) && body.contains("data-omit-empty"));
    assert!(body.contains(r#"id="allowed_ips-error""#));

    let created = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "<b>CRM sync</b>", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let secret = created.body["key"].as_str().unwrap();
    let id = created.body["api_key"]["id"].as_str().unwrap();
    let (_, body) = page(&app, &owner.access_token, "/settings/api-keys").await;
    assert!(!body.contains(secret), "the secret is never shown again");
    assert!(body.contains("&#60;b&#62;CRM sync&#60;/b&#62;"));
    assert!(body.contains(&format!(r#"data-api="POST /api/v1/api-keys/{id}/revoke""#)));
    assert!(body.contains("data-confirm=\"Revoke the key"));
    assert!(
        body.contains(">anywhere<"),
        "no allowed_ips: usable from anywhere"
    );
    let limited = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "Office", "scopes": ["contacts:read"],
                   "allowed_ips": ["203.0.113.7", "198.51.100.0/24"]}),
        )
        .await;
    assert_eq!(limited.status, StatusCode::CREATED, "{:?}", limited.body);
    let (_, body) = page(&app, &owner.access_token, "/settings/api-keys").await;
    assert!(
        body.contains("203.0.113.7/32, 198.51.100.0/24"),
        "the allowed addresses are listed"
    );

    let r = app
        .post(
            &format!("/api/v1/api-keys/{id}/revoke"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, body) = page(&app, &owner.access_token, "/settings/api-keys").await;
    assert!(body.contains(">revoked<"));
    assert!(!body.contains(&format!("/api/v1/api-keys/{id}/revoke")));

    // An API key is not a person: the console is no place for it.
    let (status, _) = page(&app, secret, "/settings/api-keys").await;
    assert_ne!(status, StatusCode::OK);
}

async fn the_tenant_page_shows_the_current_settings(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme & <Co>", "owner@acme.example").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"password_policy": "compliance", "require_2fa": "off"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (status, body) = page(&app, &owner.access_token, "/settings/tenant").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"value="Acme &#38; &#60;Co&#62;""#),
        "escaped"
    );
    assert!(body.contains(r#"<option value="compliance" selected>"#));
    assert!(body.contains(r#"<option value="off" selected>"#));
    assert!(body.contains(r#"data-api="PATCH /api/v1/tenant""#));
}

async fn the_audit_page_filters_pages_and_explains_bad_filters(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for n in 0..55 {
        let r = app
            .post(
                "/api/v1/contacts",
                Some(&owner.access_token),
                json!({"phone": format!("+4477009{n:05}"), "name": format!("<i>C{n}</i>")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let (status, body) = page(&app, &owner.access_token, "/audit?action=contact.*").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.matches("<tr>").count(), 51, "a header and 50 records");
    assert!(!body.contains("<i>C"), "metadata is escaped");
    let next = body
        .split("cursor=")
        .nth(1)
        .map(|s| s[..36].to_owned())
        .expect("a Next page link");
    assert!(body.contains("Next page"));
    assert!(body.contains("/api/v1/audit-logs/export?format=csv&amp;action=contact.%2A"));
    let (status, body) = page(
        &app,
        &owner.access_token,
        &format!("/audit?action=contact.*&cursor={next}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.matches("<tr>").count(), 6, "the last 5 records");
    assert!(!body.contains("Next page"));
    assert!(body.contains("Previous: newest records"));

    // Filters that match nothing say so; bad ones are explained next to their field.
    let (_, body) = page(&app, &owner.access_token, "/audit?action=nothing.here").await;
    assert!(body.contains("Nothing matches these filters"));
    let (status, body) = page(
        &app,
        &owner.access_token,
        "/audit?from=yesterday&actor_id=%3Cscript%3E",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("must be a date like 2026-01-31"));
    assert!(body.contains("must be a user id"));
    assert!(body.contains(r#"value="&#60;script&#62;""#));
    let (status, _) = page(&app, &owner.access_token, "/audit?from=2020-01-01").await;
    assert_eq!(status, StatusCode::OK);
}

async fn an_impersonation_gets_the_api_refusals_on_users_and_keys(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let root = app.super_admin("root@platform.example").await;
    for write in [false, true] {
        let r = app
            .post(
                &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
                Some(&root.access_token),
                json!({"reason": "ticket #7", "write": write}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let token = r.body["access_token"].as_str().unwrap();
        for path in ["/settings/users", "/settings/api-keys"] {
            let (status, body) = page(&app, token, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert!(body.contains("an impersonation cannot use"), "{body}");
        }
        // What the API lets an impersonation read, the page shows (with the banner).
        for path in ["/settings/tenant", "/audit"] {
            let (status, body) = page(&app, token, path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert!(body.contains("Impersonating"));
        }
    }
}

async fn another_tenants_records_never_show(db: Db) {
    let app = spawn_app(db).await;
    let acme = app.register("Acme", "owner@acme.example").await;
    let other = app.register("Globex", "owner@globex.example").await;
    app.add_user(&acme, "agent@acme.example", "agent").await;
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&acme.access_token),
            json!({"name": "acme-secret-integration", "scopes": ["read_only"]}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED);
    for path in ADMIN_PAGES {
        let (status, body) = page(&app, &other.access_token, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.contains("acme.example"), "{path} leaks Acme");
        assert!(
            !body.contains("acme-secret-integration"),
            "{path} leaks Acme"
        );
    }
    // Their ids are not found through the routes the page's forms call.
    let r = app
        .delete(
            &format!("/api/v1/users/{}", acme.user_id),
            &other.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!(
                "/api/v1/api-keys/{}/revoke",
                key.body["api_key"]["id"].as_str().unwrap()
            ),
            Some(&other.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn notifications_are_counted_by_the_api_and_listed_on_their_page(db: Db) {
    let app = spawn_app_with(db, |c| c.webhooks_allow_private_targets = true).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin: Session = app.add_user(&owner, "admin@acme.example", "admin").await;
    let (status, body) = page(&app, &owner.access_token, "/notifications").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("No notifications"));
    assert!(body.contains(r#"data-notifications"#), "the header link");
    assert!(body.contains("/static/notifications.js?v="));
    let r = app
        .post(
            "/api/v1/webhooks",
            Some(&admin.access_token),
            json!({"url": "https://hooks.unknown.example/<x>", "events": ["*"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let (status, body) = page(&app, &owner.access_token, "/notifications").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("A webhook waits for approval"));
    assert!(body.contains(">unread<"));
    assert!(body.contains("/read\""), "a Mark read form");
    let webhook_id = r.body["webhook"]["id"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            r#"href="/settings/webhooks/{webhook_id}">Open the webhook"#
        )),
        "the notification links to its webhook"
    );
    let (status, body) = page(&app, &owner.access_token, "/notifications?unread=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = page(&app, &owner.access_token, "/notifications?cursor=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A super admin has no notifications: the API's refusal.
    let root = app.super_admin("root@platform.example").await;
    let (status, _) = page(&app, &root.access_token, "/notifications").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
