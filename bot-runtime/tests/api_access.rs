//! Admin API tokens and the audit log's reader (`bot_runtime::api_access`), on SQLite and on
//! PostgreSQL.

use bot_runtime::store::StoreError;
use serde_json::json;

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

async fn tokens_and_audit(db: TestDb) {
    let store = open(&db).await;
    for t in ["bank-a", "bank-b"] {
        store.ensure_tenant(t, t).await.expect("tenant");
    }
    let (record, token) = store
        .create_api_token("bank-a", "ops", "admin")
        .await
        .expect("create");
    assert!(token.starts_with("cb_") && token.len() == 67, "{token}");
    let found = store
        .api_token(&token)
        .await
        .expect("lookup")
        .expect("live");
    assert_eq!(found, record);
    assert!(
        store
            .api_token("cb_unknown")
            .await
            .expect("lookup")
            .is_none()
    );
    let refused = store.create_api_token("bank-a", "x", "root").await;
    assert!(
        matches!(refused, Err(StoreError::Refused { .. })),
        "{refused:?}"
    );
    let blank = store.create_api_token("bank-a", " ", "auditor").await;
    assert!(
        matches!(blank, Err(StoreError::Refused { .. })),
        "{blank:?}"
    );
    store
        .create_api_token("bank-b", "theirs", "auditor")
        .await
        .expect("create");
    let listed = store.api_tokens("bank-a").await.expect("list");
    assert_eq!(listed.len(), 1, "per tenant: {listed:?}");
    assert!(
        !store
            .revoke_api_token("bank-b", &record.id)
            .await
            .expect("revoke"),
        "not theirs"
    );
    assert!(
        store
            .revoke_api_token("bank-a", &record.id)
            .await
            .expect("revoke")
    );
    assert!(
        store.api_token(&token).await.expect("lookup").is_none(),
        "revoked"
    );
    assert!(
        store.api_tokens("bank-a").await.expect("list")[0]
            .revoked_at
            .is_some()
    );

    for i in 0..3 {
        store
            .audit(
                "bank-a",
                "api:ops",
                "read_call",
                &format!("call-{i}"),
                json!({ "i": i }),
            )
            .await
            .expect("audit");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store
        .audit("bank-b", "api:theirs", "read_call", "call-x", json!({}))
        .await
        .expect("audit");
    let events = store
        .audit_events("bank-a", None, 10)
        .await
        .expect("events");
    let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["call-2", "call-1", "call-0"],
        "newest first, one tenant"
    );
    assert_eq!(events[0].detail, json!({ "i": 2 }));
    let page = store
        .audit_events("bank-a", Some(events[0].at), 1)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].subject, "call-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    tokens_and_audit(fresh_sqlite().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    tokens_and_audit(fresh_postgres().await).await
}
