//! Smoke tests of the foundation: registration, /me, tenant isolation, atomicity.

use palisade_testkit::{spawn_app, Db, TestDb};
use reqwest::StatusCode;
use serde_json::json;

both!(
    register_then_me,
    registration_is_atomic,
    rls_confines_queries_to_the_tenant
);

async fn register_then_me(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["email"], "ana@acme.example");
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["is_owner"], true);
    assert_eq!(me.body["tenant"]["name"], "Acme");
    assert_eq!(me.header("cache-control"), Some("no-store"));
    assert!(me.header("x-request-id").is_some());
}

/// A failure after the tenant insert (injected as a trigger that refuses the owner's insert)
/// leaves no tenant, user or session behind.
async fn registration_is_atomic(db: Db) {
    let app = spawn_app(db).await;
    let trigger = match app.db.kind() {
        Db::Sqlite => "CREATE TRIGGER fail_users BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        Db::Postgres => "CREATE FUNCTION fail_users() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
                         CREATE TRIGGER fail_users BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION fail_users();",
    };
    app.db.execute_as_owner(trigger).await.unwrap();
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"tenant_name": "Ghost", "name": "Gus", "email": "gus@ghost.example", "password": palisade_testkit::GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.code(), "internal_error");
    assert!(
        !r.body.to_string().contains("injected"),
        "internal causes never reach the client"
    );
    for table in [
        "tenants",
        "users",
        "sessions",
        "refresh_tokens",
        "audit_log",
    ] {
        let n = app
            .db
            .count_as_owner(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} kept a row from the failed registration");
    }
}

/// On PostgreSQL, a transaction with tenant A's context cannot read or write tenant B's rows,
/// even with no WHERE clause at all. (On SQLite the same isolation rests on the scoped queries,
/// which every other test exercises.)
async fn rls_confines_queries_to_the_tenant(db: Db) {
    let app = spawn_app(db).await;
    let a = app.register("Tenant A", "a@a.example").await;
    let b = app.register("Tenant B", "b@b.example").await;
    let TestDb::Postgres { app_url, .. } = &app.db else {
        return;
    };
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(app_url).await.unwrap();
    sqlx::query("SET ROLE palisade_app")
        .execute(&mut c)
        .await
        .unwrap();
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(&a.tenant_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM users")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        emails,
        vec!["a@a.example".to_owned()],
        "only tenant A's users are visible"
    );
    let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tenants, 1);
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
    let updated = sqlx::query("UPDATE users SET name = 'pwned'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(updated, 1, "the update reaches only tenant A's row");
    let deleted = sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1::uuid")
        .bind(&b.tenant_id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "tenant B's rows cannot be deleted");
    tx.commit().await.unwrap();
    let pwned = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM users WHERE name = 'pwned'")
        .await
        .unwrap();
    assert_eq!(
        pwned, 1,
        "the unqualified UPDATE changed tenant A's row only"
    );
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(&a.tenant_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let insert = sqlx::query(
        "INSERT INTO users (id, tenant_id, email, name, role, created_at, updated_at)
         VALUES (gen_random_uuid(), $1::uuid, 'x@b.example', 'X', 'agent', now(), now())",
    )
    .bind(&b.tenant_id)
    .execute(&mut *tx)
    .await;
    assert!(
        insert.is_err(),
        "writing a row into tenant B is refused by WITH CHECK"
    );
    drop(tx);
    // Without any tenant context nothing is visible.
    let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(none, 0);
    // The application role cannot rewrite history.
    let upd = sqlx::query("UPDATE audit_log SET action = 'x'")
        .execute(&mut c)
        .await;
    assert!(
        upd.is_err(),
        "audit_log is append-only for the application role"
    );
}
