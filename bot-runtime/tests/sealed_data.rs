//! Personal data at rest (`bot_runtime::vault` through the store), on SQLite and PostgreSQL:
//! what the store writes is sealed or blind-indexed, lookups by number still work, a wrong
//! keyring is refused, key rotation re-seals everything, and rows from before sealing are sealed
//! on the first open.

use std::collections::BTreeMap;

use bot_runtime::agents::store::{AgentAccount, AgentDisposition};
use bot_runtime::dialer::db::{
    CampaignKind, DialStart, DncEntry, Lead, NewAttempt, NewCampaign, NewLead, Order,
};
use bot_runtime::store::{CallFilter, Store, StoreError};
use bot_runtime::vault::{Vault, default_keys_file};
use bot_runtime::{CallRecord, Direction, Speaker, TurnRecord};
use chrono::{TimeZone, Utc};
use sqlx::Row;

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite};

const TENANT: &str = "bank-a";
const PHONE: &str = "+442079460123";
const NAME: &str = "Philippa Quartermaine";
const CARD: &str = "4929000000006";
const DEBT: &str = "LOAN-5512-0091";

fn new_lead() -> NewLead {
    let mut fields = serde_json::Map::new();
    fields.insert("card_number".into(), serde_json::json!(CARD));
    NewLead {
        external_id: Some("CUST-778812".into()),
        phone: PHONE.into(),
        name: Some(NAME.into()),
        timezones: vec!["Europe/London".into()],
        tz_source: "number".into(),
        debt_id: Some(DEBT.into()),
        fields,
        source_row: Some(2),
    }
}

fn call() -> CallRecord {
    let mut call = CallRecord::new(
        Direction::Outbound,
        PHONE,
        Utc.timestamp_opt(1_780_000_000, 0).single().expect("time"),
    );
    call.id = "call-1".into();
    call.flow = "reminder".into();
    call.flow_version = 1;
    call.disposition = "answered".into();
    call.slots = serde_json::json!({ "card_last4": "0013", "name": NAME });
    call.turns = vec![TurnRecord {
        seq: 0,
        speaker: Speaker::Customer,
        text: format!("this is {NAME} and my card ends in 0013"),
        start_ms: 0,
        end_ms: 2000,
        step: None,
        intent: None,
        confidence: None,
        sentiment: None,
        interrupted: false,
        latency: None,
    }];
    call
}

/// Writes one of everything that holds personal data.
async fn seed(store: &Store) -> Lead {
    store.ensure_tenant(TENANT, TENANT).await.expect("tenant");
    let report = store
        .insert_leads(TENANT, "leads.csv", &[new_lead()])
        .await
        .expect("leads");
    assert_eq!(report.inserted, 1);
    store.save_call(&call()).await.expect("call");
    store
        .add_dnc(&[DncEntry {
            tenant: TENANT.into(),
            phone: "+442079460999".into(),
            reason: "asked".into(),
            source: "test".into(),
            added_by: "tester".into(),
            added_at: Utc::now(),
            expires_at: None,
        }])
        .await
        .expect("dnc");
    store
        .audit(
            TENANT,
            "tester",
            "dnc.add",
            "+442079460999",
            serde_json::json!({ "phone": "+442079460999" }),
        )
        .await
        .expect("audit");
    store
        .save_agent(
            TENANT,
            &AgentAccount {
                id: "a1".into(),
                name: "Agent One".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                skills: BTreeMap::new(),
                role: "agent".into(),
                sip_user: Some("agent1".into()),
                sip_password: Some("s1p-s3cret".into()),
                disabled: false,
            },
        )
        .await
        .expect("agent");
    store
        .save_disposition(
            TENANT,
            &AgentDisposition {
                call_id: "call-1".into(),
                agent_id: "a1".into(),
                disposition: "promise_to_pay".into(),
                notes: format!("{NAME} will pay on Friday"),
                callback_at: None,
                saved_at: Utc::now(),
            },
        )
        .await
        .expect("disposition");
    let lead = store
        .lead_by_phone(TENANT, PHONE)
        .await
        .expect("lead")
        .expect("found by number");
    // A dial attempt on the lead's debt.
    store
        .save_flow(TENANT, "reminder", 1, "flow: reminder\nversion: 1\n")
        .await
        .expect("flow");
    store
        .create_campaign(
            TENANT,
            &NewCampaign {
                id: "c".into(),
                kind: CampaignKind::Robot,
                flow: "reminder".into(),
                flow_version: 1,
                caller_id: None,
                max_concurrent: 1,
                settings: serde_json::json!({}),
            },
        )
        .await
        .expect("campaign");
    let now = Utc::now();
    store
        .assign_leads(
            TENANT,
            "c",
            std::slice::from_ref(&lead.id),
            Order::Sequential,
            now,
        )
        .await
        .expect("assign");
    let claimed = store
        .claim_leads(
            TENANT,
            "c",
            "n1",
            Order::Sequential,
            now,
            now + chrono::Duration::seconds(30),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let start = store
        .begin_dial(
            TENANT,
            &NewAttempt {
                id: "attempt-1".into(),
                campaign: "c".into(),
                lead: lead.id.clone(),
                debt_id: Some(DEBT.into()),
                phone: PHONE.into(),
                node: "n1".into(),
                started_at: now,
                rule: "ok".into(),
                detail: "test".into(),
            },
        )
        .await
        .expect("dial");
    let DialStart::Dial(tx) = start else {
        panic!("the dial was refused")
    };
    tx.commit().await.expect("commit");
    lead
}

/// Reads everything back through the store and checks it is what was written.
async fn check_readable(store: &Store, lead: &Lead) {
    assert_eq!(
        store
            .lead_by_phone(TENANT, PHONE)
            .await
            .expect("lead")
            .as_ref(),
        Some(lead)
    );
    assert_eq!(lead.name.as_deref(), Some(NAME));
    assert_eq!(lead.fields["card_number"], CARD);
    assert_eq!(lead.debt_id.as_deref(), Some(DEBT));
    let on_debt = store
        .debt_attempts(
            TENANT,
            DEBT,
            Utc.timestamp_opt(0, 0).single().expect("epoch"),
        )
        .await
        .expect("debt attempts");
    assert_eq!(
        on_debt.len(),
        1,
        "the debt's attempt is found by its blind index"
    );
    let back = store.call("call-1").await.expect("call").expect("found");
    assert_eq!(back, call());
    let by_phone = store
        .list_calls(&CallFilter {
            phone: Some(PHONE.into()),
            ..CallFilter::default()
        })
        .await
        .expect("calls");
    assert_eq!(by_phone.len(), 1);
    assert_eq!(by_phone[0].phone, PHONE);
    let dnc = store
        .dnc_check(TENANT, "+442079460999", Utc::now())
        .await
        .expect("dnc");
    assert_eq!(dnc.map(|d| d.phone).as_deref(), Some("+442079460999"));
    let events = store
        .audit_events(TENANT, None, 10)
        .await
        .expect("audit log");
    assert_eq!(events[0].subject, "+442079460999");
    assert_eq!(events[0].detail["phone"], "+442079460999");
    let agent = store.agent(TENANT, "a1").await.expect("agent").expect("a1");
    assert_eq!(agent.sip_password.as_deref(), Some("s1p-s3cret"));
    let d = store
        .dispositions(TENANT, "call-1")
        .await
        .expect("dispositions");
    assert_eq!(d[0].notes, format!("{NAME} will pay on Friday"));
}

/// Every stored value of the personal-data columns, as text.
async fn raw_values(url: &str) -> Vec<String> {
    let pool = raw(url).await;
    let mut out = Vec::new();
    for (table, cols) in [
        (
            "leads",
            "phone, phone_enc, name, external_id, fields_json, debt_id, debt_id_enc",
        ),
        ("attempts", "phone, phone_enc, debt_id"),
        ("calls", "phone, phone_enc, slots_json"),
        ("call_turns", "text"),
        ("dnc", "phone, phone_enc"),
        ("audit_events", "subject, detail_json"),
        ("agents", "sip_password"),
        ("agent_dispositions", "notes"),
    ] {
        let rows = sqlx::query(&format!("SELECT {cols} FROM {table}"))
            .fetch_all(&pool)
            .await
            .expect("raw read");
        for r in rows {
            for i in 0..r.len() {
                let v: Option<String> = r.try_get(i).expect("text");
                out.extend(v);
            }
        }
    }
    pool.close().await;
    out
}

/// A connection pool of our own on the test database, beside the store's.
async fn raw(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("raw connection")
}

fn assert_nothing_readable(values: &[String]) {
    assert!(values.len() >= 14, "{values:?}");
    for v in values {
        assert!(
            v.starts_with("enc:") || v.starts_with("bi:"),
            "stored readable: {v:?}"
        );
        for secret in [
            "2079460",
            "Philippa",
            CARD,
            "s1p-s3cret",
            "CUST-778812",
            "5512-0091",
        ] {
            assert!(!v.contains(secret), "{secret} in {v:?}");
        }
    }
}

fn keys_err(r: Result<Store, StoreError>) -> String {
    match r {
        Err(e @ StoreError::Keys { .. }) => e.to_string(),
        Err(e) => panic!("expected a keys error, got {e}"),
        Ok(_) => panic!("opened with the wrong keys"),
    }
}

mod cases {
    use super::*;

    pub async fn sealed_rotated_and_refused(db: TestDb) {
        let keys = Vault::generate("test keys");
        let store = Store::open_with_keys(&db.url, keys.clone())
            .await
            .expect("open");
        let lead = seed(&store).await;
        check_readable(&store, &lead).await;
        let before = raw_values(&db.url).await;
        assert_nothing_readable(&before);
        let first = keys.active_key().to_string();
        assert!(
            before
                .iter()
                .filter(|v| v.starts_with("enc:"))
                .all(|v| v.starts_with(&format!("enc:{first}:")))
        );
        assert_eq!(store.recorded_keys().await.expect("keys"), vec![first]);
        store.close().await;

        // Another keyring, or one without the data key, is refused before anything is read.
        let err = keys_err(Store::open_with_keys(&db.url, Vault::generate("other")).await);
        assert!(err.contains("index key"), "{err}");

        // Rotation: a new key seals, the old one still opens, re-sealing moves everything over.
        let mut rotated = keys.clone();
        let second = rotated.add_key();
        let store = Store::open_with_keys(&db.url, rotated.clone())
            .await
            .expect("open with both keys");
        check_readable(&store, &lead).await;
        let changed = store.reseal().await.expect("reseal");
        assert!(changed >= 7, "{changed} rows re-sealed");
        let after = raw_values(&db.url).await;
        assert_nothing_readable(&after);
        for v in after.iter().filter(|v| v.starts_with("enc:")) {
            assert!(v.starts_with(&format!("enc:{second}:")), "{v}");
        }
        // The index did not change, so lookups by number work as before.
        let indexes = |vals: &[String]| {
            vals.iter()
                .filter(|v| v.starts_with("bi:"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(indexes(&before), indexes(&after));
        assert_eq!(
            store.recorded_keys().await.expect("keys"),
            vec![second.clone()]
        );
        check_readable(&store, &lead).await;
        assert_eq!(
            store.reseal().await.expect("again"),
            0,
            "nothing left to do"
        );
        store.close().await;

        // The old key can go; a keyring with only the old key cannot open the database.
        let mut only_new = rotated.clone();
        only_new.retire_old_keys();
        let store = Store::open_with_keys(&db.url, only_new)
            .await
            .expect("open with the new key only");
        check_readable(&store, &lead).await;
        store.close().await;
        let err = keys_err(Store::open_with_keys(&db.url, keys).await);
        assert!(err.contains(&second), "{err}");
    }

    pub async fn rows_from_before_sealing_are_sealed_on_first_open(db: TestDb) {
        let keys = Vault::generate("test keys");
        let store = Store::open_with_keys(&db.url, keys.clone())
            .await
            .expect("open");
        let lead = seed(&store).await;
        // Turn the rows back into what a database from before sealing holds: plaintext in the
        // columns, no `phone_enc`, no recorded keys.
        let pool = raw(&db.url).await;
        let n = |s: &str| s.to_string();
        for sql in [
            format!(
                "UPDATE leads SET phone = '{PHONE}', phone_enc = NULL, name = '{NAME}', \
                 external_id = 'CUST-778812', fields_json = '{{\"card_number\":\"{CARD}\"}}'"
            ),
            format!(
                "UPDATE calls SET phone = '{PHONE}', phone_enc = NULL, \
                 slots_json = '{{\"card_last4\":\"0013\",\"name\":\"{NAME}\"}}'"
            ),
            format!("UPDATE call_turns SET text = 'this is {NAME} and my card ends in 0013'"),
            n("UPDATE dnc SET phone = '+442079460999', phone_enc = NULL"),
            format!("UPDATE leads SET debt_id = '{DEBT}', debt_id_enc = NULL"),
            format!("UPDATE attempts SET phone = '{PHONE}', phone_enc = NULL, debt_id = '{DEBT}'"),
            n("UPDATE audit_events SET subject = '+442079460999', \
                 detail_json = '{\"phone\":\"+442079460999\"}'"),
            n("UPDATE agents SET sip_password = 's1p-s3cret'"),
            format!("UPDATE agent_dispositions SET notes = '{NAME} will pay on Friday'"),
            n("DELETE FROM vault_keys"),
        ] {
            sqlx::query(&sql).execute(&pool).await.expect(&sql);
        }
        pool.close().await;
        assert!(raw_values(&db.url).await.iter().any(|v| v == NAME));
        store.close().await;

        let store = Store::open_with_keys(&db.url, keys)
            .await
            .expect("first open with keys");
        assert_nothing_readable(&raw_values(&db.url).await);
        check_readable(&store, &lead).await;
        store.close().await;
    }

    /// A database sealed before debt identifiers were (migration 0009): its plain identifiers
    /// are sealed on the next open, with the keys it has, and the per-debt lookups find them.
    pub async fn debt_ids_from_before_0009_are_sealed_on_next_open(db: TestDb) {
        let keys = Vault::generate("test keys");
        let store = Store::open_with_keys(&db.url, keys.clone())
            .await
            .expect("open");
        let lead = seed(&store).await;
        let pool = raw(&db.url).await;
        for sql in [
            format!("UPDATE leads SET debt_id = '{DEBT}', debt_id_enc = NULL"),
            format!("UPDATE attempts SET debt_id = '{DEBT}'"),
            "INSERT INTO store_tasks (name) VALUES ('seal_debt_ids')".to_string(),
        ] {
            sqlx::query(&sql).execute(&pool).await.expect(&sql);
        }
        pool.close().await;
        assert!(raw_values(&db.url).await.iter().any(|v| v == DEBT));
        store.close().await;
        let store = Store::open_with_keys(&db.url, keys.clone())
            .await
            .expect("next open");
        assert_nothing_readable(&raw_values(&db.url).await);
        check_readable(&store, &lead).await;
        store.close().await;
        let pool = raw(&db.url).await;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_tasks")
            .fetch_one(&pool)
            .await
            .expect("tasks");
        assert_eq!(left, 0, "the task ran once and is gone");
        pool.close().await;
    }

    /// `Store::open` without a keyring uses the keys file beside a SQLite database, created on
    /// first use, and finds it again.
    pub async fn the_default_keys_file_is_created_and_reused(db: TestDb) {
        let store = Store::open(&db.url).await.expect("open");
        let lead = seed(&store).await;
        store.close().await;
        if let Some(file) = default_keys_file(&db.url).filter(|_| db.url.starts_with("sqlite")) {
            assert!(file.is_file(), "{}", file.display());
        }
        let store = Store::open(&db.url).await.expect("reopen");
        check_readable(&store, &lead).await;
        store.close().await;
    }
}

macro_rules! suite {
    ($backend:ident, $fresh:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sealed_rotated_and_refused() {
                cases::sealed_rotated_and_refused($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rows_from_before_sealing_are_sealed_on_first_open() {
                cases::rows_from_before_sealing_are_sealed_on_first_open($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn debt_ids_from_before_0009_are_sealed_on_next_open() {
                cases::debt_ids_from_before_0009_are_sealed_on_next_open($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_default_keys_file_is_created_and_reused() {
                cases::the_default_keys_file_is_created_and_reused($fresh().await).await
            }
        }
    };
}

suite!(sqlite, fresh_sqlite);
suite!(postgres, fresh_postgres);
