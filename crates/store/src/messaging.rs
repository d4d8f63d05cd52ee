//! The former home of conversations, messages and the send queue, kept as re-exports so that
//! `palisade_store::messaging::…` keeps working while other modules move: the statements live in
//! `conversations`, `messages`, `send_queue` and (the inbound contact upsert) `contacts`.
//! New code names those modules directly.

pub use crate::contacts::{upsert_contacts, Sender, UpsertedContacts};
pub use crate::conversations::{
    connection_has_conversations, find_conversation, find_conversation_for_update,
    list_conversations, touch_conversations, update_conversation, Conversation, ConversationFilter,
};
pub use crate::messages::{
    advance_status, existing_wamids, find_message, insert_messages, insert_note, list_messages,
    status_rank, Message, NewMessage,
};
pub use crate::send_queue::{
    claim_sends, insert_outbound, mark_failed, mark_sent, retry_send, send_job, NewOutbound,
    QueuedSend,
};
