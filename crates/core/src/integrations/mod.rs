//! Store integrations: a shop (WooCommerce) sends its orders by signed webhooks; each order is
//! recorded on its customer's contact, and rules send a WhatsApp template when an order is
//! created or changes status.
//!
//! Admins only (`integrations.manage`): an integration holds a credential (its webhook
//! secret, encrypted at rest, shown once on creation and on rotation), so API keys and
//! impersonations are refused, like webhooks and WhatsApp connections. A contact's orders are
//! read with `contacts.read`. Every change is audited (`integration.created|updated|
//! secret_rotated|deleted`, never the secret), and so is every recorded delivery
//! (`integration.order_recorded`: ids and statuses, no personal data). The webhook itself is
//! in [`woocommerce`].

pub mod manage;
pub mod view;
pub mod woocommerce;

pub use manage::{
    create, delete, get, list, orders_of_contact, rotate_secret, update, IntegrationPatch,
    NewIntegration,
};
pub use view::{IntegrationView, IntegrationWithSecretView, OrderView};
