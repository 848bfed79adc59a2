//! Upgrading a database made before federation: users may now have no email
//! (SQLite rebuilds the `users` table), and nothing that pointed at a user is
//! lost or loses its cascade.

use crate::backend_tests;
use crate::support::{Backend, TestDb};

backend_tests!(users_survive_the_federation_migration);

async fn users_survive_the_federation_migration(db: TestDb) {
    sqlx::any::install_default_drivers();
    let folder = match db.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    // The migrations as they stood before federation.
    let before = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(folder);
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        if name.as_str() < "0004" {
            std::fs::copy(f.path(), before.path().join(&name)).unwrap();
        }
    }
    let url = if db.backend == Backend::Sqlite { format!("{}?mode=rwc", db.url) } else { db.url.clone() };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(before.path()).await.unwrap().run(&pool).await.unwrap();
    for sql in [
        "INSERT INTO users (user_id, email, email_normalized, email_verified, name, password_hash, disabled,
            created_at, updated_at) VALUES ('u1', 'Old@Example.com', 'old@example.com', TRUE, 'Old', 'x', FALSE, 1, 1)",
        "INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, acr, created_at, last_seen_at, idle_expires_at,
            expires_at) VALUES ('h1', 's1', 'u1', 1, '[\"pwd\"]', NULL, 1, 1, 9999999999, 9999999999)",
        "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ('u1', 'c', 'openid', 1)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    // The server's own migration run takes it from there.
    let opts = sesame::storage::ConnectOptions::default();
    let store = sesame::storage::Db::connect(&db.url, &opts).await.unwrap();
    store.migrate().await.unwrap();
    let u = sesame::storage::users::find_by_email(&store, "old@example.com").await.unwrap().unwrap();
    assert_eq!(u.email.as_deref(), Some("Old@Example.com"));
    assert_eq!(u.picture, None);
    assert_eq!(sesame::storage::sessions::list_for_user(&store, "u1").await.unwrap().len(), 1);
    // A user with no email, twice (no uniqueness on a missing address).
    for id in ["n1", "n2"] {
        let mut v = u.clone();
        v.user_id = id.into();
        v.email = None;
        sesame::storage::users::insert(&store, &v).await.unwrap();
    }
    // Deleting the user still cascades to what pointed at it.
    sesame::storage::users::delete(&store, "u1").await.unwrap();
    assert!(sesame::storage::sessions::list_for_user(&store, "u1").await.unwrap().is_empty());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consents").fetch_one(store.pool()).await.unwrap();
    assert_eq!(left, 0);
    store.close().await;
}
