//! The contact pages as a person uses them: create a contact through the form (the API's field
//! error shown next to the phone first), find it with the filters, edit its tags, export the
//! filtered list as CSV, erase it after the confirmation that names it. The contact is named
//! `<img src=x onerror=alert(1)>` throughout: it must show as text, and no script may run.
//! Screenshots: `contacts` (the list) and `contact` (a contact's page) at both sizes.

use crate::harness::{css, label, role, steps, text, Db, Page, Server};

crate::both!(a_contact_is_created_edited_exported_and_erased_through_the_pages);

const XSS: &str = "<img src=x onerror=alert(1)>";

/// Registers Acme's owner through the console (address verification is optional by default):
/// a signed-in admin on the inbox.
async fn signed_in_owner(server: &Server) -> Page {
    let page = Page::open(server).await;
    steps::register_and_skip_verification(&page).await;
    page
}

/// Fills the new-contact form and sends it (the page then moves to the contact's page).
async fn create(page: &Page, name: &str, phone: &str, tags: &str) {
    page.goto("/contacts/new").await;
    page.fill(&label("Name"), name).await;
    page.fill(&label("Phone"), phone).await;
    page.fill(&label("Tags"), tags).await;
    page.click(&role("button", "Create contact")).await;
    page.wait_for(&role("heading", name)).await;
}

async fn a_contact_is_created_edited_exported_and_erased_through_the_pages(db: Db) {
    let server = Server::start(db).await;
    let page = signed_in_owner(&server).await;

    page.goto("/contacts").await;
    page.wait_for(&text("No contacts yet")).await;
    page.click(&role("link", "New contact")).await;
    page.wait_for_path("/contacts/new").await;
    page.wait_for(&role("heading", "New contact")).await;

    // A phone the API refuses: its message appears next to the phone, nothing is created.
    page.fill(&label("Name"), XSS).await;
    page.fill(&label("Phone"), "12345").await;
    page.fill(&label("Email"), "cara@example.com").await;
    page.fill(&label("Tags"), "vip, newsletter").await;
    page.click(&role("button", "Add attribute")).await;
    page.fill(&label("Key 1"), "plan").await;
    page.fill(&label("Value 1"), "gold").await;
    page.fill(
        &label("Marketing consent"),
        "Opted in to marketing messages",
    )
    .await;
    page.click(&role("button", "Create contact")).await;
    page.wait_for(&css("#phone-error:not([hidden])")).await;
    let invalid = page
        .eval("document.getElementById('phone').getAttribute('aria-invalid')")
        .await;
    assert_eq!(invalid, "true");
    assert_eq!(page.current_path().await, "/contacts/new");
    page.assert_accessible().await;

    page.fill(&label("Phone"), "+44 7700 900123").await;
    page.click(&role("button", "Create contact")).await;
    // The contact's page, titled with the name as text.
    page.wait_for(&role("heading", XSS)).await;
    let path = page.current_path().await;
    assert!(
        path.starts_with("/contacts/") && path != "/contacts/new",
        "{path}"
    );
    page.wait_for(&text("Opted in to marketing messages since"))
        .await;
    assert_eq!(
        page.eval("document.querySelector('[data-attr-key]').value")
            .await,
        "plan"
    );
    let injected = page
        .eval("document.querySelectorAll('img[src=\"x\"]').length")
        .await;
    assert_eq!(injected, 0, "the name became markup");

    // Edit the tags.
    page.fill(&label("Tags"), "vip, gold customer").await;
    page.click(&role("button", "Save changes")).await;
    page.wait_for(&text("gold customer")).await;
    page.wait_for(&role("heading", XSS)).await;
    page.assert_accessible().await;
    page.screenshot("contact").await;

    // A second contact, without the tag; then the list, filtered by the tag.
    create(&page, "Bruno Costa", "+44 7700 900456", "newsletter").await;
    // No choice recorded: the consent control says so (it used to show an opt-out as chosen),
    // and recording one takes an explicit pick.
    page.wait_for(&text(
        "No choice recorded: ask before sending marketing messages.",
    ))
    .await;
    assert_eq!(
        page.eval("document.getElementById('marketing_opt_in').value")
            .await,
        ""
    );
    page.fill(&label("Change consent"), "Opted in to marketing messages")
        .await;
    page.click(&role("button", "Save consent")).await;
    page.wait_for(&text("Opted in to marketing messages since"))
        .await;
    page.goto("/contacts").await;
    page.wait_for(&role("link", "Bruno Costa")).await;
    page.wait_for(&role("link", XSS)).await;
    page.assert_accessible().await;
    page.screenshot("contacts").await;
    page.fill(&label("Tag"), "gold customer").await;
    page.click(&role("button", "Filter")).await;
    page.wait_for(&role("link", "Clear filters")).await;
    assert!(!page.is_visible(&role("link", "Bruno Costa")).await);
    page.wait_for(&role("link", XSS)).await;

    // Export CSV: the link is the API's export with the same filter. Its answer (the file the
    // browser would download) is read with the page's own cookie to check what it holds.
    page.wait_for(&role("link", "Export CSV")).await;
    let href = page
        .eval("document.querySelector('a[download]').getAttribute('href')")
        .await;
    let href = href.as_str().unwrap().to_owned();
    assert!(
        href.starts_with("/api/v1/contacts/export?format=csv"),
        "{href}"
    );
    assert!(href.contains("tag=gold%20customer"), "{href}");
    let csv = page
        .eval(&format!(
            "fetch({}).then((r) => r.text())",
            serde_json::json!(href)
        ))
        .await;
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("id,phone,name"), "{csv}");
    assert!(
        csv.contains("+447700900123") && !csv.contains("Bruno"),
        "{csv}"
    );

    // Erase, after a confirmation that names the contact; cancelling first keeps it.
    page.click(&role("link", XSS)).await;
    page.wait_for(&role("heading", XSS)).await;
    page.click(&role("button", "Erase contact")).await;
    page.wait_for(&any_dialog()).await;
    page.wait_for(&text(&format!("Erase {XSS} (+447700900123)")))
        .await;
    page.click(&role("button", "Cancel")).await;
    page.wait_gone(&any_dialog()).await;
    page.click(&role("button", "Erase contact")).await;
    page.click(&role("button", &format!("Erase {XSS}"))).await;
    page.wait_for_path("/contacts").await;
    page.wait_for(&role("link", "Bruno Costa")).await;
    assert!(!page.is_visible(&role("link", XSS)).await);
    page.assert_clean().await;
}

fn any_dialog() -> crate::harness::Locator {
    crate::harness::any_role("dialog")
}
