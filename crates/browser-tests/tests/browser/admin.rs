//! The tenant administration pages in Chromium: an owner invites a teammate who accepts the
//! mailed invitation; an API key is created and shown once with its copy button; an agent is
//! refused `/settings/users`. Screenshots of the users and API keys pages at both sizes.

use crate::harness::{css, label, role, steps, text, Db, Page, Server};

crate::both!(
    an_owner_invites_a_teammate_who_accepts_by_mail,
    an_api_key_is_shown_once_and_an_agent_is_refused,
);

/// Invites `email` with `role` from the users page and waits for the confirmation.
async fn invite(page: &Page, email: &str, name: &str, role_name: &str) {
    page.goto("/settings/users").await;
    page.fill(&label("Email"), email).await;
    page.fill(&label("Name"), name).await;
    page.fill(&label("Role"), role_name).await;
    page.click(&role("button", "Send invitation")).await;
    page.wait_for(&text(&format!("Invitation sent to {email}")))
        .await;
}

async fn an_owner_invites_a_teammate_who_accepts_by_mail(db: Db) {
    let server = Server::start(db).await;
    let owner = Page::open(&server).await;
    steps::register_and_skip_verification(&owner).await;
    invite(&owner, "bo@acme.example", "Bo Invited", "agent").await;
    owner.click(&role("link", "Show the updated list")).await;
    owner.wait_for(&text("bo@acme.example")).await;
    owner.wait_for(&text("invited")).await;
    owner.assert_accessible().await;
    owner.screenshot("settings-users").await;
    owner.assert_clean().await;

    // Bo opens the mailed link in a browser of their own and chooses a password.
    let mail = server
        .wait_mail("bo@acme.example", "You are invited to Palisade")
        .await;
    let link = mail.link(&server.url("/accept-invite"));
    let bo = Page::open(&server).await;
    bo.goto(&link).await;
    bo.fill(&label("Password"), "another-lantern-orbit-quietly")
        .await;
    bo.click(&role("button", "Join")).await;
    bo.wait_for_path("/inbox").await;
    bo.assert_clean().await;

    // The owner sees Bo active now.
    owner.goto("/settings/users").await;
    owner.wait_for(&text("bo@acme.example")).await;
    owner.wait_for(&text("active")).await;
    owner.assert_clean().await;
}

async fn an_api_key_is_shown_once_and_an_agent_is_refused(db: Db) {
    let server = Server::start(db).await;
    let owner = Page::open(&server).await;
    steps::register_and_skip_verification(&owner).await;

    owner.goto("/settings/api-keys").await;
    owner.wait_for(&text("No API keys yet")).await;
    owner.fill(&label("Name"), "CRM sync").await;
    owner.click(&label("contacts:read")).await;
    owner.click(&label("conversations:read")).await;
    owner.click(&role("button", "Create key")).await;
    owner.wait_for(&text("Copy this key now")).await;
    owner.wait_for(&role("button", "Copy key")).await;
    let key = owner
        .eval("document.querySelector('#new-key-value').textContent")
        .await;
    let key = key.as_str().unwrap_or_default().to_owned();
    assert!(key.len() > 20, "the key is shown: {key:?}");
    owner.screenshot("settings-api-keys-created").await;

    // Once: the list never shows it again. Its allowed addresses were left empty: anywhere
    // (not `[]`, which would allow it from nowhere).
    owner.click(&role("link", "Done: show the list")).await;
    owner.wait_for(&text("CRM sync")).await;
    assert!(!owner.body_text().await.contains(&key));
    owner.wait_for(&text("anywhere")).await;

    // Allowed addresses: the API's refusal next to the field, then the key limited to them.
    owner.fill(&label("Name"), "Office only").await;
    owner.click(&label("contacts:read")).await;
    owner
        .fill(&label("Allowed IP addresses"), "203.0.113.7, not-an-ip")
        .await;
    owner.click(&role("button", "Create key")).await;
    owner
        .wait_for(&text("\"not-an-ip\" is not an IP address or CIDR range"))
        .await;
    let invalid = owner
        .eval("document.querySelector('#key-ips').getAttribute('aria-invalid')")
        .await;
    assert_eq!(
        invalid.as_str(),
        Some("true"),
        "the field is marked invalid"
    );
    owner
        .fill(
            &label("Allowed IP addresses"),
            "203.0.113.7, 198.51.100.0/24",
        )
        .await;
    owner.click(&role("button", "Create key")).await;
    owner.wait_for(&text("Copy this key now")).await;
    owner.click(&role("link", "Done: show the list")).await;
    owner
        .wait_for(&text("203.0.113.7/32, 198.51.100.0/24"))
        .await;
    owner.assert_accessible().await;
    owner.screenshot("settings-api-keys").await;
    owner.assert_clean().await;

    // Usable at 360 px: no admin page scrolls sideways (wide tables scroll in their frame).
    for path in [
        "/settings/users",
        "/settings/api-keys",
        "/settings/webhooks",
        "/settings/whatsapp",
        "/settings/tenant",
        "/audit",
        "/notifications",
    ] {
        owner.goto(path).await;
        owner.wait_for(&css("h1")).await;
        owner.assert_fits(360).await;
    }
    owner.assert_clean().await;

    // An agent who accepted an invitation gets the 403 page on the users page.
    invite(&owner, "cy@acme.example", "Cy Agent", "agent").await;
    let mail = server
        .wait_mail("cy@acme.example", "You are invited to Palisade")
        .await;
    let link = mail.link(&server.url("/accept-invite"));
    let agent = Page::open(&server).await;
    agent.goto(&link).await;
    agent
        .fill(&label("Password"), "another-lantern-orbit-quietly")
        .await;
    agent.click(&role("button", "Join")).await;
    agent.wait_for_path("/inbox").await;
    agent.goto("/settings/users").await;
    agent.wait_for(&text("You can't open this page")).await;
    assert!(!agent.body_text().await.contains("ana@acme.example"));
    agent.assert_clean().await;
}
