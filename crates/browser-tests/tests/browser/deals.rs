//! The deals board as a person uses it: add a contact, create a deal with the "New deal" form,
//! see it counted in its column, move it to another stage with the card's "Move to" form (no
//! script needed) and see the column counts change, then open the deal and read its stage
//! history, change it with its edit form (lost, with the reason) and delete it. An admin then
//! builds a pipeline with the stage editor (add, reorder, remove stages), renames a stage and
//! deletes the pipeline. Screenshots: `deals` (the board), `deal` (a deal's page),
//! `deal-edit`, `pipelines` and `pipeline-edit`, at both sizes.

use crate::harness::{any_role, css, label, role, steps, text, Db, Page, Server};

crate::both!(
    a_deal_is_created_moved_on_the_board_and_its_history_read,
    a_pipeline_is_built_with_the_stage_editor_and_deleted,
);

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

    // Lost: the edit form moves it and keeps the reason.
    page.click(&role("link", "Edit deal")).await;
    page.wait_for(&role("heading", "Edit deal")).await;
    assert_eq!(
        page.eval("document.getElementById('value').value").await,
        "1250.50"
    );
    page.fill(&label("Value"), "990").await;
    page.fill(&label("Stage"), "Lost (lost)").await;
    page.fill(&label("Lost reason"), "Went with a competitor")
        .await;
    page.assert_accessible().await;
    page.screenshot("deal-edit").await;
    page.click(&role("button", "Save deal")).await;
    page.wait_for(&text("Lost because")).await;
    page.wait_for(&text("Went with a competitor")).await;
    page.wait_for(&text("990.00 EUR")).await;

    // Deleting asks first; cancelling keeps it.
    page.click(&role("button", "Delete deal")).await;
    page.wait_for(&any_role("dialog")).await;
    page.click(&role("button", "Cancel")).await;
    page.wait_gone(&any_role("dialog")).await;
    page.click(&role("button", "Delete deal")).await;
    page.wait_for(&any_role("dialog")).await;
    page.click(&css("dialog[open] .btn-danger")).await;
    page.wait_for(&text("No deals in Sales yet")).await;
    page.assert_clean().await;
}

/// The stage names of the pipeline `name` on the pipelines page, in order.
async fn stages_of(page: &Page, name: &str) -> String {
    page.eval(&format!(
        "[...document.querySelectorAll('tbody tr')].filter(r => r.cells[0].textContent.includes({name:?})) \
         .map(r => [...r.querySelectorAll('li')].map(li => li.firstChild.textContent.trim()).join('>')).join('|')"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn a_pipeline_is_built_with_the_stage_editor_and_deleted(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    steps::register_and_skip_verification(&page).await;

    page.goto("/deals").await;
    page.click(&role("link", "Pipelines")).await;
    page.wait_for(&role("heading", "Pipelines")).await;
    assert_eq!(
        stages_of(&page, "Sales").await,
        "Lead>Qualified>Proposal>Negotiation>Won>Lost"
    );
    page.assert_accessible().await;
    page.screenshot("pipelines").await;

    // New: the form starts with New (open), Won and Lost.
    page.click(&role("link", "New pipeline")).await;
    page.wait_for(&role("heading", "New pipeline")).await;
    page.fill(&label("Name"), "Renewals").await;
    page.fill(&css("#stage-0-name"), "Due").await;
    page.click(&role("button", "Add stage")).await;
    assert_eq!(
        page.eval("document.activeElement.id").await,
        "stage-3-name",
        "the new row's name has the focus"
    );
    page.fill(&css("#stage-3-name"), "Quoted").await;
    page.fill(&css("#stage-3-probability"), "60").await;
    // Up twice: Due, Quoted, Won, Lost; then Lost goes.
    page.click(&role("button", "Move up stage 4")).await;
    page.click(&role("button", "Move up stage 3")).await;
    page.click(&role("button", "Remove stage 4")).await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('[data-stage-legend]')].map(l => l.textContent).join('|')")
            .await,
        "Stage 1|Stage 2|Stage 3"
    );
    // An empty name: the API's message under the stages, nothing created.
    page.fill(&css("#stage-1-name"), "").await;
    page.click(&role("button", "Create pipeline")).await;
    page.wait_for(&text("stage 2 (stages[1]): name is required"))
        .await;
    page.assert_accessible().await;
    page.screenshot("pipeline-edit").await;
    page.fill(&css("#stage-1-name"), "Quoted").await;
    page.click(&role("button", "Create pipeline")).await;
    page.wait_for_path("/deals/pipelines").await;
    page.wait_for(&role("link", "Renewals")).await;
    assert_eq!(stages_of(&page, "Renewals").await, "Due>Quoted>Won");

    // Rename a stage; the others keep their ids (and deals).
    page.click(&role("link", "Edit Renewals")).await;
    page.wait_for(&role("heading", "Edit pipeline")).await;
    page.fill(&css("#stage-0-name"), "Overdue").await;
    page.click(&role("button", "Save pipeline")).await;
    page.wait_for_path("/deals/pipelines").await;
    page.wait_for(&text("Overdue")).await;
    assert_eq!(stages_of(&page, "Renewals").await, "Overdue>Quoted>Won");

    // Delete it, after the confirmation.
    page.click(&role("link", "Edit Renewals")).await;
    page.wait_for(&role("heading", "Edit pipeline")).await;
    page.click(&role("button", "Delete pipeline")).await;
    page.wait_for(&any_role("dialog")).await;
    page.click(&css("dialog[open] .btn-danger")).await;
    page.wait_for_path("/deals/pipelines").await;
    page.wait_gone(&role("link", "Renewals")).await;
    page.assert_clean().await;
}
