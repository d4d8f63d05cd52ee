//! One page of a list and its cursor, for every list the API serves.
//!
//! Lists are keyset-paginated: a page is fetched with `limit + 1` rows, and the extra row, if it
//! came, only says that there is more; the cursor is then the last item's key. Most lists are
//! ordered by id (UUID v7) and their cursor is the last id on the page; a list ordered by
//! something that changes (conversations by last activity) uses an [`ActivityCursor`], the
//! opaque (time, id) of the last item. Built in one place ([`Page::from_overfetch`]) so no list
//! gets the off-by-one wrong on its own.

use crate::{error::code, AppError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A page: the items and, when there may be more, the cursor for the next page (`C`: an id, or
/// an opaque string). Serialises as `{data, next_cursor}` (`next_cursor` is `null` on the last
/// page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T, C = Uuid> {
    pub data: Vec<T>,
    pub next_cursor: Option<C>,
}

impl<T, C> Page<T, C> {
    /// The page of at most `limit` items out of a fetch of `limit + 1`, the cursor being the
    /// last item's key (by `cursor`) when the fetch returned more than `limit`.
    pub fn from_overfetch(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = items.len() > limit;
        items.truncate(limit);
        Page {
            next_cursor: if more { items.last().map(cursor) } else { None },
            data: items,
        }
    }

    /// The same page with every item turned into another shape (a view).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U, C> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// The position of an item in a list ordered by a time that moves (newest first), ties broken
/// by id: the (time, id) of the last item of a page. It travels as an opaque token
/// (base64url of a version byte, the time in nanoseconds since the epoch and the id), so a
/// client passes it back unchanged rather than building one; [`ActivityCursor::parse`] refuses
/// anything else with a `400 invalid_query` that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityCursor {
    pub at: OffsetDateTime,
    pub id: Uuid,
}

const ACTIVITY_CURSOR_V1: u8 = 1;

impl ActivityCursor {
    /// The token.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(25);
        bytes.push(ACTIVITY_CURSOR_V1);
        // Nanoseconds fit an i64 until 2262; a time past it saturates (it cannot be stored).
        let nanos = i64::try_from(self.at.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        bytes.extend_from_slice(&nanos.to_be_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token made by [`encode`](Self::encode); `param` names the query parameter in the
    /// refusal.
    pub fn parse(param: &str, token: &str) -> Result<Self, AppError> {
        let refuse = || {
            AppError::BadRequest {
            code: code::INVALID_QUERY,
            message: format!(
                "{param} is not a cursor of this list: pass the previous page's next_cursor back unchanged"
            ),
        }
        };
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| refuse())?;
        let (Some(&ACTIVITY_CURSOR_V1), Some(nanos), Some(id)) =
            (bytes.first(), bytes.get(1..9), bytes.get(9..25))
        else {
            return Err(refuse());
        };
        if bytes.len() != 25 {
            return Err(refuse());
        }
        let nanos = i64::from_be_bytes(nanos.try_into().map_err(|_| refuse())?);
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|_| refuse())?;
        let id = Uuid::from_slice(id).map_err(|_| refuse())?;
        Ok(ActivityCursor { at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_cursor_comes_back_as_it_went() {
        let c = ActivityCursor {
            at: OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_789).unwrap(),
            id: Uuid::now_v7(),
        };
        let token = c.encode();
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ActivityCursor::parse("cursor", &token).unwrap(), c);
    }

    #[test]
    fn anything_else_is_refused_with_the_parameter_named() {
        let good = ActivityCursor {
            at: OffsetDateTime::UNIX_EPOCH,
            id: Uuid::nil(),
        }
        .encode();
        let longer = format!("{good}AA");
        for bad in [
            "",
            "x",
            "not base64!",
            &Uuid::now_v7().to_string(),
            &good[..good.len() - 2],
            &longer,
            &URL_SAFE_NO_PAD.encode([2u8; 25]),
        ] {
            match ActivityCursor::parse("cursor", bad) {
                Err(AppError::BadRequest { code, message }) => {
                    assert_eq!(code, "invalid_query");
                    assert!(message.starts_with("cursor is not a cursor"), "{message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn a_full_fetch_gives_a_cursor_at_the_last_kept_item() {
        let p = Page::from_overfetch(ids(4), 3, |u| *u);
        assert_eq!(p.data, ids(3));
        assert_eq!(p.next_cursor, Some(Uuid::from_u128(3)));
    }

    #[test]
    fn a_short_fetch_is_the_last_page() {
        for n in [0, 2, 3] {
            let p = Page::from_overfetch(ids(n), 3, |u| *u);
            assert_eq!(p.data.len() as u128, n);
            assert_eq!(p.next_cursor, None);
        }
    }

    #[test]
    fn map_keeps_the_cursor() {
        let p = Page::from_overfetch(ids(3), 2, |u| *u).map(|u| u.as_u128());
        assert_eq!(p.data, vec![1, 2]);
        assert_eq!(p.next_cursor, Some(Uuid::from_u128(2)));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"data": [1, 2], "next_cursor": Uuid::from_u128(2)})
        );
    }
}
