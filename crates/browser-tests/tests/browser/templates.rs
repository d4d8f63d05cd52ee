//! Message templates as an admin uses them: sync the number's templates from WhatsApp, see them
//! listed with their status badges, open one and read its preview, submit a new one with a
//! mistake (the field says what is wrong), fix it and see it pending Meta's review, then delete
//! it after the confirmation. Screenshots: `templates` (the list), `template` (a preview) and
//! `template-new` (the form showing its field errors) at both sizes.

use crate::harness::{label, role, text, Db, Page, Server};
use crate::inbox::{sign_in, tenant_with_number};

crate::both!(templates_are_synced_read_created_with_a_fix_and_deleted);

async fn templates_are_synced_read_created_with_a_fix_and_deleted(db: Db) {
    let server = Server::start(db).await;
    tenant_with_number(&server).await;
    let page = Page::open(&server).await;
    sign_in(&page, "ana@acme.example").await;

    page.click(&role("link", "Templates")).await;
    page.wait_for_path("/templates").await;
    page.wait_for(&text("No templates yet")).await;
    page.click(&text("Sync from WhatsApp")).await;
    page.wait_for(&role("link", "hello_world")).await;
    page.wait_for(&role("link", "order_confirmation")).await;
    page.wait_for(&text("Approved")).await;
    page.assert_accessible().await;
    page.screenshot("templates").await;

    // Filter by name.
    page.fill(&label("Name"), "order").await;
    page.click(&role("button", "Filter")).await;
    page.wait_for(&role("link", "Clear filters")).await;
    assert!(!page.is_visible(&role("link", "hello_world")).await);
    page.wait_for(&role("link", "order_confirmation")).await;

    // A template's preview.
    page.click(&role("link", "order_confirmation")).await;
    page.wait_for(&role("heading", "Preview")).await;
    page.wait_for(&role("heading", "order_confirmation")).await;
    page.assert_accessible().await;
    page.screenshot("template").await;

    // A new template with a mistake: the fields say what is wrong.
    page.goto("/templates").await;
    page.click(&role("link", "New template")).await;
    page.wait_for(&role("heading", "New template")).await;
    page.fill(&label("Name"), "Order Shipped").await;
    page.fill(&label("Body"), "Hi {{1}}, your order has shipped.")
        .await;
    page.click(&role("button", "Submit to Meta")).await;
    page.wait_for(&text("check the fields marked below")).await;
    page.wait_for(&text("needs example.body_text")).await;
    for field in ["name", "body_examples"] {
        assert_eq!(
            page.eval(&format!(
                "document.getElementById('{field}').getAttribute('aria-invalid')"
            ))
            .await,
            "true",
            "{field}"
        );
    }
    page.assert_accessible().await;
    page.screenshot("template-new").await;

    // Fixed: submitted, pending Meta's review.
    page.fill(&label("Name"), "order_shipped").await;
    page.fill(&label("Body example values"), "Ana").await;
    page.click(&role("button", "Submit to Meta")).await;
    page.wait_for(&role("heading", "order_shipped")).await;
    page.wait_for(&text("Hi {{1}}, your order has shipped."))
        .await;

    // Deleted after the confirmation.
    page.click(&role("button", "Delete template")).await;
    page.wait_for(&text("Delete the template order_shipped"))
        .await;
    page.click(&role("button", "Delete")).await;
    page.wait_for_path("/templates").await;
    page.wait_for(&role("link", "hello_world")).await;
    assert!(!page.is_visible(&role("link", "order_shipped")).await);
    page.assert_clean().await;
}
