//! Signing in with a passkey: passwordless (a discoverable credential names the account) or,
//! after a password, as the second factor of a two-step login.

use super::{invalid_challenge, invalid_passkey, state_error, CEREMONY_TTL};
use crate::audit::AuditEntryExt;
use crate::auth::sessions::{self, IssuedTokens, SignInMethod};
use crate::auth::RequestMeta;
use crate::error::code;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::WebauthnChallengeId;
use palisade_store::passkeys::{self as rows, Challenge, ChallengeKind, StoredPasskey};
use palisade_store::users::{self, User};
use palisade_store::{SystemScope, UserScope};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PublicKeyCredential, WebauthnError,
};

/// What `POST /api/v1/auth/passkeys/login/start` answers.
#[derive(Debug, Clone)]
pub struct SignInChallenge {
    /// Sent back with the answer to `login/finish`.
    pub challenge_id: WebauthnChallengeId,
    /// `{"publicKey": PublicKeyCredentialRequestOptions}` for `navigator.credentials.get`.
    pub options: serde_json::Value,
}

/// Starts a passkey sign-in. Without `mfa_token`: a passwordless one, for any discoverable
/// credential of this relying party. With it: the second factor of the account whose password
/// was just checked (the two-step challenge behind the token, spent when the passkey answers).
pub async fn start_sign_in(
    s: &Services,
    meta: &RequestMeta,
    mfa_token: Option<&str>,
) -> AppResult<SignInChallenge> {
    let webauthn = s.passkeys.webauthn()?;
    let (options, kind, user, state, mfa_challenge_id) = match mfa_token {
        None => {
            let (mut rcr, state) = webauthn
                .start_discoverable_authentication()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey sign-in start: {e}")))?;
            // webauthn-rs asks for conditional mediation (autofill UI). Dropped so that a plain
            // "Sign in with a passkey" button works; a page that wants autofill passes
            // `mediation: "conditional"` to `navigator.credentials.get` itself.
            rcr.mediation = None;
            let state = serde_json::to_string(&state).map_err(state_error)?;
            (rcr, ChallengeKind::Discoverable, None, state, None)
        }
        Some(token) => {
            let (mfa_challenge, user) =
                crate::auth::two_factor::challenge::open_for_passkey(s, token).await?;
            let keys = {
                let mut tx = s
                    .store
                    .begin_read(UserScope::for_tenant(user.tenant_id))
                    .await?;
                rows::list_for_user(&mut tx, user.id).await?
            };
            let passkeys = keys
                .iter()
                .map(|k| serde_json::from_str::<Passkey>(&k.passkey))
                .collect::<Result<Vec<_>, _>>()
                .map_err(state_error)?;
            if passkeys.is_empty() {
                return Err(AppError::Unprocessable {
                    code: code::INVALID_PASSKEY,
                    message: "this account has no passkey; use another second factor".into(),
                });
            }
            let (rcr, state) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey sign-in start: {e}")))?;
            let state = serde_json::to_string(&state).map_err(state_error)?;
            (
                rcr,
                ChallengeKind::Authentication,
                Some(user),
                state,
                Some(mfa_challenge),
            )
        }
    };
    let options = serde_json::to_value(&options).map_err(state_error)?;
    let mut uow = UnitOfWork::anonymous(s, meta, SystemScope::new("passkey.sign_in")).await?;
    let now = uow.now();
    let challenge = Challenge {
        id: WebauthnChallengeId::new(),
        tenant_id: user.as_ref().and_then(|u| u.tenant_id),
        user_id: user.as_ref().map(|u| u.id),
        kind,
        state,
        created_at: now,
        expires_at: now + CEREMONY_TTL,
        mfa_challenge_id,
    };
    rows::insert_challenge(uow.tx(), &challenge).await?;
    // Housekeeping: ceremonies that ended an hour ago or more are of no further use.
    rows::prune_expired(uow.tx(), now - time::Duration::hours(1)).await?;
    uow.commit().await?;
    Ok(SignInChallenge {
        challenge_id: challenge.id,
        options,
    })
}

/// Finishes a passkey sign-in with the browser's `AuthenticationResponseJSON`, answering like
/// a password login. Refusals: `400 invalid_challenge` (unknown, used or expired challenge),
/// `401 invalid_passkey` (unknown credential, another account's user handle, a deleted user,
/// a signature, origin or user verification that does not verify, a counter that went
/// backwards), `403 tenant_suspended`.
pub async fn finish_sign_in(
    s: &Services,
    meta: &RequestMeta,
    challenge_id: uuid::Uuid,
    credential: serde_json::Value,
) -> AppResult<IssuedTokens> {
    let webauthn = s.passkeys.webauthn()?;
    let credential = serde_json::from_value::<PublicKeyCredential>(credential).map_err(|_| {
        AppError::field(
            "credential",
            "is not a WebAuthn AuthenticationResponseJSON (id, rawId, type, response with \
             clientDataJSON, authenticatorData and signature)",
        )
    })?;
    // Spent before the answer is checked: whatever happens next, it cannot be used again.
    let challenge = {
        let mut uow = UnitOfWork::anonymous(s, meta, SystemScope::new("passkey.challenge")).await?;
        let now = uow.now();
        let c = rows::consume(
            uow.tx(),
            WebauthnChallengeId::from_uuid(challenge_id),
            &[ChallengeKind::Discoverable, ChallengeKind::Authentication],
            now,
        )
        .await?;
        uow.commit().await?;
        c.ok_or_else(invalid_challenge)?
    };
    let (stored, user) = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("passkey.lookup"))
            .await?;
        let stored = rows::find_by_credential_id(&mut tx, credential.get_credential_id()).await?;
        let user = match &stored {
            Some(k) => users::find(&mut tx, k.user_id).await?,
            None => None,
        };
        (stored, user)
    };
    let (Some(stored), Some(user)) = (stored, user) else {
        return Err(invalid_passkey("this passkey is not registered here"));
    };
    let expected_user = match challenge.kind {
        ChallengeKind::Discoverable => webauthn
            .identify_discoverable_authentication(&credential)
            .ok()
            .map(|(u, _)| palisade_domain::UserId::from_uuid(u)),
        _ => challenge.user_id,
    };
    if expected_user != Some(stored.user_id) || user.deleted_at.is_some() {
        return Err(invalid_passkey(
            "this passkey does not belong to an active account",
        ));
    }
    let mut passkey: Passkey = serde_json::from_str(&stored.passkey).map_err(state_error)?;
    let result = match challenge.kind {
        ChallengeKind::Discoverable => {
            let state: DiscoverableAuthentication =
                serde_json::from_str(&challenge.state).map_err(state_error)?;
            webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey)
        }
        _ => {
            let state: PasskeyAuthentication =
                serde_json::from_str(&challenge.state).map_err(state_error)?;
            webauthn.finish_passkey_authentication(&credential, &state)
        }
    };
    let result = match result {
        Ok(r) if r.user_verified() => r,
        Ok(_) => {
            return Err(refused(
                s,
                meta,
                &user,
                &stored,
                "no_user_verification",
                challenge.mfa_challenge_id,
            )
            .await)
        }
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Err(refused(
                s,
                meta,
                &user,
                &stored,
                "counter_regressed",
                challenge.mfa_challenge_id,
            )
            .await)
        }
        Err(e) => {
            tracing::info!(request_id = %meta.request_id, error = %e, "passkey sign-in refused");
            return Err(refused(
                s,
                meta,
                &user,
                &stored,
                "invalid_answer",
                challenge.mfa_challenge_id,
            )
            .await);
        }
    };
    passkey.update_credential(&result);
    let counter = i64::from(result.counter());
    {
        let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(user.tenant_id)).await?;
        let now = uow.now();
        let serialized = serde_json::to_string(&passkey).map_err(state_error)?;
        if !rows::record_use(uow.tx(), stored.id, &serialized, counter, now).await? {
            // Another sign-in with the same counter value was recorded first: one of the two
            // answers is a copy.
            drop(uow);
            return Err(refused(
                s,
                meta,
                &user,
                &stored,
                "counter_regressed",
                challenge.mfa_challenge_id,
            )
            .await);
        }
        uow.commit().await?;
    }
    // The second half of a two-step sign-in spends its password challenge (once: a racing
    // `login/2fa` or a second passkey answer finds it used), and lifts a lock like `login/2fa`.
    if let Some(mfa) = challenge.mfa_challenge_id {
        let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(user.tenant_id)).await?;
        if !crate::auth::two_factor::challenge::spend(&mut uow, mfa).await? {
            return Err(AppError::Unauthenticated {
                code: code::INVALID_MFA_TOKEN,
                message: "the sign-in has expired or was completed; sign in again with your \
                          password"
                    .into(),
            });
        }
        uow.commit().await?;
        crate::auth::lockout::clear(s, meta, &user.email).await?;
    }
    sessions::sign_in(s, meta, &user, SignInMethod::Passkey).await
}

/// Records a refused passkey answer for a known account (audit and login history) and returns
/// the error to answer.
/// A counter that went backwards is recorded as its own event: the credential may be cloned.
async fn refused(
    s: &Services,
    meta: &RequestMeta,
    user: &User,
    key: &StoredPasskey,
    reason: &'static str,
    mfa_challenge: Option<uuid::Uuid>,
) -> AppError {
    let write = async {
        let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(user.tenant_id)).await?;
        let action = if reason == "counter_regressed" {
            tracing::warn!(request_id = %meta.request_id, passkey = %key.id, "passkey signature counter went backwards: possibly a cloned authenticator");
            "auth.passkey.counter_regressed"
        } else {
            "auth.login.failed"
        };
        // Like a failed password sign-in: the account is the target, not the actor (whoever
        // presented the answer has not proved to be its owner).
        let mut e = uow.entry(action).target("user", user.id).metadata(
            serde_json::json!({ "method": "passkey", "reason": reason, "passkey_id": key.id }),
        );
        e.actor_email = Some(user.email.clone());
        uow.audit(e).await?;
        // As the second factor of a password sign-in, a refused answer is one of the
        // challenge's five tries, like a wrong code.
        let result = match mfa_challenge {
            Some(id) => {
                palisade_store::two_factor::record_challenge_failure(uow.tx(), id).await?;
                palisade_domain::LoginResult::MfaFailure
            }
            None => palisade_domain::LoginResult::Failure,
        };
        crate::metrics::login(result);
        crate::auth::login_history::record(
            &mut uow,
            user,
            result,
            palisade_domain::LoginMethod::Passkey,
        )
        .await?;
        uow.commit().await
    };
    if let Err(e) = write.await {
        return e;
    }
    invalid_passkey(match reason {
        "counter_regressed" => {
            "this passkey's signature counter went backwards; it may have been copied"
        }
        "no_user_verification" => "the passkey did not verify the user (PIN or biometrics)",
        _ => "the passkey's answer did not verify",
    })
}
