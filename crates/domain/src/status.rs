//! The statuses a message, a conversation, a media download and a WhatsApp connection move
//! through, with their order. The order of message statuses exists once, here: the store
//! builds its SQL `CASE` from [`MessageStatus::ALL`] and [`MessageStatus::rank`], and inbound
//! processing asks [`MessageStatus::from_meta`] which of Meta's reported statuses it knows.

/// Where a message is in its life. Inbound messages start `received`, an agent's `queued`,
/// internal notes are `recorded` (never sent); Meta then reports `sent`, `delivered`, `read`
/// or `failed`, and a message only ever moves to a higher [`rank`](Self::rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Received,
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
    Recorded,
}

impl MessageStatus {
    /// Every status, in rank order.
    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Received,
        MessageStatus::Queued,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
        MessageStatus::Recorded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Recorded => "recorded",
        }
    }

    /// The order statuses move in: a status update applies only to a message of a lower rank.
    /// `failed` ranks with `read` (neither replaces the other); a note's `recorded` is final.
    pub const fn rank(self) -> i64 {
        match self {
            MessageStatus::Received | MessageStatus::Queued => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Delivered => 2,
            MessageStatus::Read | MessageStatus::Failed | MessageStatus::Recorded => 3,
        }
    }

    /// A status Meta reports for a message (`sent`, `delivered`, `read`, `failed`); `None` for
    /// anything else (a status this server does not track, such as `played`).
    pub fn from_meta(s: &str) -> Option<MessageStatus> {
        match s.parse().ok()? {
            st @ (MessageStatus::Sent
            | MessageStatus::Delivered
            | MessageStatus::Read
            | MessageStatus::Failed) => Some(st),
            _ => None,
        }
    }

    /// An SQL expression of the rank of the text column `column`, built from [`ALL`](Self::ALL)
    /// and [`rank`](Self::rank) (an unknown value ranks highest, so it is never overwritten).
    pub fn sql_rank(column: &str) -> String {
        let mut sql = format!("CASE {column}");
        for st in MessageStatus::ALL {
            sql.push_str(&format!(" WHEN '{}' THEN {}", st.as_str(), st.rank()));
        }
        sql.push_str(" ELSE 3 END");
        sql
    }
}

text_enum!(MessageStatus, "message status");

/// Whether a WhatsApp connection sends and receives (`active`) or was disconnected by an admin
/// (kept, with its history, until deleted or reconnected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    Active,
    Disconnected,
}

impl ConnectionStatus {
    pub const ALL: [ConnectionStatus; 2] =
        [ConnectionStatus::Active, ConnectionStatus::Disconnected];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Disconnected => "disconnected",
        }
    }
}

text_enum!(ConnectionStatus, "connection status");

/// Where a conversation stands: `open` (an inbound message reopens it), `pending` (waiting on
/// someone) or `resolved` (closed; the next inbound message opens a new one). Agents move it
/// freely between the three, so there is no order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationStatus {
    Open,
    Pending,
    Resolved,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 3] = [
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Resolved,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
        }
    }
}

text_enum!(ConversationStatus, "conversation status");

/// The state of an inbound media message's file: `pending` (to be downloaded, retried after a
/// transient failure), then `stored` or `failed` for good. Both ends are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaStatus {
    Pending,
    Stored,
    Failed,
}

impl MediaStatus {
    pub const ALL: [MediaStatus; 3] = [
        MediaStatus::Pending,
        MediaStatus::Stored,
        MediaStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MediaStatus::Pending => "pending",
            MediaStatus::Stored => "stored",
            MediaStatus::Failed => "failed",
        }
    }
}

text_enum!(MediaStatus, "media status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for st in MessageStatus::ALL {
            assert_eq!(st.as_str().parse::<MessageStatus>(), Ok(st));
        }
        for st in ConnectionStatus::ALL {
            assert_eq!(st.as_str().parse::<ConnectionStatus>(), Ok(st));
        }
        for st in ConversationStatus::ALL {
            assert_eq!(st.as_str().parse::<ConversationStatus>(), Ok(st));
        }
        for st in MediaStatus::ALL {
            assert_eq!(st.as_str().parse::<MediaStatus>(), Ok(st));
        }
        assert!("closed".parse::<ConversationStatus>().is_err());
        assert!("played".parse::<MessageStatus>().is_err());
    }

    #[test]
    fn messages_move_forward_and_failed_ranks_with_read() {
        use MessageStatus::*;
        assert!(Received.rank() < Sent.rank() && Queued.rank() < Sent.rank());
        assert!(Sent.rank() < Delivered.rank() && Delivered.rank() < Read.rank());
        assert_eq!(Failed.rank(), Read.rank());
        let ranks: Vec<i64> = MessageStatus::ALL.iter().map(|s| s.rank()).collect();
        assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "ALL is in rank order"
        );
    }

    #[test]
    fn only_metas_statuses_are_updates() {
        assert_eq!(MessageStatus::from_meta("read"), Some(MessageStatus::Read));
        assert_eq!(
            MessageStatus::from_meta("failed"),
            Some(MessageStatus::Failed)
        );
        assert_eq!(MessageStatus::from_meta("received"), None);
        assert_eq!(MessageStatus::from_meta("recorded"), None);
        assert_eq!(MessageStatus::from_meta("played"), None);
    }

    #[test]
    fn the_sql_rank_is_built_from_the_enum() {
        assert_eq!(
            MessageStatus::sql_rank("status"),
            "CASE status WHEN 'received' THEN 0 WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 \
             WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 3 \
             WHEN 'recorded' THEN 3 ELSE 3 END"
        );
    }
}
