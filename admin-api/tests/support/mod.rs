//! A minimal HTTP/1.1 client for the API tests (real sockets, no client library to hide what
//! goes over the wire).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use bot_runtime::agents::desk::{AgentLines, Ring};

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Value,
    /// The body's bytes as sent (`body` is read as UTF-8, lossily).
    pub bytes: Vec<u8>,
}

/// One HTTP/1.1 request and its reply.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.expect("send");
    // Read the head, then the body by its Content-Length (a WebSocket refusal keeps the
    // connection open).
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    break;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("reply within 10 s");
    let bytes = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|end| raw[end + 4..].to_vec())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: head.to_string(),
        body: serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
        bytes,
    }
}

/// No agent in this test has a SIP phone: ringing one fails as an unregistered phone would.
pub struct NoPhones;

impl AgentLines for NoPhones {
    fn ring(&self, user: String, _caller: String, _cancel: oneshot::Receiver<()>) -> Ring {
        Box::pin(async move { Err((0, format!("{user} is not registered"))) })
    }
}

/// Seeds `tenant` with campaign `campaign` (a draft on a stub flow) and one call dialed through
/// the dialer's own store functions (lead, claim, attempt, call record, finished attempt), as a
/// dialer node writes them; returns the call's id.
pub async fn seed_campaign_call(
    store: &bot_runtime::store::Store,
    tenant: &str,
    campaign: &str,
    phone: &str,
) -> String {
    seed_call_with(store, tenant, campaign, phone, None, &[]).await
}

/// As [`seed_campaign_call`], with the flow's outcome and path (the campaign is created if it
/// does not exist yet).
pub async fn seed_call_with(
    store: &bot_runtime::store::Store,
    tenant: &str,
    campaign: &str,
    phone: &str,
    outcome: Option<&str>,
    path: &[&str],
) -> String {
    use bot_runtime::dialer::db::{
        CampaignKind, DialStart, LeadUpdate, NewAttempt, NewCampaign, NewLead, Order,
    };
    use bot_runtime::record::{CallRecord, Direction};
    use chrono::Utc;

    store.ensure_tenant(tenant, tenant).await.expect("tenant");
    store
        .save_flow(tenant, "reminder", 1, "name: reminder\nversion: 1\n")
        .await
        .expect("flow");
    let exists = store
        .campaign(tenant, campaign)
        .await
        .expect("campaign")
        .is_some();
    if !exists {
        store
            .create_campaign(
                tenant,
                &NewCampaign {
                    id: campaign.into(),
                    kind: CampaignKind::Robot,
                    flow: "reminder".into(),
                    flow_version: 1,
                    caller_id: None,
                    max_concurrent: 2,
                    settings: serde_json::json!({}),
                },
            )
            .await
            .expect("campaign");
    }
    store
        .insert_leads(
            tenant,
            "seed.csv",
            &[NewLead {
                external_id: None,
                phone: phone.into(),
                name: None,
                timezones: vec!["America/New_York".into()],
                tz_source: "number".into(),
                debt_id: None,
                fields: serde_json::Map::new(),
                source_row: Some(2),
            }],
        )
        .await
        .expect("lead");
    let lead = store
        .list_leads(tenant, 10, 0)
        .await
        .expect("leads")
        .into_iter()
        .find(|l| l.phone == phone)
        .expect("the lead")
        .id;
    let now = Utc::now();
    store
        .assign_leads(
            tenant,
            campaign,
            std::slice::from_ref(&lead),
            Order::Sequential,
            now,
        )
        .await
        .expect("assign");
    let claimed = store
        .claim_leads(
            tenant,
            campaign,
            "node-1",
            Order::Sequential,
            now,
            now + chrono::Duration::seconds(30),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let attempt = format!("attempt-{campaign}-{phone}");
    let started = store
        .begin_dial(
            tenant,
            &NewAttempt {
                id: attempt.clone(),
                campaign: campaign.into(),
                lead: lead.clone(),
                debt_id: None,
                phone: phone.into(),
                node: "node-1".into(),
                started_at: now,
                rule: "ok".into(),
                detail: "seed".into(),
            },
        )
        .await
        .expect("begin dial");
    let DialStart::Dial(tx) = started else {
        panic!("the seed dial was refused")
    };
    tx.commit().await.expect("commit the dial");
    let mut call = CallRecord::new(Direction::Outbound, phone, now);
    call.campaign = Some(campaign.into());
    call.lead_id = Some(lead.clone());
    call.disposition = "answered".into();
    call.answered_at = Some(now);
    call.ended_at = now + chrono::Duration::seconds(40);
    call.flow = "reminder".into();
    call.outcome = outcome.map(str::to_string);
    call.path = path.iter().map(|s| s.to_string()).collect();
    store.save_call(&call).await.expect("call");
    store
        .finish_attempt(
            tenant,
            campaign,
            &lead,
            &attempt,
            "node-1",
            "answered",
            now,
            Some(&call.id),
            &LeadUpdate {
                done: true,
                next_at: now,
                reason: "seed".into(),
                callback_at: None,
            },
        )
        .await
        .expect("finish attempt");
    call.id
}

/// Gives a seeded call a recording as the runtime writes one (a tone on each channel, sealed
/// with the store's keys, in `dir`); returns the plain WAV's bytes.
pub async fn seed_recording(
    store: &bot_runtime::store::Store,
    call_id: &str,
    dir: &std::path::Path,
) -> Vec<u8> {
    let mut rec = bot_runtime::recorder::Recorder::new();
    let tone = |hz: f32| -> Vec<i16> {
        (0..8000)
            .map(|i| ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16)
            .collect()
    };
    rec.customer(0, &tone(700.0));
    rec.robot(0, &tone(1300.0));
    let path = dir.join(format!("{call_id}.wav"));
    let vault = store.vault_arc();
    let r = rec.write(&path, Some(&vault)).expect("recording");
    let mut call = store.call(call_id).await.expect("call").expect("the call");
    call.recording = Some(r.clone());
    store.save_call(&call).await.expect("save");
    let sealed = std::fs::read(&r.path).expect("sealed file");
    assert!(
        !sealed.starts_with(b"RIFF"),
        "the recording on disk is sealed"
    );
    store.read_recording(&r).expect("open")
}
