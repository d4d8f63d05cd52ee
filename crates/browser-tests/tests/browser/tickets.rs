//! Tickets as an agent works them: open a ticket from a customer's conversation in the inbox
//! ("Open ticket" pre-fills the customer), comment internally and publicly (the public comment
//! is marked as sent over WhatsApp and reaches the conversation), change its status, upload a
//! file and download it, and see a refused file's message with the accepted types; then find
//! the ticket in the filtered list. Screenshots: `ticket` (a ticket with its thread and files),
//! `ticket-new` and `tickets` (the list) at both sizes.

use crate::harness::{any_role, css, label, role, text, Db, Page, Server};
use crate::inbox::{customer_writes, sign_in, tenant_with_number};
use std::time::Duration;

crate::both!(a_ticket_is_opened_from_a_conversation_commented_and_given_files);

async fn a_ticket_is_opened_from_a_conversation_commented_and_given_files(db: Db) {
    let server = Server::start(db).await;
    let (_, pid) = tenant_with_number(&server).await;
    customer_writes(&server, &pid, "My parcel arrived broken").await;
    let page = Page::open(&server).await;
    sign_in(&page, "ana@acme.example").await;

    // From the conversation: "Open ticket", with the customer filled in.
    page.click(&text("Carla Mendes")).await;
    page.wait_for(&role("heading", "Carla Mendes")).await;
    page.click(&role("link", "Open ticket")).await;
    page.wait_for(&role("heading", "New ticket")).await;
    page.wait_for(&text("Opened from the conversation with"))
        .await;
    page.wait_for(&text("Carla Mendes")).await;
    // Nothing typed: the subject says so.
    page.click(&role("button", "Open ticket")).await;
    page.wait_for(&css("#subject[aria-invalid=\"true\"]")).await;
    page.wait_for(&css("#subject-error:not([hidden])")).await;
    page.fill(&label("Subject"), "Broken parcel").await;
    page.fill(&label("Description"), "The box was crushed in transit.")
        .await;
    page.fill(&label("Priority"), "High").await;
    page.assert_accessible().await;
    page.screenshot("ticket-new").await;
    page.click(&role("button", "Open ticket")).await;
    page.wait_for(&role("heading", "Broken parcel")).await;
    page.wait_for(&text("The box was crushed in transit."))
        .await;

    // An internal comment, then a public one (sent to the customer over WhatsApp).
    page.fill(&label("Comment"), "Courier claim filed.").await;
    page.click(&role("button", "Add comment")).await;
    page.wait_for(&text("Courier claim filed.")).await;
    page.wait_for(&text("The team only")).await;
    page.fill(&label("Comment"), "Sorry! A new one ships today.")
        .await;
    page.click(&label("Visible to customer")).await;
    page.click(&role("button", "Add comment")).await;
    page.wait_for(&text("Sorry! A new one ships today.")).await;
    page.wait_for(&text("Sent to the customer over WhatsApp"))
        .await;

    // Status changed.
    page.fill(&label("Status"), "Pending").await;
    page.click(&role("button", "Save changes")).await;
    page.wait_loaded().await;
    for _ in 0..50 {
        if page
            .eval("document.querySelector('.page-badges .badge')?.textContent ?? ''")
            .await
            == "Pending"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        page.eval("document.querySelector('.page-badges .badge')?.textContent ?? ''")
            .await,
        "Pending"
    );

    // A file: uploaded, listed, downloaded as it was.
    let dir = server.data_dir().join("browser-files");
    std::fs::create_dir_all(&dir).unwrap();
    let notes = dir.join("claim-notes.txt");
    std::fs::write(&notes, "Parcel 42, crushed corner.\n").unwrap();
    page.set_file(&label("File"), &notes).await;
    page.click(&role("button", "Upload")).await;
    page.wait_for(&role("link", "claim-notes.txt")).await;
    let downloads = server.data_dir().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    page.allow_downloads(&downloads).await;
    page.click(&role("link", "claim-notes.txt")).await;
    let saved = downloads.join("claim-notes.txt");
    for _ in 0..100 {
        if saved.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap_or_default(),
        "Parcel 42, crushed corner.\n"
    );

    // A refused file: the API's message with the accepted types, on the form.
    let page_html = dir.join("invoice.html");
    std::fs::write(&page_html, "<html><script>alert(1)</script></html>\n").unwrap();
    page.set_file(&label("File"), &page_html).await;
    page.click(&role("button", "Upload")).await;
    page.wait_for(&any_role("alert")).await;
    page.wait_for(&text("Accepted types:")).await;
    assert!(!page.is_visible(&role("link", "invoice.html")).await);
    page.assert_accessible().await;
    page.screenshot("ticket").await;

    // The list, filtered by status.
    page.click(&role("link", "Tickets")).await;
    page.wait_for_path("/tickets").await;
    page.wait_for(&role("link", "Broken parcel")).await;
    page.fill(&label("Status"), "Solved").await;
    page.click(&role("button", "Filter")).await;
    page.wait_for(&text("No tickets match")).await;
    page.fill(&label("Status"), "Pending").await;
    page.click(&role("button", "Filter")).await;
    page.wait_for(&role("link", "Broken parcel")).await;
    page.assert_accessible().await;
    page.screenshot("tickets").await;
    page.assert_clean().await;
}
