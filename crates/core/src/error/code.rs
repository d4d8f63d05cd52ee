//! Every error code a client can receive, in one place.
//!
//! A code is a stable snake_case string clients branch on; the message beside it is for
//! people and may change. Use these constants, never a literal (`code::CONTACT_EXISTS`, not
//! `"contact_exists"`); a unit test keeps the list sorted and unique.

/// Too many failed sign-ins: the account is locked for a while.
pub const ACCOUNT_LOCKED: &str = "account_locked";
/// The security alert is resolved: it can no longer be acknowledged or resolved.
pub const ALERT_RESOLVED: &str = "alert_resolved";
/// The WhatsApp connection is already disconnected.
pub const ALREADY_DISCONNECTED: &str = "already_disconnected";
/// The user already owns the tenant.
pub const ALREADY_OWNER: &str = "already_owner";
/// The API key is already revoked.
pub const ALREADY_REVOKED: &str = "already_revoked";
/// The tenant is already suspended.
pub const ALREADY_SUSPENDED: &str = "already_suspended";
/// The email address is already verified.
pub const ALREADY_VERIFIED: &str = "already_verified";
/// An API key may never do this, whatever its scopes; sign in as a user.
pub const API_KEY_NOT_ALLOWED: &str = "api_key_not_allowed";
/// The webhook waits for an admin's approval.
pub const APPROVAL_REQUIRED: &str = "approval_required";
/// The request body exceeds the limit.
pub const BODY_TOO_LARGE: &str = "body_too_large";
/// A store webhook without a valid signature of its body (or for no such integration).
pub const SIGNATURE_INVALID: &str = "signature_invalid";
/// A campaign can be edited only while it is a draft or scheduled.
pub const CAMPAIGN_NOT_EDITABLE: &str = "campaign_not_editable";
/// A running campaign cannot be deleted; pause or cancel it first.
pub const CAMPAIGN_RUNNING: &str = "campaign_running";
/// The campaign's status does not allow this action (start, pause, resume, cancel).
pub const CAMPAIGN_STATE_CONFLICT: &str = "campaign_state_conflict";
/// A user cannot delete their own account.
pub const CANNOT_DELETE_SELF: &str = "cannot_delete_self";
/// The TOTP code (its 30-second step) was already accepted once; wait for the next one.
pub const CODE_ALREADY_USED: &str = "code_already_used";
/// The WhatsApp connection is disconnected.
pub const CONNECTION_DISCONNECTED: &str = "connection_disconnected";
/// The connection still has conversations.
pub const CONNECTION_HAS_CONVERSATIONS: &str = "connection_has_conversations";
/// A contact with this phone already exists.
pub const CONTACT_EXISTS: &str = "contact_exists";
/// The contact already has an open conversation on that number.
pub const CONVERSATION_ALREADY_OPEN: &str = "conversation_already_open";
/// A cookie-authenticated unsafe request without a valid CSRF token.
pub const CSRF_FAILED: &str = "csrf_failed";
/// The email address is in use.
pub const EMAIL_TAKEN: &str = "email_taken";
/// The email address must be verified first (`PALISADE_EMAIL_VERIFICATION=required`).
pub const EMAIL_UNVERIFIED: &str = "email_unverified";
/// The uploaded file is larger than `PALISADE_UPLOAD_MAX_BYTES`.
pub const FILE_TOO_LARGE: &str = "file_too_large";
/// The uploaded file's content is not an accepted type, does not match its extension, or is
/// hostile (executable, script, markup, macros, polyglot); the message says why and lists the
/// accepted types.
pub const FILE_TYPE_NOT_ALLOWED: &str = "file_type_not_allowed";
/// The credential's role or scopes do not allow this.
pub const FORBIDDEN: &str = "forbidden";
/// An impersonation may never do this.
pub const IMPERSONATION_FORBIDDEN: &str = "impersonation_forbidden";
/// A read-only impersonation may not write.
pub const IMPERSONATION_READ_ONLY: &str = "impersonation_read_only";
/// The API key lacks the scope named in the message.
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
/// Something failed on our side; the request id finds it in the log.
pub const INTERNAL_ERROR: &str = "internal_error";
/// The API key is unknown, revoked, expired or not allowed from this address.
pub const INVALID_API_KEY: &str = "invalid_api_key";
/// The body is not what the route accepts.
pub const INVALID_BODY: &str = "invalid_body";
/// The one-time code (email, TOTP or recovery code) is wrong, expired or used.
pub const INVALID_CODE: &str = "invalid_code";
/// Wrong email or password.
pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
/// The WebAuthn challenge is unknown, used or expired: start the ceremony again.
pub const INVALID_CHALLENGE: &str = "invalid_challenge";
/// The invitation is unknown, used or expired.
pub const INVALID_INVITE: &str = "invalid_invite";
/// The `mfa_token` is unknown, used, expired or spent its tries: sign in again.
pub const INVALID_MFA_TOKEN: &str = "invalid_mfa_token";
/// The passkey's answer did not verify (unknown credential, wrong origin, bad signature, a
/// signature counter that went backwards, no user verification).
pub const INVALID_PASSKEY: &str = "invalid_passkey";
/// A path parameter is malformed.
pub const INVALID_PATH: &str = "invalid_path";
/// A query parameter is malformed.
pub const INVALID_QUERY: &str = "invalid_query";
/// The refresh token is unknown, expired or revoked.
pub const INVALID_REFRESH_TOKEN: &str = "invalid_refresh_token";
/// The access token is malformed, badly signed, or names an account that no longer exists.
pub const INVALID_TOKEN: &str = "invalid_token";
/// The body is not valid JSON.
pub const MALFORMED_JSON: &str = "malformed_json";
/// Meta refused a template operation (create, list, delete); the message carries Meta's
/// error code and explanation.
pub const META_REFUSED: &str = "meta_refused";
/// The message's media could not be downloaded.
pub const MEDIA_FAILED: &str = "media_failed";
/// The message's media is still being downloaded.
pub const MEDIA_PENDING: &str = "media_pending";
/// The attachment is larger than WhatsApp accepts for the message type (the limit is named).
pub const MEDIA_TOO_LARGE: &str = "media_too_large";
/// The attachment's type is not one WhatsApp accepts for the message type (the accepted types
/// are named).
pub const MEDIA_TYPE_NOT_ALLOWED: &str = "media_type_not_allowed";
/// The route exists but not with this method.
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// The user is not deleted, so there is nothing to restore.
pub const NOT_DELETED: &str = "not_deleted";
/// No such route or resource (or it belongs to another tenant).
pub const NOT_FOUND: &str = "not_found";
/// The webhook is not waiting for approval.
pub const NOT_PENDING_APPROVAL: &str = "not_pending_approval";
/// The tenant is active already, so there is nothing to reactivate.
pub const NOT_SUSPENDED: &str = "not_suspended";
/// The message has no media.
pub const NO_MEDIA: &str = "no_media";
/// The websocket's Origin is not allowed.
pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";
/// Only a template may be sent outside the 24-hour window.
pub const OUTSIDE_CUSTOMER_SERVICE_WINDOW: &str = "outside_customer_service_window";
/// The tenant's owner cannot be deleted.
pub const OWNER_CANNOT_BE_DELETED: &str = "owner_cannot_be_deleted";
/// The owner's role cannot change.
pub const OWNER_ROLE_FIXED: &str = "owner_role_fixed";
/// This passkey (credential id) is already registered to an account.
pub const PASSKEY_EXISTS: &str = "passkey_exists";
/// The password changed while this request was being handled.
pub const PASSWORD_CHANGED: &str = "password_changed";
/// The password has expired; only changing it is allowed.
pub const PASSWORD_EXPIRED: &str = "password_expired";
/// An active connection already has this number.
pub const PHONE_NUMBER_ALREADY_CONNECTED: &str = "phone_number_already_connected";
/// The pipeline still has deals (delete or move them first).
pub const PIPELINE_HAS_DEALS: &str = "pipeline_has_deals";
/// The tenant's last pipeline cannot be deleted.
pub const LAST_PIPELINE: &str = "last_pipeline";
/// A stage being removed from a pipeline still has deals.
pub const STAGE_HAS_DEALS: &str = "stage_has_deals";
/// Too many requests; see Retry-After.
pub const RATE_LIMITED: &str = "rate_limited";
/// The refresh cookie or field is missing.
pub const REFRESH_TOKEN_MISSING: &str = "refresh_token_missing";
/// A rotated refresh token was presented again; the session is revoked.
pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
/// The request took too long.
pub const REQUEST_TIMEOUT: &str = "request_timeout";
/// The user was deleted too long ago to restore.
pub const RESTORE_WINDOW_PASSED: &str = "restore_window_passed";
/// The session behind the access token was signed out (or the token outlived it).
pub const SESSION_REVOKED: &str = "session_revoked";
/// The operation needs a tenant; super admins have none.
pub const TENANT_REQUIRED: &str = "tenant_required";
/// The connection already has a template of this name in this language.
pub const TEMPLATE_EXISTS: &str = "template_exists";
/// The template exists on the connection, but not in the requested language.
pub const TEMPLATE_LANGUAGE_UNAVAILABLE: &str = "template_language_unavailable";
/// The template is not `APPROVED` (pending, rejected, paused, disabled, …): it cannot be sent.
pub const TEMPLATE_NOT_APPROVED: &str = "template_not_approved";
/// The connection has no template of this name (sync the templates, or create it).
pub const TEMPLATE_NOT_FOUND: &str = "template_not_found";
/// The send gives a different number of body or header parameters than the template has.
pub const TEMPLATE_PARAMETER_MISMATCH: &str = "template_parameter_mismatch";
/// The tenant is suspended.
pub const TENANT_SUSPENDED: &str = "tenant_suspended";
/// The access token has expired: refresh it.
pub const TOKEN_EXPIRED: &str = "token_expired";
/// A credential in the URL is refused.
pub const TOKEN_IN_URL: &str = "token_in_url";
/// The one-time code had too many wrong tries; ask for a new one.
pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
/// The user or key has too many open websockets.
pub const TOO_MANY_WEBSOCKETS: &str = "too_many_websockets";
/// TOTP is already active; disable it before setting up another authenticator.
pub const TOTP_ALREADY_ENABLED: &str = "totp_already_enabled";
/// TOTP is not active for this user.
pub const TOTP_NOT_ENABLED: &str = "totp_not_enabled";
/// There is no pending TOTP setup to confirm; start one with `totp/setup`.
pub const TOTP_NOT_SET_UP: &str = "totp_not_set_up";
/// The user must set up a second factor first; only enrolment, `/me` and logout are open.
pub const TWO_FACTOR_ENROLLMENT_REQUIRED: &str = "2fa_enrollment_required";
/// The tenant requires a second factor, so the last one cannot be removed.
pub const TWO_FACTOR_REQUIRED: &str = "2fa_required";
/// No valid credential.
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// Temporarily unable; see Retry-After.
pub const UNAVAILABLE: &str = "unavailable";
/// The Content-Type is not accepted.
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
/// The websocket route needs an Upgrade request.
pub const UPGRADE_REQUIRED: &str = "upgrade_required";
/// The user has uploaded `PALISADE_UPLOAD_QUOTA_BYTES_PER_DAY` today (UTC); see Retry-After.
pub const UPLOAD_QUOTA_EXCEEDED: &str = "upload_quota_exceeded";
/// The user is deleted.
pub const USER_DELETED: &str = "user_deleted";
/// Fields break a rule; `fields` lists every one.
pub const VALIDATION_FAILED: &str = "validation_failed";
/// The Meta webhook verification failed.
pub const VERIFICATION_FAILED: &str = "verification_failed";
/// The tenant has the most webhooks allowed.
pub const WEBHOOK_LIMIT_REACHED: &str = "webhook_limit_reached";
/// The webhook is not active.
pub const WEBHOOK_NOT_ACTIVE: &str = "webhook_not_active";

/// Every code above, sorted.
pub const ALL: &[&str] = &[
    TWO_FACTOR_ENROLLMENT_REQUIRED,
    TWO_FACTOR_REQUIRED,
    ACCOUNT_LOCKED,
    ALERT_RESOLVED,
    ALREADY_DISCONNECTED,
    ALREADY_OWNER,
    ALREADY_REVOKED,
    ALREADY_SUSPENDED,
    ALREADY_VERIFIED,
    API_KEY_NOT_ALLOWED,
    APPROVAL_REQUIRED,
    BODY_TOO_LARGE,
    CAMPAIGN_NOT_EDITABLE,
    CAMPAIGN_RUNNING,
    CAMPAIGN_STATE_CONFLICT,
    CANNOT_DELETE_SELF,
    CODE_ALREADY_USED,
    CONNECTION_DISCONNECTED,
    CONNECTION_HAS_CONVERSATIONS,
    CONTACT_EXISTS,
    CONVERSATION_ALREADY_OPEN,
    CSRF_FAILED,
    EMAIL_TAKEN,
    EMAIL_UNVERIFIED,
    FILE_TOO_LARGE,
    FILE_TYPE_NOT_ALLOWED,
    FORBIDDEN,
    IMPERSONATION_FORBIDDEN,
    IMPERSONATION_READ_ONLY,
    INSUFFICIENT_SCOPE,
    INTERNAL_ERROR,
    INVALID_API_KEY,
    INVALID_BODY,
    INVALID_CHALLENGE,
    INVALID_CODE,
    INVALID_CREDENTIALS,
    INVALID_INVITE,
    INVALID_MFA_TOKEN,
    INVALID_PASSKEY,
    INVALID_PATH,
    INVALID_QUERY,
    INVALID_REFRESH_TOKEN,
    INVALID_TOKEN,
    LAST_PIPELINE,
    MALFORMED_JSON,
    MEDIA_FAILED,
    MEDIA_PENDING,
    MEDIA_TOO_LARGE,
    MEDIA_TYPE_NOT_ALLOWED,
    META_REFUSED,
    METHOD_NOT_ALLOWED,
    NO_MEDIA,
    NOT_DELETED,
    NOT_FOUND,
    NOT_PENDING_APPROVAL,
    NOT_SUSPENDED,
    ORIGIN_NOT_ALLOWED,
    OUTSIDE_CUSTOMER_SERVICE_WINDOW,
    OWNER_CANNOT_BE_DELETED,
    OWNER_ROLE_FIXED,
    PASSKEY_EXISTS,
    PASSWORD_CHANGED,
    PASSWORD_EXPIRED,
    PHONE_NUMBER_ALREADY_CONNECTED,
    PIPELINE_HAS_DEALS,
    RATE_LIMITED,
    REFRESH_TOKEN_MISSING,
    REFRESH_TOKEN_REUSED,
    REQUEST_TIMEOUT,
    RESTORE_WINDOW_PASSED,
    SESSION_REVOKED,
    SIGNATURE_INVALID,
    STAGE_HAS_DEALS,
    TEMPLATE_EXISTS,
    TEMPLATE_LANGUAGE_UNAVAILABLE,
    TEMPLATE_NOT_APPROVED,
    TEMPLATE_NOT_FOUND,
    TEMPLATE_PARAMETER_MISMATCH,
    TENANT_REQUIRED,
    TENANT_SUSPENDED,
    TOKEN_EXPIRED,
    TOKEN_IN_URL,
    TOO_MANY_ATTEMPTS,
    TOO_MANY_WEBSOCKETS,
    TOTP_ALREADY_ENABLED,
    TOTP_NOT_ENABLED,
    TOTP_NOT_SET_UP,
    UNAUTHENTICATED,
    UNAVAILABLE,
    UNSUPPORTED_MEDIA_TYPE,
    UPGRADE_REQUIRED,
    UPLOAD_QUOTA_EXCEEDED,
    USER_DELETED,
    VALIDATION_FAILED,
    VERIFICATION_FAILED,
    WEBHOOK_LIMIT_REACHED,
    WEBHOOK_NOT_ACTIVE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_unique_snake_case() {
        assert!(
            ALL.windows(2).all(|w| w[0] < w[1]),
            "keep ALL sorted and unique"
        );
        for c in ALL {
            assert!(
                c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{c}"
            );
        }
    }
}
