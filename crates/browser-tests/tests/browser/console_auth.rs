//! The signed-out pages: `/login` is clean (no CSP violation, no script error), passes axe-core
//! and is captured at both sizes; a person registers through the form, verifies the address with
//! the mailed code and lands on the inbox.

use crate::harness::{label, role, steps, Db, Page, Server};

crate::both!(
    the_login_page_is_clean_accessible_and_captured,
    registering_and_verifying_the_email_lands_on_the_inbox,
);

async fn the_login_page_is_clean_accessible_and_captured(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    page.goto("/login").await;
    page.wait_for(&role("heading", "Sign in")).await;
    page.wait_for(&label("Email")).await;
    page.wait_for(&label("Password")).await;
    page.assert_accessible().await;
    page.screenshot("login").await;
    page.assert_clean().await;
}

async fn registering_and_verifying_the_email_lands_on_the_inbox(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    steps::register_and_verify(&server, &page).await;
    page.assert_accessible().await;
    page.assert_clean().await;
}
