//! The deals board as a person uses it: add a contact, create a deal with the "New deal" form,
//! see it counted in its column, move it to another stage with the card's "Move to" form (no
//! script needed) and see the column counts change, then open the deal and read its stage
//! history. Screenshots: `deals` (the board) and `deal` (a deal's page) at both sizes.

use crate::harness::{label, role, steps, text, Db, Page, Server};

crate::both!(a_deal_is_created_moved_on_the_board_and_its_history_read);

/// Each column's stage name and the number it shows, in order: `Lead:1 deal|Qualified:0 deals|…`.
async fn counts(page: &Page) -> String {
    page.eval(
        "[...document.querySelectorAll('.board-col')].map(c => \
         c.querySelector('h2').firstChild.textContent.trim() + ':' + \
         c.querySelector('[data-count]').textContent.trim()).join('|')",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn a_deal_is_created_moved_on_the_board_and_its_history_read(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    steps::register_and_skip_verification(&page).await;

    // A contact to sell to.
    page.goto("/contacts/new").await;
    page.fill(&label("Name"), "Cara Lima").await;
    page.fill(&label("Phone"), "+44 7700 900123").await;
    page.click(&role("button", "Create contact")).await;
    page.wait_for(&role("heading", "Cara Lima")).await;

    // The board from the navigation: the default pipeline, empty.
    page.click(&role("link", "Deals")).await;
    page.wait_for_path("/deals").await;
    page.wait_for(&text("No deals in Sales yet")).await;
    assert_eq!(
        page.eval("document.getElementById('pipeline').selectedOptions[0].text")
            .await,
        "Sales"
    );

    page.click(&role("link", "New deal")).await;
    page.wait_for(&role("heading", "New deal")).await;
    // An amount that is not one: said next to the field, nothing created.
    page.fill(&label("Title"), "Fleet renewal").await;
    page.fill(&label("Value"), "12.5.0").await;
    page.fill(&label("Contact"), "Cara Lima (+447700900123)")
        .await;
    page.click(&role("button", "Create deal")).await;
    page.wait_for(&text("must be an amount like 1250.50")).await;
    assert_eq!(
        page.eval("document.getElementById('value').getAttribute('aria-invalid')")
            .await,
        "true"
    );
    page.assert_accessible().await;
    page.fill(&label("Value"), "1250.50").await;
    page.click(&role("button", "Create deal")).await;
    page.wait_for(&role("heading", "Fleet renewal")).await;
    page.wait_for(&text("1,250.50 EUR")).await;

    page.goto("/deals").await;
    page.wait_for(&role("link", "Fleet renewal")).await;
    assert_eq!(
        counts(&page).await,
        "Lead:1 deal|Qualified:0 deals|Proposal:0 deals|Negotiation:0 deals|Won:0 deals|Lost:0 deals"
    );
    page.wait_for(&text("Won")).await;
    page.assert_accessible().await;

    // Move it with the card's own form.
    page.fill(&label("Move Fleet renewal to"), "Proposal").await;
    page.click(&role("button", "Move Fleet renewal")).await;
    page.wait_loaded().await;
    for _ in 0..50 {
        if counts(&page)
            .await
            .starts_with("Lead:0 deals|Qualified:0 deals|Proposal:1 deal")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        counts(&page).await,
        "Lead:0 deals|Qualified:0 deals|Proposal:1 deal|Negotiation:0 deals|Won:0 deals|Lost:0 deals"
    );
    page.screenshot("deals").await;

    // The deal's page: its stage history, from its creation to the move.
    page.click(&role("link", "Fleet renewal")).await;
    page.wait_for(&role("heading", "Stage history")).await;
    let history = page
        .eval("[...document.querySelectorAll('tbody tr')].map(r => [...r.cells].slice(1, 3).map(c => c.textContent.trim()).join('>')).join('|')")
        .await;
    assert_eq!(history, "Created>Lead|Lead>Proposal");
    page.wait_for(&text("Cara Lima")).await;
    page.assert_accessible().await;
    page.screenshot("deal").await;
    page.assert_clean().await;
}
