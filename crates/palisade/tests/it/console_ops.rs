//! The console's operator and plumbing pages over plain HTTP: `/admin/tenants` (who may see
//! it), impersonation from the console (the banner on every page, "End" restoring the
//! operator, the operator restored when the impersonation's cookie is gone, the banner on the
//! 403 and 404 pages too), a suspended
//! tenant signed out at the next page, `/settings/webhooks` and `/settings/whatsapp` per role.

use crate::console::{Browser, Page};
use palisade_testkit::{spawn_app, spawn_app_with, Db, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    agents_and_admins_get_403_on_admin_tenants,
    impersonation_shows_the_banner_on_every_page_and_end_restores_the_operator,
    error_pages_show_the_impersonation_banner_too,
    the_operator_comes_back_when_the_impersonation_cookie_is_gone,
    impersonating_needs_a_reason_and_the_session_csrf_token,
    a_suspended_tenants_users_are_signed_out_at_the_next_page,
    webhooks_and_whatsapp_pages_follow_the_api_roles,
    webhook_deliveries_page_with_the_api_cursor,
);

async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    let r = b.sign_in(email, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    b
}

async fn agents_and_admins_get_403_on_admin_tenants(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    app.add_user(&owner, "agent@acme.example", "agent").await;
    app.register("<script>x</script> Ltd", "owner@evil.example")
        .await;
    app.super_admin("root@platform.example").await;
    for email in ["owner@acme.example", "agent@acme.example"] {
        let mut b = signed_in(&app, email).await;
        let r = b.get("/admin/tenants").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{email}: {}", r.text);
        assert!(!r.text.contains("Start impersonation"));
        let inbox = b.get("/inbox").await;
        assert!(
            !inbox.text.contains("href=\"/admin/tenants\""),
            "no link to a page {email} can't use"
        );
    }
    let mut root = signed_in(&app, "root@platform.example").await;
    let r = root.get("/admin/tenants").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Acme"));
    assert!(r.text.contains("&#60;script&#62;x"));
    assert!(!r.text.contains("<script>x</script>"));
    assert!(r.text.contains("Reason for impersonating Acme"));
    assert!(r.text.contains("Reason for suspending Acme"));
    let bad = root.get("/admin/tenants?cursor=nope").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let far = root.get("/admin/tenants?cursor=500").await;
    assert_eq!(far.status, StatusCode::OK);
    assert!(far.text.contains("first page"));
}

/// Starts an impersonation of `tenant_id`'s owner from `/admin/tenants`.
async fn impersonate(b: &mut Browser<'_>, tenant_id: &str, reason: &str, access: &str) -> Page {
    let csrf = b.get("/admin/tenants").await.form_token();
    b.post_form(
        &format!("/admin/tenants/{tenant_id}/impersonate"),
        &[("csrf", &csrf), ("reason", reason), ("access", access)],
    )
    .await
}

async fn impersonation_shows_the_banner_on_every_page_and_end_restores_the_operator(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    app.super_admin("root@platform.example").await;
    let mut b = signed_in(&app, "root@platform.example").await;
    let operator_refresh = b.cookie("palisade_refresh").cloned().unwrap();

    let r = impersonate(&mut b, &owner.tenant_id, "Ticket <b>42</b>", "read").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), "/inbox");
    assert!(b.cookie("palisade_refresh").is_none(), "nothing renews it");
    assert_eq!(
        b.cookie("palisade_operator_refresh"),
        Some(&operator_refresh)
    );
    let imp_access = b.cookie("palisade_access").cloned().unwrap();

    for path in ["/inbox", "/settings/whatsapp", "/settings/webhooks"] {
        let page = b.get(path).await;
        if page.status != StatusCode::OK {
            // The API refuses some admin pages to an impersonation; the rest show the banner.
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
            continue;
        }
        assert!(page.text.contains("Impersonating"), "{path}");
        assert!(page.text.contains("root@platform.example"), "{path}");
        assert!(page.text.contains("read-only"), "{path}");
        assert!(page.text.contains("Ticket &#60;b&#62;42"), "{path}");
        assert!(page.text.contains("min left"), "{path}");
        assert!(page.text.contains(">End</button>"), "{path}");
    }
    let inbox = b.get("/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK);
    // The operator's own pages are not theirs while they act as the owner.
    assert_eq!(b.get("/admin/tenants").await.status, StatusCode::FORBIDDEN);

    // A forged End does nothing.
    let forged = b.post_form("/impersonation/end", &[("csrf", "nope")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(b.get("/inbox").await.text.contains("Impersonating"));

    let csrf = inbox.form_token();
    let end = b.post_form("/impersonation/end", &[("csrf", &csrf)]).await;
    assert_eq!(end.status, StatusCode::SEE_OTHER, "{}", end.text);
    assert_eq!(end.location(), "/admin/tenants");
    assert!(b.cookie("palisade_operator_refresh").is_none());
    let back = b.get("/admin/tenants").await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert!(!back.text.contains("Impersonating"));
    assert!(back.text.contains("Platform Operator"));
    // The impersonation's session was ended through the core: its token is dead.
    let me = app.get("/api/v1/me", &imp_access).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{:?}", me.body);
}

/// Acme (owner owner@acme.example) and the platform operator, signed in and impersonating its
/// owner from the console.
async fn operator_impersonating_acme<'a>(
    app: &'a TestApp,
    reason: &str,
    access: &str,
) -> Browser<'a> {
    let owner = app.register("Acme", "owner@acme.example").await;
    app.super_admin("root@platform.example").await;
    let mut b = signed_in(app, "root@platform.example").await;
    let r = impersonate(&mut b, &owner.tenant_id, reason, access).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    b
}

async fn error_pages_show_the_impersonation_banner_too(db: Db) {
    let app = spawn_app(db).await;
    let mut b = operator_impersonating_acme(&app, "Ticket <b>42</b>", "write").await;
    let csrf = b.get("/inbox").await.form_token();

    let missing = format!("/inbox/{}", uuid::Uuid::now_v7());
    for (path, status) in [
        // Refused by the core (the operator's own page is not the owner's).
        ("/admin/tenants", StatusCode::FORBIDDEN),
        // A page's resource that is not there.
        (missing.as_str(), StatusCode::NOT_FOUND),
        // No such page at all: the router's own 404.
        ("/no/such/page", StatusCode::NOT_FOUND),
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, status, "{path}: {}", page.text);
        assert!(page.text.contains("Impersonating"), "{path}: {}", page.text);
        assert!(page.text.contains("root@platform.example"), "{path}");
        assert!(page.text.contains("with write access"), "{path}");
        assert!(page.text.contains("Ticket &#60;b&#62;42"), "{path}");
        assert!(page.text.contains("min left"), "{path}");
        assert!(page.text.contains(">End</button>"), "{path}");
        // The End button works from the error page: it carries the session's token.
        assert_eq!(page.form_token(), csrf, "{path}");
    }

    let end = b.post_form("/impersonation/end", &[("csrf", &csrf)]).await;
    assert_eq!(end.status, StatusCode::SEE_OTHER, "{}", end.text);
    // The operator, and anyone else, gets error pages without a banner.
    let page = b.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.text.contains("Impersonating"), "{}", page.text);
    assert!(!page.text.contains("/impersonation/end"));
    let mut owner_browser = signed_in(&app, "owner@acme.example").await;
    for path in ["/no/such/page", missing.as_str()] {
        let page = owner_browser.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !page.text.contains("Impersonating"),
            "{path}: {}",
            page.text
        );
    }
}

async fn the_operator_comes_back_when_the_impersonation_cookie_is_gone(db: Db) {
    let app = spawn_app(db).await;
    let mut b = operator_impersonating_acme(&app, "support", "write").await;
    assert!(b.get("/inbox").await.text.contains("with write access"));
    // The access cookie expires with the impersonation (Max-Age): as if 30 minutes passed.
    b.jar.retain(|k, _| !k.ends_with("palisade_access"));
    let page = b.get("/admin/tenants").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(!page.text.contains("Impersonating"));
    assert!(b.cookie("palisade_operator_refresh").is_none());
    assert!(b.cookie("palisade_refresh").is_some());
}

async fn impersonating_needs_a_reason_and_the_session_csrf_token(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let root_api = app.super_admin("root@platform.example").await;
    let mut b = signed_in(&app, "root@platform.example").await;
    let path = format!("/admin/tenants/{}/impersonate", owner.tenant_id);
    let forged = b
        .post_form(&path, &[("csrf", "x"), ("reason", "r"), ("access", "read")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let blank = impersonate(&mut b, &owner.tenant_id, "   ", "read").await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blank.text.contains("reason"), "{}", blank.text);
    assert!(blank.text.contains("role=\"alert\""));
    let unknown = impersonate(&mut b, "00000000-0000-7000-8000-000000000000", "r", "read").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let garbage = impersonate(&mut b, "nope", "r", "read").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
    // A suspended tenant: the API's 409 and message on the page.
    let s = app
        .post(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            Some(&root_api.access_token),
            json!({"reason": "unpaid"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK);
    let r = impersonate(&mut b, &owner.tenant_id, "look", "read").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text.contains("reactivate the tenant"), "{}", r.text);
    assert!(
        r.text.contains("unpaid"),
        "the list shows the suspension reason"
    );
    assert!(b.cookie("palisade_operator_refresh").is_none());
}

async fn a_suspended_tenants_users_are_signed_out_at_the_next_page(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let root = app.super_admin("root@platform.example").await;
    let mut b = signed_in(&app, "owner@acme.example").await;
    assert_eq!(b.get("/inbox").await.status, StatusCode::OK);
    let s = app
        .post(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "unpaid"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
    let r = b.get("/inbox").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.location().starts_with("/login"), "{}", r.location());
    assert!(b.cookie("palisade_access").is_none());
    assert!(b.cookie("palisade_refresh").is_none());
}

/// Lets webhooks to `hooks.acme.example` start without approval.
async fn allow_acme_hooks(app: &TestApp, token: &str) {
    let put = app
        .send(
            Method::PUT,
            "/api/v1/webhooks/allowed-domains",
            Some(token),
            Some(json!({"allowed_domains": ["hooks.acme.example"]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
}

async fn webhooks_and_whatsapp_pages_follow_the_api_roles(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    app.add_user(&owner, "agent@acme.example", "agent").await;
    let mut agent = signed_in(&app, "agent@acme.example").await;
    for path in ["/settings/webhooks", "/settings/whatsapp"] {
        assert_eq!(
            agent.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    allow_acme_hooks(&app, &owner.access_token).await;
    let mut admin = signed_in(&app, "owner@acme.example").await;
    let w = admin.get("/settings/webhooks").await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text);
    assert!(w.text.contains("No webhooks yet"));
    assert!(w.text.contains("hooks.acme.example"));
    assert!(w.text.contains("data-api=\"POST /api/v1/webhooks\""));
    let wa = admin.get("/settings/whatsapp").await;
    assert_eq!(wa.status, StatusCode::OK, "{}", wa.text);
    assert!(wa.text.contains("No number connected yet"));
    assert!(wa.text.contains("Phone number id"));
    for path in [
        "/settings/webhooks/00000000-0000-7000-8000-000000000000",
        "/settings/webhooks/nope",
    ] {
        assert_eq!(
            admin.get(path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

/// The deliveries of a webhook page newest first with the API's cursor, in the API and on the
/// page (older / newest links); a cursor that is not one is a 400, another tenant's webhook a
/// 404.
async fn webhook_deliveries_page_with_the_api_cursor(db: Db) {
    // No worker: the deliveries stay as queued, nothing disables the webhook.
    let app = spawn_app_with(db, |c| {
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_allow_private_targets = true;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    allow_acme_hooks(&app, &owner.access_token).await;
    let created = app
        .post(
            "/api/v1/webhooks",
            Some(&owner.access_token),
            json!({"url": "https://hooks.acme.example/in", "events": ["contact.created"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["webhook"]["id"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for _ in 0..53 {
        let t = app
            .post(
                &format!("/api/v1/webhooks/{id}/test"),
                Some(&owner.access_token),
                json!({}),
            )
            .await;
        assert_eq!(t.status, StatusCode::ACCEPTED, "{:?}", t.body);
        sent.push(t.body["id"].as_str().unwrap().to_owned());
    }

    // The API: pages of 20, each delivery once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/webhooks/{id}/deliveries?limit=20&cursor={c}"),
            None => format!("/api/v1/webhooks/{id}/deliveries?limit=20"),
        };
        let r = app.get(&path, &owner.access_token).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        for d in r.body["data"].as_array().unwrap() {
            seen.push(d["id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let bad = app
        .get(
            &format!("/api/v1/webhooks/{id}/deliveries?cursor=nope"),
            &owner.access_token,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "invalid_query");

    // The page: 50, then the older ones behind "Older deliveries", and back to the newest.
    let mut b = signed_in(&app, "owner@acme.example").await;
    let first = b.get(&format!("/settings/webhooks/{id}")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.text.matches("/retry\"").count(), 50);
    assert!(first.text.contains(&sent[52]) && !first.text.contains(&sent[2]));
    assert!(!first.text.contains(">Newest<"));
    let older = first
        .text
        .split(&format!("href=\"/settings/webhooks/{id}?cursor="))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an Older deliveries link")
        .to_owned();
    let second = b
        .get(&format!("/settings/webhooks/{id}?cursor={older}"))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.text.matches("/retry\"").count(), 3);
    assert!(second.text.contains(&sent[0]) && !second.text.contains(&sent[52]));
    assert!(second
        .text
        .contains(&format!(r#"href="/settings/webhooks/{id}">Newest</a>"#)));
    assert!(!second.text.contains("Older deliveries"));
    let bad = b.get(&format!("/settings/webhooks/{id}?cursor=nope")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Another tenant's admin: the 404 page, on every page of it.
    app.register("Globex", "owner@globex.example").await;
    let mut other = signed_in(&app, "owner@globex.example").await;
    for path in [
        format!("/settings/webhooks/{id}"),
        format!("/settings/webhooks/{id}?cursor={older}"),
    ] {
        let r = other.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!r.text.contains(&sent[0]));
    }
}
