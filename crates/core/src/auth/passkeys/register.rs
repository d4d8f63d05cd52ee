//! Adding a passkey to the signed-in user, and removing one.

use super::{
    invalid_challenge, own_account, parse_name, passkey_id, state_error, PasskeyView, CEREMONY_TTL,
};
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::code;
use crate::mail::{self, Mail};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{PasskeyId, WebauthnChallengeId};
use palisade_store::passkeys::{self as rows, Challenge, ChallengeKind, StoredPasskey};
use palisade_store::users;
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential};

/// Starts adding a passkey: the `PublicKeyCredentialCreationOptions` for the browser
/// (`{"publicKey": …}`), excluding the user's passkeys, requiring user verification and
/// preferring a discoverable (resident) credential so it can sign in without an email. The
/// state is kept server-side as the user's one pending registration (a new start replaces it).
pub async fn start_registration(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
) -> AppResult<serde_json::Value> {
    own_account(p)?;
    let webauthn = s.passkeys.webauthn()?;
    if let Err(wait) = s
        .limits
        .passkey_registrations
        .check(&p.user_id.as_uuid())
        .await
    {
        return Err(AppError::rate_limited(
            "too many passkey registrations started; try again later",
            wait,
        ));
    }
    let existing = {
        let mut tx = s.store.begin_read(p.own_scope()).await?;
        rows::list_for_user(&mut tx, p.user_id).await?
    };
    let exclude = existing
        .iter()
        .map(|k| k.credential_id.clone())
        .collect::<Vec<_>>();
    let (options, state) = webauthn
        .start_passkey_registration(p.user_id.as_uuid(), &p.email, &p.name, Some(exclude))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey registration start: {e}")))?;
    let mut options = serde_json::to_value(&options).map_err(state_error)?;
    prefer_resident_key(&mut options);
    let state = serde_json::to_string(&state).map_err(state_error)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    rows::delete_registrations(uow.tx(), p.user_id).await?;
    rows::insert_challenge(
        uow.tx(),
        &Challenge {
            id: WebauthnChallengeId::new(),
            tenant_id: p.tenant_id(),
            user_id: Some(p.user_id),
            kind: ChallengeKind::Registration,
            state,
            created_at: now,
            expires_at: now + CEREMONY_TTL,
            mfa_challenge_id: None,
        },
    )
    .await?;
    uow.commit().await?;
    Ok(options)
}

/// webauthn-rs asks for a non-resident credential (`residentKey: "discouraged"`); the product
/// wants passkeys that can sign in without an email, so it prefers one. The registration's
/// checks do not depend on it (whether a key is resident cannot be verified anyway).
fn prefer_resident_key(options: &mut serde_json::Value) {
    if let Some(pk) = options
        .get_mut("publicKey")
        .and_then(serde_json::Value::as_object_mut)
    {
        let sel = pk
            .entry("authenticatorSelection")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(sel) = sel.as_object_mut() {
            sel.insert("residentKey".into(), "preferred".into());
            sel.insert("requireResidentKey".into(), false.into());
            sel.insert("userVerification".into(), "required".into());
        }
    }
}

/// Finishes adding a passkey with the browser's `RegistrationResponseJSON`. Refuses without a
/// pending registration (`400 invalid_challenge`), an answer that does not verify (`422
/// invalid_passkey`), and a credential registered to any account already (`409
/// passkey_exists`). Mails the user that a passkey was added.
pub async fn finish_registration(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    name: &str,
    credential: serde_json::Value,
) -> AppResult<PasskeyView> {
    own_account(p)?;
    let webauthn = s.passkeys.webauthn()?;
    let name = parse_name(name);
    let credential = serde_json::from_value::<RegisterPublicKeyCredential>(credential);
    let (name, credential) = match (name, credential) {
        (Ok(n), Ok(c)) => (n, c),
        (n, c) => {
            let mut errors = Vec::new();
            if let Err(e) = n {
                errors.push(e);
            }
            if c.is_err() {
                errors.push(palisade_domain::FieldError::new(
                    "credential",
                    "is not a WebAuthn RegistrationResponseJSON (id, rawId, type, response with \
                     clientDataJSON and attestationObject)",
                ));
            }
            return Err(AppError::validation(errors));
        }
    };
    // Spent before the answer is checked: a failed answer needs a new start.
    let challenge = {
        let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
        let now = uow.now();
        let c = rows::consume_registration(uow.tx(), p.user_id, now).await?;
        uow.commit().await?;
        c.ok_or_else(invalid_challenge)?
    };
    let state: PasskeyRegistration = serde_json::from_str(&challenge.state).map_err(state_error)?;
    let passkey = webauthn
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| {
            tracing::info!(request_id = %meta.request_id, error = %e, "passkey registration refused");
            AppError::Unprocessable {
                code: code::INVALID_PASSKEY,
                message: format!("the passkey's answer did not verify: {e}"),
            }
        })?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    let stored = StoredPasskey {
        id: PasskeyId::new(),
        tenant_id: p.tenant_id(),
        user_id: p.user_id,
        name,
        credential_id: passkey.cred_id().to_vec(),
        passkey: serde_json::to_string(&passkey).map_err(state_error)?,
        sign_count: 0,
        created_at: now,
        last_used_at: None,
    };
    match rows::insert(uow.tx(), &stored).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation_on("passkeys", "credential_id") => {
            return Err(AppError::conflict(
                code::PASSKEY_EXISTS,
                "this passkey is already registered to an account",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    uow.audit(
        uow.entry("auth.passkey.added")
            .target("passkey", stored.id)
            .metadata(serde_json::json!({ "user_id": p.user_id })),
    )
    .await?;
    let mail = Mail::compose(
        "passkey_added",
        &p.email,
        "A passkey was added to your account",
    )
    .user(p.user_id)
    .paragraph(format!(
        "A passkey named \"{}\" was added to your Palisade account. You can now sign in \
             with it instead of your password.",
        stored.name
    ))
    .paragraph(
        "If you did not add it, sign in, remove it from your passkeys, change your \
             password and sign out your other sessions.",
    );
    mail::queue(&mut uow, mail).await?;
    crate::auth::two_factor::factors_changed(&mut uow, p.user_id).await?;
    uow.commit().await?;
    Ok(PasskeyView::from(&stored))
}

/// Removes one of the caller's passkeys after checking their password (`422` on
/// `password` when wrong, like changing a password). Another user's passkey is "not found".
pub async fn remove(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: uuid::Uuid,
    password: &str,
) -> AppResult<()> {
    own_account(p)?;
    let id = passkey_id(id);
    {
        let mut tx = s.store.begin_read(p.own_scope()).await?;
        let mine = rows::list_for_user(&mut tx, p.user_id).await?;
        if !mine.iter().any(|k| k.id == id) {
            return Err(AppError::NotFound("passkey"));
        }
    }
    crate::auth::two_factor::check_password(s, p, password).await?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    // The user's row lock orders this removal with other changes of their factors.
    users::find_for_update(uow.tx(), p.user_id).await?;
    if !rows::delete_for_user(uow.tx(), id, p.user_id).await? {
        // Removed by another request meanwhile.
        return Err(AppError::NotFound("passkey"));
    }
    // Decided after the delete, in its transaction: two removals racing each other cannot
    // both leave the account without the second factor its tenant requires.
    let left = crate::auth::two_factor::factors(uow.tx(), p.user_id).await?;
    if !left.any() && crate::auth::two_factor::required(s, p) {
        return Err(AppError::conflict(
            code::TWO_FACTOR_REQUIRED,
            "your organisation requires a second factor; add another one before removing \
             this passkey",
        ));
    }
    crate::auth::two_factor::factors_changed(&mut uow, p.user_id).await?;
    uow.audit(
        uow.entry("auth.passkey.removed")
            .target("passkey", id)
            .metadata(serde_json::json!({ "user_id": p.user_id })),
    )
    .await?;
    uow.commit().await
}
