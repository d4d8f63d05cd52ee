//! Steps several stories take through the same pages, written once: the registration form and
//! the WhatsApp connection form, filled and sent as a person does.

use super::page::{label, role, Page};
use super::server::Server;
use serde_json::Value;

/// The owner every story registers: Ana Lima of Acme.
pub const OWNER_EMAIL: &str = "ana@acme.example";
pub const OWNER_PASSWORD: &str = "correct-orbit-lantern-quietly";

/// Fills `/register` for Acme and Ana Lima and sends it; the page then moves to `/verify-email`.
pub async fn submit_registration(page: &Page) {
    page.goto("/register").await;
    page.fill(&label("Organisation name"), "Acme").await;
    page.fill(&label("Your name"), "Ana Lima").await;
    page.fill(&label("Work email"), OWNER_EMAIL).await;
    page.fill(&label("Password"), OWNER_PASSWORD).await;
    page.click(&role("button", "Create organisation")).await;
    page.wait_for_path("/verify-email").await;
}

/// Registers and verifies the address with the code the server mailed: a signed-in owner on
/// the inbox.
pub async fn register_and_verify(server: &Server, page: &Page) {
    submit_registration(page).await;
    let mail = server.wait_mail(OWNER_EMAIL, "Verify your email").await;
    page.fill(&label("Verification code"), &mail.code(6)).await;
    page.click(&role("button", "Verify")).await;
    page.wait_for_path("/inbox").await;
}

/// Registers and skips the address verification (optional on the test server): a signed-in
/// owner on the inbox.
pub async fn register_and_skip_verification(page: &Page) {
    submit_registration(page).await;
    page.click(&role("link", "Skip for now")).await;
    page.wait_for_path("/inbox").await;
}

/// Fills `/settings/whatsapp` with a number the simulator made (`POST /_sim/phone-numbers`'s
/// answer) and connects it as "Support".
pub async fn connect_number(page: &Page, number: &Value) {
    let field = |k: &str| number[k].as_str().unwrap().to_owned();
    page.goto("/settings/whatsapp").await;
    page.fill(&label("Name"), "Support").await;
    page.fill(&label("Phone number id"), &field("phone_number_id"))
        .await;
    page.fill(&label("WhatsApp Business Account id"), &field("waba_id"))
        .await;
    page.fill(&label("Access token"), &field("access_token"))
        .await;
    page.fill(&label("App secret"), &field("app_secret")).await;
    page.click(&role("button", "Connect number")).await;
}
