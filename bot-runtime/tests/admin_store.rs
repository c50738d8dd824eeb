//! What the admin API reads and changes in the store, on SQLite and PostgreSQL: flow versions
//! and their activation (live campaigns move, finished ones stay, nothing crosses tenants),
//! lead search through the blind index, a lead's history across campaigns, campaign changes and
//! deletion, tenants, and the platform role's tokens.

use bot_runtime::dialer::db::{
    CampaignChange, CampaignKind, CampaignStatus, DialStart, LeadQuery, LeadUpdate, NewAttempt,
    NewCampaign, NewLead, Order,
};
use bot_runtime::store::Store;
use chrono::Utc;

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

fn flow(version: u32, greeting: &str) -> String {
    format!("flow: remind\nversion: {version}\n# {greeting}\n")
}

async fn campaign(store: &Store, tenant: &str, id: &str, version: u32) {
    store
        .create_campaign(
            tenant,
            &NewCampaign {
                id: id.into(),
                kind: CampaignKind::Robot,
                flow: "remind".into(),
                flow_version: version,
                caller_id: None,
                max_concurrent: 2,
                settings: serde_json::json!({}),
            },
        )
        .await
        .expect("campaign");
}

fn lead(phone: &str, row: u64) -> NewLead {
    NewLead {
        external_id: Some(format!("ext-{row}")),
        phone: phone.into(),
        name: Some(format!("Customer {row}")),
        timezones: vec!["America/New_York".into()],
        tz_source: "number".into(),
        debt_id: None,
        fields: serde_json::Map::new(),
        source_row: Some(row),
    }
}

async fn run(db: TestDb) {
    let store: Store = open(&db).await;
    for t in ["bank", "other"] {
        store.ensure_tenant(t, t).await.expect("tenant");
    }

    // Flows: the first version is active until another is activated.
    store
        .save_flow("bank", "remind", 1, &flow(1, "hello"))
        .await
        .expect("v1");
    store
        .save_flow("bank", "remind", 2, &flow(2, "good morning"))
        .await
        .expect("v2");
    store
        .save_flow("other", "remind", 1, &flow(1, "theirs"))
        .await
        .expect("other v1");
    let info = store
        .flow_info("bank", "remind")
        .await
        .expect("info")
        .expect("the flow");
    assert_eq!(info.active, Some(1));
    assert_eq!(
        info.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(info.activated_by.as_deref(), Some("first version"));
    assert!(
        store
            .flow_info("bank", "nope")
            .await
            .expect("info")
            .is_none()
    );
    assert_eq!(store.list_flows("bank").await.expect("list").len(), 1);

    for id in ["draft", "live", "paused", "over"] {
        campaign(&store, "bank", id, 1).await;
    }
    campaign(&store, "other", "live", 1).await;
    for (id, to) in [
        ("live", CampaignStatus::Running),
        ("paused", CampaignStatus::Running),
        ("paused", CampaignStatus::Paused),
        ("over", CampaignStatus::Stopped),
    ] {
        store
            .set_campaign_status("bank", id, to, "test")
            .await
            .expect("status");
    }
    store
        .set_campaign_status("other", "live", CampaignStatus::Running, "test")
        .await
        .expect("status");

    let a = store
        .activate_flow("bank", "remind", 2, "api:ops")
        .await
        .expect("activate")
        .expect("v2 is stored");
    assert_eq!(a.previous, Some(1));
    assert_eq!(a.campaigns, ["draft", "live", "paused"]);
    for (id, v) in [("draft", 2), ("live", 2), ("paused", 2), ("over", 1)] {
        let c = store.campaign("bank", id).await.expect("c").expect("c");
        assert_eq!(c.flow_version, v, "campaign {id}");
    }
    let theirs = store
        .campaign("other", "live")
        .await
        .expect("c")
        .expect("c");
    assert_eq!(
        theirs.flow_version, 1,
        "another tenant's campaign is untouched"
    );
    let info = store
        .flow_info("bank", "remind")
        .await
        .expect("i")
        .expect("i");
    assert_eq!(info.active, Some(2));
    assert_eq!(info.activated_by.as_deref(), Some("api:ops"));
    let other = store
        .flow_info("other", "remind")
        .await
        .expect("i")
        .expect("i");
    assert_eq!(other.active, Some(1));
    assert!(
        store
            .activate_flow("bank", "remind", 3, "api:ops")
            .await
            .expect("activate")
            .is_none(),
        "an unstored version"
    );
    assert!(
        store
            .activate_flow("other", "remind", 2, "api:ops")
            .await
            .expect("activate")
            .is_none(),
        "bank's v2 is not the other tenant's"
    );
    // Back to v1: the campaigns follow, the audit log has both changes.
    let back = store
        .activate_flow("bank", "remind", 1, "api:ops")
        .await
        .expect("activate")
        .expect("v1");
    assert_eq!(back.previous, Some(2));
    assert_eq!(back.campaigns, ["draft", "live", "paused"]);
    let events = store.audit_events("bank", None, 100).await.expect("audit");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "flow.activate")
            .count(),
        2
    );

    // Leads: search by number through the blind index, by campaign and state.
    let leads = [
        lead("+12125550101", 2),
        lead("+12125550102", 3),
        lead("+12125550103", 4),
    ];
    let report = store
        .insert_leads("bank", "leads.csv", &leads)
        .await
        .expect("insert");
    store
        .insert_leads("other", "theirs.csv", &[lead("+12125550101", 2)])
        .await
        .expect("insert");
    let id = |phone: &str| report.ids.get(phone).cloned().expect("lead id");
    let now = Utc::now();
    store
        .assign_leads(
            "bank",
            "live",
            &[id("+12125550101"), id("+12125550102")],
            Order::Sequential,
            now,
        )
        .await
        .expect("assign");
    store
        .assign_leads(
            "bank",
            "paused",
            &[id("+12125550101")],
            Order::Sequential,
            now,
        )
        .await
        .expect("assign");
    let by_phone = store
        .search_leads(
            "bank",
            &LeadQuery {
                phone: Some("+12125550101".into()),
                limit: 10,
                ..LeadQuery::default()
            },
        )
        .await
        .expect("search");
    assert_eq!(by_phone.len(), 1);
    assert_eq!(by_phone[0].name.as_deref(), Some("Customer 2"));
    assert_eq!(
        by_phone[0].id,
        id("+12125550101"),
        "bank's lead, not other's"
    );
    let in_live = store
        .search_leads(
            "bank",
            &LeadQuery {
                campaign: Some("live".into()),
                limit: 10,
                ..LeadQuery::default()
            },
        )
        .await
        .expect("search");
    assert_eq!(
        in_live.iter().map(|l| l.phone.as_str()).collect::<Vec<_>>(),
        ["+12125550101", "+12125550102"]
    );
    let page = store
        .search_leads(
            "bank",
            &LeadQuery {
                limit: 2,
                offset: 2,
                ..LeadQuery::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|l| l.phone.as_str()).collect::<Vec<_>>(),
        ["+12125550103"]
    );
    let none = store
        .search_leads(
            "other",
            &LeadQuery {
                campaign: Some("live".into()),
                limit: 10,
                ..LeadQuery::default()
            },
        )
        .await
        .expect("search");
    assert!(
        none.is_empty(),
        "the other tenant's campaign `live` has no leads"
    );

    // One lead's history: dialed and finished in `live`, still waiting in `paused`.
    let claimed = store
        .claim_leads(
            "bank",
            "live",
            "node-1",
            Order::Sequential,
            now,
            now + chrono::Duration::seconds(30),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let lead_id = id("+12125550101");
    let start = store
        .begin_dial(
            "bank",
            &NewAttempt {
                id: "attempt-1".into(),
                campaign: "live".into(),
                lead: lead_id.clone(),
                debt_id: None,
                phone: "+12125550101".into(),
                node: "node-1".into(),
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
    store
        .finish_attempt(
            "bank",
            "live",
            &lead_id,
            "attempt-1",
            "node-1",
            "no_answer",
            now,
            None,
            &LeadUpdate {
                done: false,
                next_at: now + chrono::Duration::hours(4),
                reason: "retry: no_answer after 4h".into(),
                callback_at: None,
            },
        )
        .await
        .expect("finish");
    let states = store
        .lead_campaigns("bank", &lead_id)
        .await
        .expect("states");
    let summary: Vec<(&str, &str, u32, Option<&str>)> = states
        .iter()
        .map(|s| {
            (
                s.campaign.as_str(),
                s.state.as_str(),
                s.attempts,
                s.last_disposition.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("live", "ready", 1, Some("no_answer")),
            ("paused", "ready", 0, None)
        ]
    );
    assert_eq!(
        states[0].reason.as_deref(),
        Some("retry: no_answer after 4h")
    );
    let attempts = store
        .lead_all_attempts("bank", &lead_id)
        .await
        .expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].phone, "+12125550101");
    assert_eq!(attempts[0].disposition.as_deref(), Some("no_answer"));
    assert!(
        store
            .lead_all_attempts("other", &lead_id)
            .await
            .expect("attempts")
            .is_empty()
    );

    // Campaign changes: settings, caller id and flow version in one, audited with what changed;
    // a change that changes nothing writes nothing; a stopped campaign and an unstored flow are
    // refused; another tenant's campaign of the same name is untouched.
    let change = CampaignChange {
        flow: Some(("remind".into(), 2)),
        caller_id: Some(Some("+12125559999".into())),
        max_concurrent: Some(7),
        settings: Some(serde_json::json!({ "default_region": "GB" })),
    };
    let changed = store
        .update_campaign("bank", "live", &change, "api:ops")
        .await
        .expect("update")
        .expect("the campaign");
    assert_eq!(
        (changed.flow_version, changed.max_concurrent),
        (2, 7),
        "{changed:?}"
    );
    assert_eq!(changed.caller_id.as_deref(), Some("+12125559999"));
    assert_eq!(changed.settings["default_region"], "GB");
    assert_eq!(changed.status, CampaignStatus::Running);
    let again = store
        .update_campaign("bank", "live", &change, "api:ops")
        .await
        .expect("update")
        .expect("the campaign");
    assert_eq!(again.updated_at, changed.updated_at, "nothing to change");
    let cleared = store
        .update_campaign(
            "bank",
            "live",
            &CampaignChange {
                caller_id: Some(None),
                ..CampaignChange::default()
            },
            "api:ops",
        )
        .await
        .expect("update")
        .expect("the campaign");
    assert_eq!(cleared.caller_id, None);
    assert_eq!(cleared.max_concurrent, 7, "the rest stays");
    let updates: Vec<_> = store
        .audit_events("bank", None, 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "campaign.update")
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    let first = updates.last().expect("the first update");
    assert_eq!(first.detail["flow"]["to"], "remind v2");
    assert_eq!(first.detail["max_concurrent"]["from"], 2);
    assert!(
        updates[0].detail.get("settings").is_none(),
        "only what changed: {}",
        updates[0].detail
    );
    let refused = store
        .update_campaign("bank", "over", &change, "api:ops")
        .await
        .expect_err("a stopped campaign");
    assert!(refused.to_string().contains("stopped"), "{refused}");
    let unstored = store
        .update_campaign(
            "bank",
            "draft",
            &CampaignChange {
                flow: Some(("remind".into(), 9)),
                ..CampaignChange::default()
            },
            "api:ops",
        )
        .await
        .expect_err("an unstored flow version");
    assert!(unstored.to_string().contains("not stored"), "{unstored}");
    assert!(
        store
            .update_campaign("bank", "nope", &change, "api:ops")
            .await
            .expect("update")
            .is_none()
    );
    let theirs = store
        .campaign("other", "live")
        .await
        .expect("c")
        .expect("c");
    assert_eq!((theirs.max_concurrent, theirs.caller_id), (2, None));

    // Deletion: a campaign that dialed is a record, a running one is refused, one that never
    // dialed goes with its assignments while its leads stay.
    let dialed = store
        .delete_campaign("bank", "live", "api:ops")
        .await
        .expect_err("running, and it dialed");
    assert!(dialed.to_string().contains("running"), "{dialed}");
    store
        .set_campaign_status("bank", "live", CampaignStatus::Paused, "test")
        .await
        .expect("pause");
    let dialed = store
        .delete_campaign("bank", "live", "api:ops")
        .await
        .expect_err("it dialed");
    assert!(dialed.to_string().contains("1 attempt"), "{dialed}");
    let deleted = store
        .delete_campaign("bank", "paused", "api:ops")
        .await
        .expect("delete")
        .expect("the campaign");
    assert_eq!(deleted.leads_unassigned, 1);
    assert!(store.campaign("bank", "paused").await.expect("c").is_none());
    assert!(
        store.lead("bank", &lead_id).await.expect("lead").is_some(),
        "the lead stays"
    );
    assert_eq!(
        store
            .lead_campaigns("bank", &lead_id)
            .await
            .expect("states")
            .len(),
        1,
        "only `live` is left"
    );
    assert!(
        store
            .delete_campaign("other", "paused", "api:ops")
            .await
            .expect("delete")
            .is_none(),
        "nothing of that name in the other tenant"
    );
    assert!(
        store
            .audit_events("bank", None, 100)
            .await
            .expect("audit")
            .iter()
            .any(|e| e.action == "campaign.delete" && e.subject == "paused")
    );

    // Tenants: created with a checked id, listed, a taken id refused.
    let made = store
        .create_tenant("card-unit", " Card unit ", "api:platform")
        .await
        .expect("tenant");
    assert_eq!(made.name, "Card unit");
    for bad in ["", "Card", "-x", "a/b", "*", &"x".repeat(65)] {
        let e = store
            .create_tenant(bad, "Bad", "api:platform")
            .await
            .expect_err("a bad id");
        assert!(e.to_string().contains("lowercase"), "{bad:?}: {e}");
    }
    let taken = store
        .create_tenant("bank", "Again", "api:platform")
        .await
        .expect_err("taken");
    assert!(taken.to_string().contains("exists"), "{taken}");
    let ids: Vec<String> = store
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .map(|t| t.id)
        .collect();
    for id in ["bank", "card-unit", "default", "other"] {
        assert!(ids.iter().any(|t| t == id), "{id} in {ids:?}");
    }
    assert_eq!(
        store
            .tenant("card-unit")
            .await
            .expect("tenant")
            .map(|t| t.name),
        Some("Card unit".to_string())
    );

    // The platform role belongs to the tenant `*`, and only it.
    store
        .create_api_token("*", "ops", "platform")
        .await
        .expect("a platform token");
    for (tenant, role) in [("bank", "platform"), ("*", "admin"), ("*", "auditor")] {
        let e = store
            .create_api_token(tenant, "x", role)
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("platform"), "{tenant} {role}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_store_on_sqlite() {
    run(fresh_sqlite().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_store_on_postgres() {
    run(fresh_postgres().await).await
}
