//! The audit log: searches stay on an index among a million events (the query
//! plan, on both backends), a full queue drops and counts instead of waiting,
//! retention deletes in batches, the management API pages through it, and
//! protocol events (silent authentication, replays, logout, machine tokens)
//! are recorded.

use reqwest::StatusCode;
use serde_json::Value;
use sesame::storage::audit::{Filter, SqlValue, search_sql};

use crate::authorize::{CB, VERIFIER, auth, setup};
use crate::backend_tests;
use crate::management::token_for;
use crate::selfservice::{audit, has};
use crate::support::browser::{Browser, location, params};
use crate::support::{Backend, TestApp, TestDb};

backend_tests!(
    searches_stay_on_an_index_among_a_million_events,
    full_queue_drops_and_counts,
    retention_deletes_old_events,
    management_api_pages_and_admin_changes_are_recorded,
    protocol_events_are_recorded,
);

const MILLION: i64 = 1_000_000;

async fn fill(app: &TestApp, backend: Backend) {
    let cols = "at, type, outcome, user_id, email, client_id, ip";
    let values = |i: &str| {
        format!(
            "1700000000000 + {i}, CASE {i} % 4 WHEN 0 THEN 'login_failure' WHEN 1 THEN 'login_success' \
             WHEN 2 THEN 'token_issued' ELSE 'token_refreshed' END, CASE {i} % 4 WHEN 0 THEN 'failure' ELSE 'success' END, \
             'user-' || ({i} % 20000), 'u' || ({i} % 20000) || '@example.com', 'client-' || ({i} % 200), \
             '10.' || ({i} % 200) || '.' || ({i} % 250) || '.1'"
        )
    };
    let sql = match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MILLION})
             INSERT INTO audit_events ({cols}) SELECT {} FROM n",
            values("i")
        ),
        Backend::Postgres => format!(
            "INSERT INTO audit_events ({cols}) SELECT {} FROM generate_series(1, {MILLION}) AS g(i)",
            values("i")
        ),
    };
    let db = app.state.audit.db();
    let mut tx = db.pool().begin().await.unwrap();
    if backend == Backend::Postgres {
        // The server's connections stop statements after 5 s; this one is long.
        sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await.unwrap();
    }
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE audit_events").execute(db.pool()).await.unwrap();
}

async fn plan(app: &TestApp, backend: Backend, f: &Filter) -> String {
    let (sql, args) = search_sql(f, 50);
    let explain = match backend {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Backend::Postgres => format!("EXPLAIN {sql}"),
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(explain));
    for a in args {
        q = match a {
            SqlValue::Text(s) => q.bind(s),
            SqlValue::Int(i) => q.bind(i),
        };
    }
    let rows = q.fetch_all(app.state.audit.db().pool()).await.unwrap();
    let col = if backend == Backend::Sqlite { "detail" } else { "QUERY PLAN" };
    rows.iter().map(|r| sqlx::Row::get::<String, _>(r, col)).collect::<Vec<_>>().join("\n")
}

async fn searches_stay_on_an_index_among_a_million_events(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    fill(&app, db.backend).await;
    let t = |s: &str| Some(s.to_string());
    let since = Some(1_700_000_000_000 + MILLION - 5_000);
    // A common type may be read newest-first from the time index instead,
    // stopping at the limit: an index either way.
    let type_or_time = "audit_events_type|audit_events_at";
    let cases = [
        ("audit_events_user", Filter { user_id: t("user-42"), ..Default::default() }),
        ("audit_events_email", Filter { email: t("u42@example.com"), ..Default::default() }),
        ("audit_events_client", Filter { client_id: t("client-7"), ..Default::default() }),
        (type_or_time, Filter { kind: t("login_failure"), outcome: t("failure"), ..Default::default() }),
        // No IP index (it would cost every insert): newest first through time.
        ("audit_events_at", Filter { ip: t("10.1.1.1"), ..Default::default() }),
        ("audit_events_at", Filter { since_ms: since, ..Default::default() }),
        (
            "audit_events_user",
            Filter { user_id: t("user-42"), before: Some((1_700_000_500_000, 500_000)), ..Default::default() },
        ),
    ];
    for (index, f) in cases {
        let p = plan(&app, db.backend, &f).await;
        assert!(index.split('|').any(|i| p.contains(i)), "{f:?} does not use {index}:\n{p}");
        assert!(
            !p.contains("Seq Scan") && !p.contains("SCAN audit_events\n") && !p.ends_with("SCAN audit_events"),
            "{p}"
        );
        // SQLite reads the rows in order from the index (no sort at all);
        // Postgres may sort the few rows an index scan found.
        if db.backend == Backend::Sqlite {
            assert!(!p.contains("TEMP B-TREE"), "{f:?} sorts:\n{p}");
        } else {
            assert!(p.contains("Index"), "{p}");
        }
    }
    // A user id or the address typed: both indexes, nothing scanned.
    let f = Filter { user_id: t("user-42"), email: t("u42@example.com"), ..Default::default() };
    let p = plan(&app, db.backend, &f).await;
    assert!(p.contains("audit_events_user") && p.contains("audit_events_email") && !p.contains("Seq Scan"), "{p}");
    // And the real search answers, newest first, paged.
    let (first, next) = audit_search(&app, "user-42", 3, None).await;
    assert_eq!(first.len(), 3);
    let (second, _) = audit_search(&app, "user-42", 3, next).await;
    assert!(first.last().unwrap().id > second[0].id);
    app.stop().await;
}

async fn audit_search(
    app: &TestApp,
    user: &str,
    limit: i64,
    cursor: Option<String>,
) -> (Vec<sesame::audit::search::EventOut>, Option<String>) {
    let s = sesame::audit::search::Search { user: Some(user.into()), limit, cursor, ..Default::default() };
    sesame::audit::search::run(&app.state.db, &app.state.audit, &s, app.state.clock.now()).await.unwrap()
}

async fn full_queue_drops_and_counts(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.audit.queue_size = 1).await;
    for i in 0..5_000 {
        let e = sesame::audit::Event::new(sesame::audit::Kind::AdminChange).details(serde_json::json!({ "i": i }));
        app.state.audit.record(e);
    }
    assert!(app.state.audit.dropped() > 0, "a full queue drops instead of waiting");
    // Nothing blocked or broke: the server answers, and what was kept is written.
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), StatusCode::OK);
    app.state.audit.flush().await;
    let kept = audit(&db, &["--type", "admin_change"], |e| !e.is_empty()).await;
    assert!(kept.len() < 5_000);
    app.stop().await;
}

async fn retention_deletes_old_events(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let now_ms = app.state.clock.now_ms();
    let old = now_ms - 100 * 86_400_000;
    let pool = app.state.audit.db().pool();
    for (at, n) in [(old, 1_200), (now_ms, 10)] {
        let sql = match db.backend {
            Backend::Sqlite => format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
                 INSERT INTO audit_events (at, type, outcome) SELECT {at} + i, 'logout', 'success' FROM n"
            ),
            Backend::Postgres => format!(
                "INSERT INTO audit_events (at, type, outcome) SELECT {at} + i, 'logout', 'success' FROM generate_series(1, {n}) AS g(i)"
            ),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await.unwrap();
    }
    // (The janitor's first round may be running too: count what is left.)
    app.state.audit.purge(90).await.unwrap();
    let count = |sql: &'static str| async move {
        let row = sqlx::query(sql).fetch_one(pool).await.unwrap();
        sqlx::Row::get::<i64, _>(&row, "n")
    };
    assert_eq!(count("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'logout'").await, 10);
    let left_old = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE at < $1")
        .bind(now_ms - 90 * 86_400_000)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&left_old, "n"), 0);
    app.stop().await;
}

async fn management_api_pages_and_admin_changes_are_recorded(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.database.client_cache_secs = 0).await;
    let token = token_for(&app, &db, "admin", &["read:audit", "read:users", "write:users"]).await;
    let weak = token_for(&app, &db, "reader", &["read:users"]).await;
    let http = reqwest::Client::new();
    let id = crate::support::add_user(&app, "erin@example.com", "correct horse battery").await;
    let patched = http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "Erin", "password": "another good passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    // A command-line change: its words and its argument, never its flags.
    let out = db.sesame(&["group", "add", "staff"]);
    assert!(out.status.success());
    let get = |q: String| {
        let (http, token, url) = (http.clone(), token.clone(), app.url(&format!("/api/v1/audit{q}")));
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let mut changes = Vec::new();
    for _ in 0..40 {
        let r = get("?type=admin_change".into()).await;
        assert_eq!(r.status(), StatusCode::OK);
        changes = r.json::<Value>().await.unwrap()["events"].as_array().cloned().unwrap();
        let api = changes.iter().any(|e| e["actor"] == "client:admin");
        let cli = changes.iter().any(|e| e["details"]["command"] == "group add");
        if api && cli {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        changes
            .iter()
            .any(|e| e["actor"] == "client:admin" && e["details"]["operation"] == format!("PATCH /api/v1/users/{id}")),
        "{changes:#?}"
    );
    assert!(
        changes.iter().any(|e| e["actor"] == "cli"
            && e["details"]["command"] == "group add"
            && e["details"]["target"] == "staff"),
        "{changes:#?}"
    );
    let pw = get(format!("?user={id}&type=password_changed")).await.json::<Value>().await.unwrap();
    assert_eq!(pw["events"][0]["actor"], "client:admin");
    assert!(!serde_json::to_string(&pw).unwrap().contains("another good passphrase"));
    // Cursor pagination: one at a time, older each page, no repeats.
    // (The keyset is (time, id).)
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let q = if cursor.is_empty() { "?limit=1".to_string() } else { format!("?limit=1&cursor={cursor}") };
        let page = get(q).await.json::<Value>().await.unwrap();
        let e = &page["events"][0];
        seen.push((e["time"].as_str().unwrap().to_string(), e["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) if seen.len() < 5 => cursor = c.to_string(),
            _ => break,
        }
    }
    // Newest first by (time, id): the CLI's events carry its own clock.
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    // Filters are checked; the permission is needed.
    let bad = get("?type=nonsense".into()).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
    assert_eq!(get("?since=yesterday".into()).await.status(), StatusCode::BAD_REQUEST);
    let denied = http.get(app.url("/api/v1/audit")).bearer_auth(&weak).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn protocol_events_are_recorded(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    // prompt=none without a session, then with one.
    let none = b.get(&auth("spa", "&prompt=none")).await;
    assert!(location(&none).contains("error=login_required"));
    let url = b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let silent = b.get(&auth("spa", "&prompt=none")).await;
    assert!(location(&silent).contains("code="));
    // A code redeemed twice.
    let code = params(&url)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    let first = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    // Logout, confirmed on Sesame's page.
    let page = b.get("/logout?client_id=spa").await;
    let html = page.text().await.unwrap();
    let csrf = crate::support::browser::hidden(&html, "csrf");
    let done = b.post_form("/logout", &[("csrf", &csrf), ("confirm", "yes"), ("client_id", "spa")]).await;
    assert!(done.status().is_success() || done.status().is_redirection());
    // Written in order: once the last action's event is there, so are the others.
    let events = audit(&db, &["--client", "spa"], |e| has(e, "logout", "success", None)).await;
    assert!(has(&events, "code_replay", "failure", None), "{events:#?}");
    assert!(has(&events, "silent_auth_failure", "failure", Some("login_required")), "{events:#?}");
    assert!(has(&events, "silent_auth_success", "success", None));
    assert!(has(&events, "token_issued", "success", None));
    assert!(has(&events, "login_success", "success", None));
    assert!(has(&events, "logout", "success", None), "{events:#?}");
    let e = events.iter().find(|e| e["type"] == "login_success").unwrap();
    assert_eq!(e["method"], "pwd");
    assert_eq!(e["ip"], "127.0.0.1");
    assert!(e["session"].as_str().is_some_and(|s| s.len() == 32) && e["request_id"].as_str().is_some());
    assert!(e["user_agent"].is_string() || e["user_agent"].is_null());
    app.stop().await;
}
