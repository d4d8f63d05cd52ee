//! Mails as a person reads them: the `.eml` files the server writes under `<data dir>/mail/`
//! when no SMTP server is configured.

use std::path::Path;

/// One delivered mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The first run of exactly `digits` ASCII digits in the plain-text part (a one-time code).
    pub fn code(&self, digits: usize) -> String {
        self.text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == digits)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {digits}-digit code in the mail {:?}", self.subject))
    }

    /// The first link in the plain-text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no link {prefix}… in the mail {:?}", self.subject))
    }

    /// Mails in `dir` addressed to `to`, oldest first (by file name: UUID v7 outbox ids).
    pub(crate) fn read_dir(dir: &Path, to: &str) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|bytes| {
                let m = mail_parser::MessageParser::default().parse(&bytes)?;
                let addressed = m
                    .to()
                    .map(|a| {
                        a.iter()
                            .any(|a| a.address().is_some_and(|x| x.eq_ignore_ascii_case(to)))
                    })
                    .unwrap_or(false);
                addressed.then(|| Mail {
                    to: to.to_owned(),
                    subject: m.subject().unwrap_or_default().to_owned(),
                    text: m.body_text(0).map(|c| c.into_owned()).unwrap_or_default(),
                    html: m.body_html(0).map(|c| c.into_owned()).unwrap_or_default(),
                })
            })
            .collect()
    }
}
