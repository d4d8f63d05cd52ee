//! Tickets: support requests with comments and attached files.
//!
//! Users and API keys read tickets (`tickets.read`), open and work them and comment
//! (`tickets.write`: admins and agents) and delete them (`tickets.delete`: admins). A ticket
//! may be opened from a conversation (`conversation_id`; its contact becomes the ticket's). A
//! public comment is sent to the customer as a WhatsApp text through the ticket's conversation
//! (queued in the comment's transaction by the messaging send path, so it needs
//! `conversations.write` too and the customer service window); an internal one is not sent.
//!
//! Attachments ([`attachments`]) are typed by their content ([`sniff`]), limited in size and
//! per user per day, stored by SHA-256 and served only as downloads. Every upload (accepted or
//! refused) and every download is audited.
//!
//! Events: `ticket.created`, `ticket.updated`, `ticket.comment_added`. The audit log keeps ids,
//! states and sizes, never subjects, descriptions, comment bodies or file names.

pub mod attachments;
mod read;
pub mod sniff;
pub mod view;
mod write;

pub use read::{get, list, TicketDetail, TicketListQuery};
pub use view::{AttachmentView, TicketCommentView, TicketDetailView, TicketView};
pub use write::{add_comment, create, delete, update, NewComment, NewTicket, TicketPatch};
