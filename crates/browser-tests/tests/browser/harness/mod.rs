//! The browser test harness: the real server as processes ([`Server`]), headless Chromium and a
//! page API that acts as a person does ([`Page`]), mails read from the server's `.eml` files
//! ([`Mail`]). See docs/console.md, "Browser tests".

pub mod mail;
pub mod page;
pub mod paths;
pub mod server;
pub mod steps;

pub use mail::Mail;
pub use page::{any_role, css, label, role, text, Browser, Locator, Page};
pub use server::{Db, Server};
