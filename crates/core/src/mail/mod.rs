//! Mail: composed by the use case that causes it, queued in that use case's unit of work (the
//! durable outbox, `store::mail_outbox`), sent in the background.
//!
//! ```text
//! let mail = Mail::compose("password_reset", &user.email, "Reset your Palisade password")
//!     .user(user.id)
//!     .paragraph("Someone asked to reset the password of your Palisade account.")
//!     .action("Choose a new password", mail::link(s, "/reset-password", &[("token", &token)]))
//!     .paragraph("The link works once, for 30 minutes. If you did not ask, ignore this mail.");
//! mail::queue(&mut uow, mail).await?;
//! ```
//!
//! Rules every mail follows: no secret in the subject (codes and links go in the body only);
//! links are built from `PALISADE_PUBLIC_URL` with [`link`]; every mail has a plain-text and an
//! HTML part with the same content, the HTML escaped here. The body is encrypted with the key
//! ring while it waits in the outbox.

pub mod transport;
pub mod worker;

pub use transport::{Delivered, Mailer, SendError};

use crate::unit_of_work::UnitOfWork;
use crate::{AppError, AppResult, Services};
use palisade_domain::{MailId, UserId};
use palisade_store::mail_outbox::{self, NewMail};
use palisade_store::Scope;
use serde::{Deserialize, Serialize};

/// A composed mail, ready to queue.
#[derive(Debug, Clone)]
pub struct Mail {
    /// What the mail is (`email_verification`, `password_reset`, `new_device`, …): stored with
    /// the outbox row, never shown to the recipient.
    pub kind: &'static str,
    pub to: String,
    pub user: Option<UserId>,
    pub content: Content,
    blocks: Vec<Block>,
}

/// What is sent: the subject and both parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone)]
enum Block {
    Paragraph(String),
    /// A code to type (shown large and alone on its line).
    Code(String),
    /// A button in HTML, the bare URL in text.
    Action {
        label: String,
        url: String,
    },
}

impl Mail {
    /// Starts a mail of `kind` to `to` with `subject`. The subject must not carry a secret.
    pub fn compose(kind: &'static str, to: &str, subject: &str) -> Mail {
        Mail {
            kind,
            to: to.to_owned(),
            user: None,
            content: Content {
                subject: subject.to_owned(),
                text: String::new(),
                html: String::new(),
            },
            blocks: Vec::new(),
        }
    }

    /// The account the mail is about (kept with the outbox row).
    pub fn user(mut self, id: UserId) -> Mail {
        self.user = Some(id);
        self
    }

    pub fn paragraph(mut self, text: impl Into<String>) -> Mail {
        self.blocks.push(Block::Paragraph(text.into()));
        self.render()
    }

    pub fn code(mut self, code: impl Into<String>) -> Mail {
        self.blocks.push(Block::Code(code.into()));
        self.render()
    }

    pub fn action(mut self, label: impl Into<String>, url: impl Into<String>) -> Mail {
        self.blocks.push(Block::Action {
            label: label.into(),
            url: url.into(),
        });
        self.render()
    }

    fn render(mut self) -> Mail {
        let mut text = String::new();
        let mut html = String::from(
            "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1f2328\">",
        );
        for b in &self.blocks {
            match b {
                Block::Paragraph(p) => {
                    text.push_str(p);
                    html.push_str(&format!("<p>{}</p>", escape_html(p)));
                }
                Block::Code(c) => {
                    text.push_str("    ");
                    text.push_str(c);
                    html.push_str(&format!(
                        "<p style=\"font-size:24px;font-family:monospace;letter-spacing:4px\"><strong>{}</strong></p>",
                        escape_html(c)
                    ));
                }
                Block::Action { label, url } => {
                    text.push_str(&format!("{label}: {url}"));
                    html.push_str(&format!(
                        "<p><a href=\"{u}\">{l}</a></p><p style=\"font-size:12px;color:#59636e\">{u}</p>",
                        u = escape_html(url),
                        l = escape_html(label)
                    ));
                }
            }
            text.push_str("\n\n");
        }
        text.push_str("-- \nPalisade\n");
        html.push_str("<p style=\"font-size:12px;color:#59636e\">Palisade</p></body></html>");
        self.content.text = text;
        self.content.html = html;
        self
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link into Palisade for a mail: `PALISADE_PUBLIC_URL` + `path`, with `query` encoded.
pub fn link(s: &Services, path: &str, query: &[(&str, &str)]) -> String {
    let base = s.settings.public_url.trim_end_matches('/');
    let mut url = format!("{base}{path}");
    if !query.is_empty() {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        url.push('?');
        url.push_str(&q);
    }
    url
}

/// The associated data that binds an encrypted outbox payload to its row.
pub(crate) fn payload_aad(id: MailId) -> Vec<u8> {
    format!("mail_outbox:{id}").into_bytes()
}

/// Queues `mail` in the unit of work's transaction: it is sent once (and only if) the change
/// commits. Wakes this node's mail worker after the commit.
pub async fn queue<S: Scope>(uow: &mut UnitOfWork<'_, S>, mail: Mail) -> AppResult<MailId> {
    let s = uow.services().clone();
    let now = uow.now();
    let id = queue_in(&s, uow.tx(), mail, now).await?;
    uow.after_commit(|s| s.mail_outbox.notify_one());
    Ok(id)
}

/// Queues `mail` in a transaction that is not a unit of work's (the command line, which has no
/// mail worker of its own: a running server's worker sends it after the commit, within its
/// polling interval).
pub async fn queue_in<S: Scope>(
    s: &Services,
    tx: &mut palisade_store::Tx<S>,
    mail: Mail,
    now: time::OffsetDateTime,
) -> AppResult<MailId> {
    let id = MailId::new();
    let plain = serde_json::to_vec(&mail.content).map_err(|e| AppError::Internal(e.into()))?;
    let payload = s
        .keys
        .encryption
        .encrypt(&plain, &payload_aad(id))
        .map_err(AppError::Internal)?;
    mail_outbox::insert(
        tx,
        NewMail {
            id,
            user_id: mail.user,
            kind: mail.kind,
            to_address: &mail.to,
            payload: &payload,
        },
        now,
    )
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_every_block_and_html_is_escaped() {
        let m = Mail::compose("test", "a@example.com", "Hello")
            .paragraph("Dear <b>you</b> & co")
            .code("123456")
            .action("Open", "https://x.example/p?a=1&b=2");
        assert_eq!(m.content.subject, "Hello");
        assert!(m.content.text.contains("Dear <b>you</b> & co"));
        assert!(m.content.text.contains("123456"));
        assert!(m.content.text.contains("Open: https://x.example/p?a=1&b=2"));
        assert!(m
            .content
            .html
            .contains("Dear &lt;b&gt;you&lt;/b&gt; &amp; co"));
        assert!(m
            .content
            .html
            .contains("href=\"https://x.example/p?a=1&amp;b=2\""));
        assert!(!m.content.html.contains("<b>you"));
    }
}
