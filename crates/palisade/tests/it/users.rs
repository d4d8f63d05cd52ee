//! Team management: create, invite, edit, roles, delete, restore, ownership.

use crate::support::{assert_error, audit_count, create_user, field_messages, login_resp};
use palisade_testkit::{spawn_app, Db, Resp, Session, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(
    admins_list_and_create_users,
    invited_users_set_their_password_once,
    invitations_expire_after_seven_days,
    agents_cannot_manage_users,
    create_validates_fields,
    patch_changes_name_and_role,
    nobody_changes_their_own_role,
    only_the_owner_changes_another_admins_role,
    role_changes_apply_to_existing_sessions_at_once,
    delete_rules,
    deleting_a_user_ends_their_sessions_at_once,
    super_admin_deletes_and_restores_an_admin,
    restore_window_is_30_days,
    transfer_ownership,
    super_admin_sees_every_tenant,
    malformed_ids_are_400,
);

fn user_path(id: &str) -> String {
    format!("/api/v1/users/{id}")
}

async fn invite(app: &TestApp, admin: &Session, email: &str, role: &str) -> Resp {
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin.access_token),
            json!({"email": email, "name": "Invited Person", "role": role}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r
}

async fn admins_list_and_create_users(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "Bob@Acme.example", "name": " Bob ", "role": "agent", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "bob@acme.example");
    assert_eq!(r.body["name"], "Bob");
    assert_eq!(r.body["role"], "agent");
    assert_eq!(r.body["is_owner"], false);
    assert_eq!(r.body["has_password"], true);
    assert_eq!(r.body["tenant_id"], owner.tenant_id.as_str());
    assert!(
        r.body.get("invite_token").is_none(),
        "no invitation when a password is given"
    );
    let bob_id = r.body["id"].as_str().unwrap().to_owned();
    let list = app.get("/api/v1/users", &owner.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], owner.user_id.as_str(), "oldest first");
    assert_eq!(data[1]["id"], bob_id.as_str());
    let one = app.get(&user_path(&bob_id), &owner.access_token).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["email"], "bob@acme.example");
    let bob = app.login("bob@acme.example", GOOD_PASSWORD).await;
    let me = app.get("/api/v1/me", &bob.access_token).await;
    assert_eq!(me.body["role"], "agent");
    assert_eq!(me.body["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(audit_count(&app, "user.created").await, 1);
    // A weak password is refused like at registration.
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "cy@acme.example", "name": "Cy", "role": "agent", "password": "password"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "password").len() >= 3, "{}", r.body);
}

async fn invited_users_set_their_password_once(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = invite(&app, &owner, "dina@acme.example", "agent").await;
    let token = r.body["invite_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pal_inv_"), "{token}");
    assert!(r.body["invite_expires_at"].as_str().is_some());
    assert_eq!(r.body["has_password"], false);
    // No password yet: no way in.
    let r = login_resp(&app, "dina@acme.example", "").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    // A weak password is refused and the invitation stays usable.
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "password").is_empty());
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/me", access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "dina@acme.example");
    assert_eq!(me.body["role"], "agent");
    // Used once; never again.
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": "another-strong-passphrase-here"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_invite");
    assert_eq!(
        login_resp(&app, "dina@acme.example", GOOD_PASSWORD)
            .await
            .status,
        StatusCode::OK,
        "the second attempt did not change the password"
    );
    for bad in [
        "garbage",
        "pal_inv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = app
            .post(
                "/api/v1/auth/accept-invite",
                None,
                json!({"token": bad, "password": GOOD_PASSWORD}),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_invite");
    }
    let u = app
        .get(
            &user_path(me.body["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await;
    assert_eq!(u.body["has_password"], true);
    assert_eq!(audit_count(&app, "auth.invite.accepted").await, 1);
    // Deleting an invited user voids their invitation.
    let r = invite(&app, &owner, "eli@acme.example", "agent").await;
    let eli_token = r.body["invite_token"].as_str().unwrap().to_owned();
    let eli = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&user_path(&eli), &owner.access_token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": eli_token, "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_invite");
    let r = login_resp(&app, "eli@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn invitations_expire_after_seven_days(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let early = invite(&app, &owner, "early@acme.example", "agent").await;
    let late = invite(&app, &owner, "late@acme.example", "agent").await;
    app.clock.advance(time::Duration::days(6));
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": early.body["invite_token"], "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.clock.advance(time::Duration::days(2));
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": late.body["invite_token"], "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_invite");
}

async fn agents_cannot_manage_users(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bob@acme.example", "agent").await;
    let other = create_user(&app, &owner, "carl@acme.example", "agent").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&agent.access_token),
            json!({"email": "x@acme.example", "name": "X", "role": "admin", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .patch(
            &user_path(&other),
            &agent.access_token,
            json!({"name": "Renamed"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .patch(
            &user_path(&agent.user_id),
            &agent.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.delete(&user_path(&other), &agent.access_token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .get("/api/v1/users?include_deleted=true", &agent.access_token)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // Agents may see their team.
    let list = app.get("/api/v1/users", &agent.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM users")
            .await
            .unwrap(),
        3,
        "nothing was created"
    );
    let carl = app.get(&user_path(&other), &owner.access_token).await;
    assert_eq!(carl.body["name"], "Team Member");
}

async fn create_validates_fields(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    for role in ["super_admin", "owner", "Admin", ""] {
        let r = app
            .post(
                "/api/v1/users",
                Some(&owner.access_token),
                json!({"email": "x@acme.example", "name": "X", "role": role}),
            )
            .await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(!field_messages(&r, "role").is_empty(), "{role}: {}", r.body);
    }
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "nope", "name": "", "role": "boss"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for f in ["email", "name", "role"] {
        assert!(!field_messages(&r, f).is_empty(), "{f}: {}", r.body);
    }
    // Emails are unique across the platform, in any case.
    app.register("Other", "olga@other.example").await;
    for email in ["ana@acme.example", "OLGA@other.example"] {
        let r = app
            .post(
                "/api/v1/users",
                Some(&owner.access_token),
                json!({"email": email, "name": "Dup", "role": "agent"}),
            )
            .await;
        assert_error(&r, StatusCode::CONFLICT, "email_taken");
    }
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "z@acme.example", "name": "Z", "role": "agent", "is_owner": true}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM users")
            .await
            .unwrap(),
        2
    );
}

async fn patch_changes_name_and_role(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let bob = create_user(&app, &owner, "bob@acme.example", "agent").await;
    let r = app
        .patch(
            &user_path(&bob),
            &owner.access_token,
            json!({"name": "Robert"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Robert");
    assert_eq!(r.body["role"], "agent");
    let r = app
        .patch(
            &user_path(&bob),
            &owner.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "admin");
    let got = app.get(&user_path(&bob), &owner.access_token).await;
    assert_eq!(got.body["name"], "Robert");
    assert_eq!(got.body["role"], "admin");
    assert_eq!(audit_count(&app, "user.role_changed").await, 1);
    assert_eq!(audit_count(&app, "user.updated").await, 1);
    for bad in [
        json!({"role": "super_admin"}),
        json!({"name": "  "}),
        json!({"role": "owner"}),
    ] {
        let r = app.patch(&user_path(&bob), &owner.access_token, bad).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let r = app
        .patch(
            &user_path(&bob),
            &owner.access_token,
            json!({"email": "x@y.example"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // Anyone may change their own name.
    let r = app
        .patch(
            &user_path(&owner.user_id),
            &owner.access_token,
            json!({"name": "Ana Maria"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["name"], "Ana Maria");
}

async fn nobody_changes_their_own_role(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let admin = app.add_user(&owner, "adam@acme.example", "admin").await;
    for (who, role) in [(&owner, "agent"), (&admin, "agent")] {
        let r = app
            .patch(
                &user_path(&who.user_id),
                &who.access_token,
                json!({"role": role}),
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        let me = app.get("/api/v1/me", &who.access_token).await;
        assert_eq!(me.body["role"], "admin");
    }
    // The same role again is no change, and allowed.
    let r = app
        .patch(
            &user_path(&admin.user_id),
            &admin.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Nobody demotes the owner either.
    let r = app
        .patch(
            &user_path(&owner.user_id),
            &admin.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "owner_role_fixed");
}

async fn only_the_owner_changes_another_admins_role(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let admin = app.add_user(&owner, "adam@acme.example", "admin").await;
    let other_admin = create_user(&app, &owner, "alex@acme.example", "admin").await;
    let agent = create_user(&app, &owner, "bob@acme.example", "agent").await;
    let r = app
        .patch(
            &user_path(&other_admin),
            &admin.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let got = app.get(&user_path(&other_admin), &owner.access_token).await;
    assert_eq!(got.body["role"], "admin");
    // A non-owner admin may still rename another admin and promote an agent.
    let r = app
        .patch(
            &user_path(&other_admin),
            &admin.access_token,
            json!({"name": "Alexandra"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .patch(
            &user_path(&agent),
            &admin.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The owner may demote an admin.
    let r = app
        .patch(
            &user_path(&other_admin),
            &owner.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "agent");
    // A super admin may too.
    let sa = app.super_admin("root@platform.example").await;
    let r = app
        .patch(
            &user_path(&agent),
            &sa.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "agent");
}

async fn role_changes_apply_to_existing_sessions_at_once(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let bob = app.add_user(&owner, "bob@acme.example", "agent").await;
    let create =
        |n: u32| json!({"email": format!("n{n}@acme.example"), "name": "N", "role": "agent"});
    let r = app
        .post("/api/v1/users", Some(&bob.access_token), create(1))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    app.patch(
        &user_path(&bob.user_id),
        &owner.access_token,
        json!({"role": "admin"}),
    )
    .await;
    let me = app.get("/api/v1/me", &bob.access_token).await;
    assert_eq!(me.body["role"], "admin");
    let r = app
        .post("/api/v1/users", Some(&bob.access_token), create(2))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.patch(
        &user_path(&bob.user_id),
        &owner.access_token,
        json!({"role": "agent"}),
    )
    .await;
    let r = app
        .post("/api/v1/users", Some(&bob.access_token), create(3))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
}

async fn delete_rules(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let admin = app.add_user(&owner, "adam@acme.example", "admin").await;
    let other_admin = create_user(&app, &owner, "alex@acme.example", "admin").await;
    let agent = create_user(&app, &owner, "bob@acme.example", "agent").await;
    let r = app
        .delete(&user_path(&admin.user_id), &admin.access_token)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "cannot_delete_self");
    let r = app
        .delete(&user_path(&owner.user_id), &owner.access_token)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "cannot_delete_self");
    let r = app
        .delete(&user_path(&owner.user_id), &admin.access_token)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "owner_cannot_be_deleted");
    let r = app
        .delete(&user_path(&other_admin), &admin.access_token)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .delete(&user_path(&other_admin), &owner.access_token)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.delete(&user_path(&agent), &admin.access_token).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Gone from the team.
    let r = app.get(&user_path(&agent), &owner.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.delete(&user_path(&agent), &owner.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .patch(
            &user_path(&agent),
            &owner.access_token,
            json!({"name": "Zombie"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let list = app.get("/api/v1/users", &owner.access_token).await;
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&agent.as_str()));
    assert_eq!(ids.len(), 3);
    // Admins may list deleted users on request.
    let list = app
        .get("/api/v1/users?include_deleted=true", &owner.access_token)
        .await;
    let deleted: Vec<_> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["id"] == agent.as_str())
        .collect();
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["deleted_at"].as_str().is_some());
    // Stored as a soft delete, with an audit record.
    let n = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM users WHERE deleted_at IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(audit_count(&app, "user.deleted").await, 1);
    // The admins are all still there.
    for id in [&owner.user_id, &admin.user_id, &other_admin] {
        assert_eq!(
            app.get(&user_path(id), &owner.access_token).await.status,
            StatusCode::OK
        );
    }
}

async fn deleting_a_user_ends_their_sessions_at_once(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let bob = app.add_user(&owner, "bob@acme.example", "agent").await;
    let bob2 = app.login("bob@acme.example", GOOD_PASSWORD).await;
    let r = app
        .delete(&user_path(&bob.user_id), &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for s in [&bob, &bob2] {
        let r = app.get("/api/v1/me", &s.access_token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let r = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": s.refresh_token}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let active = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
        .await
        .unwrap();
    assert_eq!(active, 1, "only the owner's session is left");
}

async fn super_admin_deletes_and_restores_an_admin(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let admin = app.add_user(&owner, "adam@acme.example", "admin").await;
    let sa = app.super_admin("root@platform.example").await;
    let r = app
        .delete(&user_path(&admin.user_id), &sa.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        app.get("/api/v1/me", &admin.access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Super admins still see the deleted user, with its deletion time.
    let got = app.get(&user_path(&admin.user_id), &sa.access_token).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body["deleted_at"].as_str().is_some());
    // A tenant admin cannot restore.
    let r = app
        .post(
            &format!("/api/v1/users/{}/restore", admin.user_id),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    app.clock.advance(time::Duration::days(29));
    // Access tokens live 15 minutes: sign in again.
    let sa = app.login("root@platform.example", GOOD_PASSWORD).await;
    let owner = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = app
        .post(
            &format!("/api/v1/users/{}/restore", admin.user_id),
            Some(&sa.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], admin.user_id.as_str());
    assert!(r.body.get("deleted_at").is_none());
    assert_eq!(r.body["role"], "admin");
    let r = login_resp(&app, "adam@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = app
        .get(&user_path(&admin.user_id), &owner.access_token)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    // Restoring a live user is a conflict.
    let r = app
        .post(
            &format!("/api/v1/users/{}/restore", admin.user_id),
            Some(&sa.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "not_deleted");
    assert_eq!(audit_count(&app, "user.restored").await, 1);
    // The super admin cannot delete the owner either.
    let r = app
        .delete(&user_path(&owner.user_id), &sa.access_token)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "owner_cannot_be_deleted");
}

async fn restore_window_is_30_days(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = create_user(&app, &owner, "bob@acme.example", "agent").await;
    assert_eq!(
        app.delete(&user_path(&agent), &owner.access_token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.clock.advance(time::Duration::days(31));
    let sa = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/users/{agent}/restore"),
            Some(&sa.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "restore_window_passed");
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn transfer_ownership(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let admin = app.add_user(&owner, "adam@acme.example", "admin").await;
    let agent = app.add_user(&owner, "bob@acme.example", "agent").await;
    let sa = app.super_admin("root@platform.example").await;
    let path = format!("/api/v1/users/{}/transfer-ownership", agent.user_id);
    // Only the owner.
    let r = app
        .post(
            &path,
            Some(&admin.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // With the owner's password.
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"password": "wrong-password-here"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "password").is_empty());
    let r = app
        .post(
            &format!("/api/v1/users/{}/transfer-ownership", owner.user_id),
            Some(&owner.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "already_owner");
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["is_owner"], true, "nothing changed yet");
    // Before the transfer the owner cannot be deleted, even by a super admin.
    let r = app
        .delete(&user_path(&owner.user_id), &sa.access_token)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "owner_cannot_be_deleted");
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], agent.user_id.as_str());
    assert_eq!(r.body["is_owner"], true);
    assert_eq!(r.body["role"], "admin", "the new owner is an admin");
    let me = app.get("/api/v1/me", &agent.access_token).await;
    assert_eq!(me.body["is_owner"], true);
    assert_eq!(me.body["role"], "admin");
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["is_owner"], false);
    assert_eq!(me.body["role"], "admin");
    let owners = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM users WHERE is_owner = true")
        .await
        .unwrap();
    assert_eq!(owners, 1, "exactly one owner");
    // The old owner can no longer transfer, and can now be deleted by a super admin.
    let r = app
        .post(
            &format!("/api/v1/users/{}/transfer-ownership", admin.user_id),
            Some(&owner.access_token),
            json!({"password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .delete(&user_path(&owner.user_id), &sa.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(audit_count(&app, "tenant.ownership_transferred").await, 1);
}

async fn super_admin_sees_every_tenant(db: Db) {
    let app = spawn_app(db).await;
    let a = app.register("Acme", "ana@acme.example").await;
    app.add_user(&a, "bob@acme.example", "agent").await;
    let b = app.register("Other", "olga@other.example").await;
    let sa = app.super_admin("root@platform.example").await;
    let all = app.get("/api/v1/users", &sa.access_token).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let data = all.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "tenant users only, not the super admin");
    let only_b = app
        .get(
            &format!("/api/v1/users?tenant_id={}", b.tenant_id),
            &sa.access_token,
        )
        .await;
    let data = only_b.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["email"], "olga@other.example");
    // A tenant admin's filter cannot widen their view.
    let r = app
        .get(
            &format!("/api/v1/users?tenant_id={}", b.tenant_id),
            &a.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["tenant_id"] == a.tenant_id.as_str()));
    let me = app.get("/api/v1/me", &sa.access_token).await;
    assert_eq!(me.body["role"], "super_admin");
    assert!(me.body["tenant_id"].is_null());
    // The super admin cannot be reached through the tenant API.
    let r = app.get(&user_path(&sa.user_id), &a.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

async fn malformed_ids_are_400(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    for path in [
        "/api/v1/users/not-a-uuid",
        "/api/v1/users/123",
        "/api/v1/users/00000000-0000-0000-0000-00000000000g",
    ] {
        let r = app.get(path, &owner.access_token).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
        let r = app.delete(path, &owner.access_token).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
        let r = app
            .patch(path, &owner.access_token, json!({"name": "X"}))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
    }
    let r = app
        .post(
            "/api/v1/users/xyz/unlock",
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
    let r = app
        .get("/api/v1/users?include_deleted=maybe", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = app
        .get("/api/v1/users?tenant_id=nope", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = app
        .get("/api/v1/users?unknown=1", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    // A well-formed id that does not exist.
    let r = app
        .get(
            &user_path(&uuid::Uuid::new_v4().to_string()),
            &owner.access_token,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}
