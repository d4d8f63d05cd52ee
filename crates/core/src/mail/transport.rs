//! Handing a composed mail over: the MIME message (multipart/alternative, plain text and HTML)
//! and the transport, SMTP (`PALISADE_SMTP_URL`) or, without one, an `.eml` file per mail under
//! `<data dir>/mail/`.
//!
//! The Message-ID is derived from the outbox id (`<id@sender's domain>`), so a mail sent again
//! after a crash between sending and recording it carries the same id and receivers can drop
//! the duplicate; an `.eml` file is named after the id too, so a resend overwrites it.

use super::Content;
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use palisade_domain::MailId;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// How long one SMTP command may take before the attempt counts as a transient failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The configured way out: the sender address and the transport.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp {
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        /// The URL without its password, for messages.
        shown: String,
    },
    Files(PathBuf),
    #[cfg(test)]
    Stub(lettre::transport::stub::AsyncStubTransport),
}

/// What the transport answered for a mail it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The SMTP server's final answer (code and text).
    Smtp { code: String, message: String },
    /// The file the mail was written to.
    File(PathBuf),
    #[cfg(test)]
    Stub,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivered::Smtp { code, message } => write!(f, "{code} {message}"),
            Delivered::File(p) => write!(f, "written to {}", p.display()),
            #[cfg(test)]
            Delivered::Stub => f.write_str("stub"),
        }
    }
}

/// A mail that was not taken ([`crate::outbox::SendError`]: permanent for an SMTP 5xx or an
/// address the message cannot carry; transient for a 4xx, a connection or TLS failure, a
/// timeout, a disk error).
pub use crate::outbox::SendError;

/// Parses `PALISADE_MAIL_FROM`: a mailbox such as `Palisade <no-reply@example.com>` or a bare
/// address.
pub fn parse_from(from: &str) -> Result<Mailbox, String> {
    from.trim().parse::<Mailbox>().map_err(|e| {
        format!(
            "PALISADE_MAIL_FROM={from:?} is not a mailbox like `Palisade <no-reply@example.com>`: {e}"
        )
    })
}

/// Checks `PALISADE_SMTP_URL` (lettre's form: `smtp://host:port`, `smtp://…?tls=required`,
/// `smtps://…`, credentials as `user:password@`). The error never repeats the URL (it may hold
/// a password).
pub fn check_smtp_url(url: &str) -> Result<(), String> {
    smtp_builder(url).map(|_| ())
}

/// The pooled transport. Building it starts the pool's task: call it within a Tokio runtime.
fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    smtp_builder(url).map(|b| b.timeout(Some(SMTP_TIMEOUT)).build())
}

fn smtp_builder(url: &str) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, String> {
    let parsed =
        url::Url::parse(url.trim()).map_err(|e| format!("PALISADE_SMTP_URL is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err(format!(
            "PALISADE_SMTP_URL must start with smtp:// or smtps://, not {}://",
            parsed.scheme()
        ));
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim())
        .map_err(|e| format!("PALISADE_SMTP_URL is not usable: {e}"))
}

/// `smtp://user:secret@host` → `smtp://user:***@host`.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

impl Mailer {
    /// SMTP when `smtp_url` is set (and not blank), else `.eml` files under `mail_dir`. Call it
    /// within a Tokio runtime (the SMTP connection pool runs a task).
    pub fn new(smtp_url: Option<&str>, from: &str, mail_dir: PathBuf) -> Result<Mailer, String> {
        let from = parse_from(from)?;
        let transport = match smtp_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Transport::Smtp {
                smtp: smtp_transport(url)?,
                shown: shown_url(url),
            },
            None => Transport::Files(mail_dir),
        };
        Ok(Mailer { from, transport })
    }

    /// A mailer that records mails in memory (unit tests).
    #[cfg(test)]
    pub(crate) fn stub(stub: lettre::transport::stub::AsyncStubTransport) -> Mailer {
        Mailer {
            from: parse_from("Palisade <no-reply@localhost>").unwrap_or_else(|_| unreachable!()),
            transport: Transport::Stub(stub),
        }
    }

    /// Where mails go, for logs and the CLI (no password).
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp { shown, .. } => format!("SMTP {shown}"),
            Transport::Files(dir) => format!(".eml files in {}", dir.display()),
            #[cfg(test)]
            Transport::Stub(_) => "stub".into(),
        }
    }

    /// The Message-ID of the mail with outbox id `id`.
    pub fn message_id(&self, id: MailId) -> String {
        format!("<{id}@{}>", self.from.email.domain())
    }

    /// The MIME message: From, To, Subject, Date, the stable Message-ID, and both parts. An
    /// address the message cannot carry is a permanent failure.
    pub fn message(
        &self,
        id: MailId,
        to: &str,
        content: &Content,
        date: OffsetDateTime,
    ) -> Result<Message, SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::permanent(format!("the recipient address is invalid: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(content.subject.clone())
            .date(SystemTime::from(date))
            .message_id(Some(self.message_id(id)))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(
                content.text.clone(),
                content.html.clone(),
            ))
            .map_err(|e| SendError::permanent(format!("the mail cannot be built: {e}")))
    }

    /// Hands `message` (the mail with outbox id `id`) to the transport.
    pub async fn send(&self, id: MailId, message: &Message) -> Result<Delivered, SendError> {
        match &self.transport {
            Transport::Smtp { smtp, .. } => match smtp.send(message.clone()).await {
                Ok(r) => Ok(smtp_answer(&r)),
                Err(e) if e.is_permanent() => Err(SendError::permanent(e.to_string())),
                Err(e) => Err(SendError::transient(error_chain(&e))),
            },
            Transport::Files(dir) => write_eml(dir, id, &message.formatted())
                .await
                .map(Delivered::File)
                .map_err(|e| {
                    SendError::transient(format!(
                        "cannot write the mail under {}: {e}",
                        dir.display()
                    ))
                }),
            #[cfg(test)]
            Transport::Stub(stub) => stub
                .send(message.clone())
                .await
                .map(|()| Delivered::Stub)
                .map_err(|e| SendError::transient(e.to_string())),
        }
    }
}

fn smtp_answer(r: &Response) -> Delivered {
    Delivered::Smtp {
        code: r.code().to_string(),
        message: r.message().collect::<Vec<_>>().join(" "),
    }
}

/// The error and its causes on one line ("Connection error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Writes `<dir>/<id>.eml` (0600: mails carry codes and links) through a temporary file, so a
/// reader never sees half a mail and a resend replaces the file.
async fn write_eml(dir: &Path, id: MailId, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).await?;
    let path = dir.join(format!("{id}.eml"));
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    {
        use tokio::io::AsyncWriteExt;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut f = options.open(&tmp).await?;
        f.write_all(bytes).await?;
        f.sync_all().await?;
    }
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use lettre::transport::stub::AsyncStubTransport;

    fn content() -> Content {
        Content {
            subject: "Reset your password".into(),
            text: "Your code:\n\n    123456\n".into(),
            html: "<p>Your code: <strong>123456</strong></p>".into(),
        }
    }

    #[tokio::test]
    async fn a_mail_is_multipart_alternative_with_a_stable_message_id() {
        let stub = AsyncStubTransport::new_ok();
        let mailer = Mailer::stub(stub.clone());
        let id = MailId::new();
        let date = time::macros::datetime!(2026-12-06 07:30 UTC);
        let m = mailer
            .message(id, "ann@example.com", &content(), date)
            .unwrap();
        assert_eq!(mailer.send(id, &m).await.unwrap(), Delivered::Stub);
        let sent = stub.messages().await;
        assert_eq!(sent.len(), 1);
        let (envelope, text) = &sent[0];
        assert_eq!(envelope.to()[0].to_string(), "ann@example.com");
        assert_eq!(
            envelope.from().map(ToString::to_string).as_deref(),
            Some("no-reply@localhost")
        );
        for needle in [
            "From: Palisade <no-reply@localhost>",
            "To: ann@example.com",
            "Subject: Reset your password",
            "Date: Sun, 06 Dec 2026 07:30:00 +0000",
            &format!("Message-ID: <{id}@localhost>"),
            "Content-Type: multipart/alternative",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        // The same outbox id gives the same Message-ID (a resend after a crash).
        let again = mailer
            .message(id, "ann@example.com", &content(), date)
            .unwrap();
        let header = |m: &Message| {
            String::from_utf8_lossy(&m.formatted())
                .lines()
                .find(|l| l.starts_with("Message-ID:"))
                .map(str::to_owned)
        };
        assert_eq!(header(&m), header(&again));
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let mailer = Mailer::stub(AsyncStubTransport::new_ok());
        let e = mailer
            .message(
                MailId::new(),
                "not an address",
                &content(),
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap_err();
        assert!(e.permanent, "{e:?}");
    }

    #[tokio::test]
    async fn configuration_is_checked_and_errors_hide_the_password() {
        assert!(parse_from("Palisade <no-reply@localhost>").is_ok());
        assert!(parse_from("ops@example.com").is_ok());
        let e = parse_from("Palisade <nope>").unwrap_err();
        assert!(e.contains("PALISADE_MAIL_FROM"), "{e}");
        assert!(check_smtp_url("smtp://127.0.0.1:2525").is_ok());
        assert!(check_smtp_url("smtp://u:p@mail.example.com:587?tls=required").is_ok());
        assert!(check_smtp_url("smtps://u:p@mail.example.com").is_ok());
        let e = check_smtp_url("http://u:hunter2@mail.example.com").unwrap_err();
        assert!(e.contains("smtp://") && !e.contains("hunter2"), "{e}");
        let e = check_smtp_url("smtp://u:hunter2@").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let m = Mailer::new(
            Some("smtp://bob:hunter2@mail.example.com:587?tls=required"),
            "a@b.example",
            PathBuf::new(),
        )
        .unwrap();
        assert!(!m.describe().contains("hunter2"), "{}", m.describe());
        assert!(
            m.describe().contains("bob:***@mail.example.com"),
            "{}",
            m.describe()
        );
        let m = Mailer::new(Some("  "), "a@b.example", PathBuf::from("/x/mail")).unwrap();
        assert!(m.describe().contains(".eml"), "blank means files");
    }

    #[tokio::test]
    async fn without_smtp_each_mail_is_an_eml_file_named_by_its_id() {
        let dir = std::env::temp_dir().join(format!("palisade-mail-{}", uuid::Uuid::new_v4()));
        let mailer = Mailer::new(None, "Palisade <no-reply@localhost>", dir.clone()).unwrap();
        let id = MailId::new();
        let m = mailer
            .message(
                id,
                "ann@example.com",
                &content(),
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
        let Delivered::File(path) = mailer.send(id, &m).await.unwrap() else {
            unreachable!()
        };
        assert_eq!(path, dir.join(format!("{id}.eml")));
        // Sent again (a crash before recording it): the same file, replaced.
        mailer.send(id, &m).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("Subject: Reset your password"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
