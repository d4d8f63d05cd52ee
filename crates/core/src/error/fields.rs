//! Collecting every [`FieldError`] of one input, so that one `422` names each failing field
//! instead of the first (parse every field, then refuse once).

use super::{AppError, AppResult};
use palisade_domain::FieldError;

#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `r`, or `None` with its error kept.
    pub fn check<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    /// An optional field: `parse`d when given, `None` when absent or invalid (its error kept).
    pub fn check_some<V, T>(
        &mut self,
        value: Option<V>,
        parse: impl FnOnce(V) -> Result<T, FieldError>,
    ) -> Option<T> {
        value.and_then(|v| self.check(parse(v)))
    }

    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `422` with every error kept, if there is one.
    pub fn finish(self) -> AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::validation(self.0))
        }
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failing_field_is_kept_and_refused_once() {
        let mut errors = FieldErrors::new();
        let ok: Option<u8> = errors.check(Ok(1));
        let bad: Option<u8> = errors.check(Err(FieldError::new("a", "is wrong")));
        let absent: Option<u8> = errors.check_some(None::<&str>, |_| Ok(2));
        let given = errors.check_some(Some("b"), |_| Err::<u8, _>(FieldError::new("b", "too")));
        assert_eq!((ok, bad, absent, given), (Some(1), None, None, None));
        match errors.finish() {
            Err(AppError::Validation { fields, .. }) => {
                assert_eq!(fields.keys().collect::<Vec<_>>(), ["a", "b"]);
            }
            other => panic!("expected a 422, got {other:?}"),
        }
        assert!(FieldErrors::new().finish().is_ok());
    }
}
