//! A dialer node (`bot_runtime::dialer::service::Dialer`, in process) calling a simulated customer
//! over real SIP/RTP on loopback, with the real models: the customer asks not to be called again,
//! and the opt-out is on the tenant's DNC list before the call ends; the attempt is recorded as
//! `opted_out`, the lead is done, the caller ID is the campaign's, and every step is in the audit
//! trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bot_runtime::demo::{self, Customer, ScriptLine};
use bot_runtime::dialer::db::{
    CampaignKind, CampaignStatus, DEFAULT_TENANT, NewCampaign, NewLead, Order,
};
use bot_runtime::dialer::service::{Dialer, DialerConfig};
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Runtime, RuntimeConfig};
use bot_runtime::sim::Phone;
use bot_runtime::store::Store;
use callbot_models::ModelsDir;
use chrono::{Timelike, Utc};
use tokio::sync::watch;

/// A zone where it is between 10:00 and 18:59 now, so the default calling window is open.
fn daytime_zone() -> &'static str {
    const ZONES: [&str; 12] = [
        "Pacific/Honolulu",
        "America/Los_Angeles",
        "America/Chicago",
        "America/New_York",
        "America/Sao_Paulo",
        "Europe/London",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Kolkata",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Sydney",
    ];
    let now = Utc::now();
    ZONES
        .into_iter()
        .find(|z| {
            let tz: chrono_tz::Tz = z.parse().expect("a zone");
            (10..19).contains(&now.with_timezone(&tz).hour())
        })
        .expect("some zone is in daytime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_said_in_a_call_is_on_the_list_before_the_call_ends() {
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", work.path().join("dialer.db").display());
    let store = Arc::new(Store::open(&url).await.expect("store"));

    // The customer's phone, and what they say.
    let customer = Customer {
        name: "Erin".into(),
        phone: "+12125550142".into(),
        lead: serde_json::json!({}),
        lines: vec![
            ScriptLine::Greet("Hello?"),
            ScriptLine::Answer("Yes, speaking."),
            ScriptLine::Answer("Please stop calling me. Put me on your do not call list."),
        ],
        expect_outcome: "opted_out",
    };
    let script = demo::render_script(&engines, &customer).expect("script");
    let phone = Phone::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "erin")
        .await
        .expect("phone");
    let trunk = phone.local_addr();

    // The campaign: the demo's flow, one lead, the phone as the trunk.
    store
        .save_flow(DEFAULT_TENANT, "card_payment_reminder", 1, demo::FLOW_YAML)
        .await
        .expect("flow");
    store
        .create_campaign(
            DEFAULT_TENANT,
            &NewCampaign {
                id: "reminders".into(),
                kind: CampaignKind::Robot,
                flow: "card_payment_reminder".into(),
                flow_version: 1,
                caller_id: Some("+18005550100".into()),
                max_concurrent: 2,
                settings: serde_json::json!({"trunk": {"address": trunk.to_string()}}),
            },
        )
        .await
        .expect("campaign");
    let mut fields = serde_json::Map::new();
    for (k, v) in [
        ("first_name", "Erin"),
        ("amount_due", "75.20"),
        ("due_date", "2030-02-01"),
        ("card_number", "4111111111111111"),
    ] {
        fields.insert(k.into(), serde_json::json!(v));
    }
    let inserted = store
        .insert_leads(
            DEFAULT_TENANT,
            "test",
            &[NewLead {
                external_id: None,
                phone: customer.phone.clone(),
                name: Some("Erin".into()),
                timezones: vec![daytime_zone().into()],
                tz_source: "column".into(),
                debt_id: Some("card-1".into()),
                fields,
                source_row: Some(2),
            }],
        )
        .await
        .expect("lead");
    let ids: Vec<String> = inserted.ids.values().cloned().collect();
    store
        .assign_leads(
            DEFAULT_TENANT,
            "reminders",
            &ids,
            Order::Sequential,
            Utc::now(),
        )
        .await
        .expect("assign");
    store
        .set_campaign_status(DEFAULT_TENANT, "reminders", CampaignStatus::Running, "test")
        .await
        .expect("start");

    // A node runs the campaign to its end while the phone answers.
    let (runtime, _records) = Runtime::start(
        engines.clone(),
        RuntimeConfig::loopback(),
        Some(store.clone()),
    )
    .await
    .expect("runtime");
    let phone_task = tokio::spawn(phone.answer(script, 300));
    let dialer = Dialer::new(
        store.clone(),
        runtime.clone(),
        DialerConfig::new("node-1"),
        None,
    );
    let (_stop, stop) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(120), dialer.run(stop, true))
        .await
        .expect("the campaign ends in time")
        .expect("dialer");
    let report = phone_task.await.expect("phone task").expect("phone");
    assert!(report.remote_hangup, "the robot ended the call");

    // The attempt and its call.
    let attempts = store
        .campaign_attempts(DEFAULT_TENANT, "reminders")
        .await
        .expect("attempts");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let attempt = &attempts[0];
    let call = store
        .call(
            attempt
                .call_id
                .as_deref()
                .expect("the attempt names its call"),
        )
        .await
        .expect("read")
        .expect("the call record");
    assert_eq!(
        attempt.disposition.as_deref(),
        Some("opted_out"),
        "path {:?}, turns {:#?}",
        call.path,
        call.turns
    );
    assert_eq!(call.outcome.as_deref(), Some("opted_out"), "{call:#?}");
    assert_eq!(call.campaign.as_deref(), Some("reminders"));
    assert_eq!(call.sip_call_id, report.sip_call_id);

    // On the list, from this call, before it ended.
    let entry = store
        .dnc_check(DEFAULT_TENANT, &customer.phone, Utc::now())
        .await
        .expect("check")
        .expect("the number is on the DNC list");
    assert_eq!(entry.tenant, DEFAULT_TENANT);
    assert_eq!(entry.source, format!("call:{}", call.id));
    assert!(entry.expires_at.is_none());
    assert!(
        entry.added_at < call.ended_at,
        "opt-out at {} but the call ended at {}",
        entry.added_at,
        call.ended_at
    );

    // The lead is done, the campaign finished, and the audit trail says why it was dialed.
    let stats = store
        .campaign_stats(DEFAULT_TENANT, "reminders", Utc::now())
        .await
        .expect("stats");
    assert_eq!((stats.done, stats.ready, stats.in_progress), (1, 0, 0));
    let campaign = store
        .campaign(DEFAULT_TENANT, "reminders")
        .await
        .expect("read")
        .expect("campaign");
    assert_eq!(campaign.status, CampaignStatus::Finished);
    let why = store
        .decisions_for_phone(DEFAULT_TENANT, &customer.phone, None)
        .await
        .expect("decisions");
    assert_eq!(why.len(), 1, "{why:?}");
    assert_eq!(why[0].verdict, "dialed");
    assert_eq!(why[0].rule, "ok");
    assert_eq!(why[0].attempt.as_deref(), Some(attempt.id.as_str()));
}
