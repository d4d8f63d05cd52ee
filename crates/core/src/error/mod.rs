//! The application error: what went wrong, in terms a client can act on.
//!
//! The web layer renders each variant to a status and `{"error":{"code","message","fields"}}`.
//! `Internal` carries the cause for the log only; clients see a generic message and the
//! request id.

pub mod code;
mod fields;

pub use fields::FieldErrors;

use palisade_domain::{FieldError, Permission};
use std::collections::BTreeMap;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 422: input that parsed but breaks a rule; every failing field listed.
    #[error("{message}")]
    Validation {
        message: String,
        fields: BTreeMap<String, Vec<String>>,
    },
    /// 400: a request the server cannot interpret.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid credential.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// 403: a valid credential that may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: missing, or belonging to another tenant (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: conflicts with the current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 422 with a precise code: well-formed input that a business rule refuses.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 413: a body (an uploaded file) larger than the limit named in the message.
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: String },
    /// 429: slow down.
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// 503: temporarily unable (e.g. the password-hashing queue is full).
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(errors: impl IntoIterator<Item = FieldError>) -> Self {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in errors {
            fields
                .entry(e.field.to_owned())
                .or_default()
                .push(e.message);
        }
        let message = match fields.iter().next() {
            Some((field, msgs)) if fields.len() == 1 => {
                format!("{field}: {}", msgs.join("; "))
            }
            _ => "some fields are invalid; see fields".to_owned(),
        };
        AppError::Validation { message, fields }
    }

    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::validation([FieldError::new(field, message)])
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden {
            code: code::FORBIDDEN,
            message: message.into(),
        }
    }

    pub fn missing_permission(p: Permission) -> Self {
        AppError::Forbidden {
            code: code::FORBIDDEN,
            message: format!("your role does not have the {} permission", p.as_str()),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// 429 `rate_limited` with its `Retry-After` (seconds): the one way a rate limit refuses.
    /// The message says which limit, so a client knows what to slow down.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        AppError::TooManyRequests {
            code: code::RATE_LIMITED,
            message: message.into(),
            retry_after_secs,
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        AppError::Unauthenticated {
            code: code::UNAUTHENTICATED,
            message: message.into(),
        }
    }
}

impl From<palisade_store::StoreError> for AppError {
    fn from(e: palisade_store::StoreError) -> Self {
        AppError::Internal(anyhow::Error::new(e))
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::validation([e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_is_the_429_code_with_the_callers_message_and_wait() {
        match AppError::rate_limited("at most 10 contact exports per hour", 42) {
            AppError::TooManyRequests {
                code,
                message,
                retry_after_secs,
            } => {
                assert_eq!(code, code::RATE_LIMITED);
                assert_eq!(message, "at most 10 contact exports per hour");
                assert_eq!(retry_after_secs, 42);
            }
            other => panic!("expected TooManyRequests, got {other:?}"),
        }
    }
}
