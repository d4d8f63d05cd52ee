//! The harness tests itself: a page that breaks the server's own Content-Security-Policy must
//! fail a test, an uncaught exception too, a clean page must not; locators, typing, keys and
//! screenshots work. The pages come from a tiny local axum server that sends the CSP header the
//! real `palisade serve` sends (read from its `/healthz`), so these tests follow the policy.

use crate::harness::{label, role, text, Browser, Db, Server};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

const INLINE: &str = "<!doctype html><html lang=en><head><title>inline</title></head><body>\
    <main><h1>Inline</h1><p id=out>not run</p>\
    <script>document.getElementById('out').textContent = 'ran';</script></main></body></html>";

const CLEAN: &str = "<!doctype html><html lang=en><head><title>clean</title>\
    <meta name=viewport content=\"width=device-width, initial-scale=1\">\
    <script src=/app.js defer></script></head><body><main><h1>Clean page</h1>\
    <form><label for=name>Your name</label> <input id=name name=name>\
    <button type=button id=greet>Greet</button></form><p id=out>waiting</p></main></body></html>";

const APP_JS: &str = "document.getElementById('greet').addEventListener('click', () => {\n\
    document.getElementById('out').textContent = 'Hello, ' + document.getElementById('name').value;\n\
    });\ndocument.getElementById('out').textContent = 'script ran';\n";

const THROWS: &str = "<!doctype html><html lang=en><head><title>throws</title>\
    <script src=/throw.js></script></head><body><main><h1>Throws</h1></main></body></html>";

/// Serves the fixture pages with `csp` on every response; returns the base URL.
async fn fixture_site(csp: String) -> String {
    let csp = Arc::new(csp);
    let page = |body: &'static str, kind: &'static str| {
        let csp = csp.clone();
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, kind.to_owned()),
                    (header::CONTENT_SECURITY_POLICY, csp.to_string()),
                ],
                body,
            )
                .into_response()
        })
    };
    let app = axum::Router::new()
        .route("/inline", page(INLINE, "text/html; charset=utf-8"))
        .route("/clean", page(CLEAN, "text/html; charset=utf-8"))
        .route("/app.js", page(APP_JS, "text/javascript"))
        .route("/throws", page(THROWS, "text/html; charset=utf-8"))
        .route(
            "/throw.js",
            page("throw new Error('boom from throw.js');", "text/javascript"),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The CSP `palisade serve` sends.
async fn server_csp(server: &Server) -> String {
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    let csp = r
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .expect("palisade serve sends a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    csp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_script_is_a_csp_violation_that_fails_the_page() {
    let server = Server::start(Db::Sqlite).await;
    let site = fixture_site(server_csp(&server).await).await;
    let page = Browser::launch().await.new_page_at(&site).await;
    page.goto("/inline").await;
    page.wait_for(&text("Inline")).await;
    assert!(
        page.is_visible(&text("not run")).await,
        "the CSP blocked the inline script"
    );
    let problems = page.take_problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("CSP violation") && p.contains("script-src")),
        "a CSP violation is recorded: {problems:?}"
    );
    // A test that forgets to look still fails: dropping a page with a problem panics.
    page.goto("/inline").await;
    page.wait_for(&text("Inline")).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dropped = tokio::spawn(async move { drop(page) }).await;
    assert!(
        dropped.is_err_and(|e| e.is_panic()),
        "dropping a page with an unchecked CSP violation fails the test"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaught_exception_fails_the_page() {
    let site = fixture_site("default-src 'self'".into()).await;
    let page = Browser::launch().await.new_page_at(&site).await;
    page.goto("/throws").await;
    page.wait_for(&text("Throws")).await;
    let problems = page.take_problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("uncaught exception") && p.contains("boom from throw.js")),
        "{problems:?}"
    );
    page.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_page_passes_and_can_be_driven_by_label_role_keys_and_screenshots() {
    let server = Server::start(Db::Sqlite).await;
    let site = fixture_site(server_csp(&server).await).await;
    let page = Browser::launch().await.new_page_at(&site).await;
    page.goto("/clean").await;
    page.wait_for(&text("script ran")).await;

    page.fill(&label("Your name"), "Ana").await;
    page.click(&role("button", "Greet")).await;
    page.wait_for(&text("Hello, Ana")).await;

    // Keyboard only: from the field, Tab reaches the button and Enter presses it.
    page.fill(&label("Your name"), "Bea").await;
    assert_eq!(page.focused().await, r#"textbox "Your name""#);
    page.press("Tab").await;
    assert_eq!(page.focused().await, r#"button "Greet""#);
    page.press("Enter").await;
    page.wait_for(&text("Hello, Bea")).await;
    page.press("Shift+Tab").await;
    assert_eq!(page.focused().await, r#"textbox "Your name""#);

    assert_eq!(page.current_path().await, "/clean");
    page.screenshot("selftest-clean").await;
    for (w, h) in crate::harness::page::SCREEN_SIZES {
        let path =
            crate::harness::paths::screenshot_dir().join(format!("selftest-clean-{w}x{h}.png"));
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{}", path.display());
        // The PNG header's width and height.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (w, h), "{}", path.display());
    }
    page.assert_accessible().await;
    page.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_virtual_authenticator_is_added() {
    let site = fixture_site("default-src 'self'".into()).await;
    let page = Browser::launch().await.new_page_at(&site).await;
    page.goto("/clean").await;
    let id = page.add_virtual_authenticator().await;
    assert_eq!(page.passkeys(&id).await, 0);
    page.assert_clean().await;
}

crate::both!(the_server_fixture_runs_serve_and_sim_and_reads_mails);

/// The fixture on each database: the server answers the browser on its public origin, the
/// simulator answers its control API, and a registration's mail is read back with its code.
async fn the_server_fixture_runs_serve_and_sim_and_reads_mails(db: Db) {
    let server = Server::start(db).await;
    let sim = reqwest::get(format!("{}/_sim/config", server.sim_url))
        .await
        .unwrap();
    assert!(sim.status().is_success());

    let r = reqwest::Client::new()
        .post(server.url("/api/v1/auth/register"))
        .json(
            &serde_json::json!({"tenant_name": "Acme", "name": "Ana Lima",
            "email": "ana@acme.example", "password": "correct-orbit-lantern-quietly"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let mail = server
        .wait_mail("ana@acme.example", "Verify your email")
        .await;
    assert_eq!(mail.code(6).len(), 6);

    let page = crate::harness::Page::open(&server).await;
    page.goto("/healthz").await;
    page.wait_for(&text("ok")).await;
    assert_eq!(page.current_url().await, server.url("/healthz"));
    page.assert_clean().await;
}
