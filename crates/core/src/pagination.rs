//! One page of a list and its cursor, for every list the API serves.
//!
//! Lists are keyset-paginated by id: a page is fetched with `limit + 1` rows, and the extra row,
//! if it came, only says that there is more; the cursor is then the last id on the page. Built in
//! one place ([`Page::from_overfetch`]) so no list gets the off-by-one wrong on its own.

use serde::Serialize;
use uuid::Uuid;

/// A page: the items and, when there may be more, the cursor for the next page. Serialises as
/// `{data, next_cursor}` (`next_cursor` is `null` on the last page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

impl<T> Page<T> {
    /// The page of at most `limit` items out of a fetch of `limit + 1`, the cursor being the
    /// last item's id (by `cursor`) when the fetch returned more than `limit`.
    pub fn from_overfetch(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = items.len() > limit;
        items.truncate(limit);
        Page {
            next_cursor: if more { items.last().map(cursor) } else { None },
            data: items,
        }
    }

    /// The same page with every item turned into another shape (a view).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
