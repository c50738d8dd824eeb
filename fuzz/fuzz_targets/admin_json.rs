//! JSON request bodies of the admin API: the public form structs of `admin_api::api` as the
//! handlers deserialize them (`serde_json::from_slice`), then the pure checks the handlers run
//! on them: campaign settings (`CampaignSettings::from_value`, after the RFC 7396 merge patch of
//! `PATCH /api/v1/campaigns/{id}`), caller ids. The first byte picks the body type.
//!
//! Properties: nothing panics; accepted settings serialise and are accepted again unchanged;
//! a merge patch is idempotent (applying it twice = once); a rejection has a message.
#![no_main]

use admin_api::api::access::{AgentForm, NewToken, QueueForm};
use admin_api::api::campaigns::{CampaignPatch, NewCampaignForm, StatusChange, merge_patch};
use admin_api::api::dnc::NewDnc;
use admin_api::api::platform::{NewTenant, RetentionForm};
use bot_runtime::dialer::campaign::CampaignSettings;
use bot_runtime::dialer::db::check_caller_id;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_settings(value: &Value) {
    match CampaignSettings::from_value(value) {
        Ok(s) => {
            let stored = serde_json::to_value(&s).expect("settings serialise");
            let again = CampaignSettings::from_value(&stored)
                .unwrap_or_else(|e| panic!("stored settings are refused: {e}\n{stored}"));
            assert_eq!(again, s, "settings change when stored and read back");
        }
        Err(e) => assert!(!e.is_empty(), "an empty settings error"),
    }
}

fn check_caller(caller_id: &str) {
    if let Err(e) = check_caller_id(caller_id) {
        assert!(!e.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    match sel % 10 {
        0 => {
            if let Ok(form) = serde_json::from_slice::<NewCampaignForm>(body) {
                if let Some(settings) = &form.settings {
                    check_settings(settings);
                }
                if let Some(c) = &form.caller_id {
                    check_caller(c);
                }
            }
        }
        1 => {
            if let Ok(patch) = serde_json::from_slice::<CampaignPatch>(body) {
                if let Some(p) = &patch.settings {
                    let mut merged =
                        serde_json::to_value(CampaignSettings::default()).expect("defaults");
                    merge_patch(&mut merged, p);
                    let once = merged.clone();
                    merge_patch(&mut merged, p);
                    assert_eq!(merged, once, "a merge patch is not idempotent");
                    check_settings(&merged);
                }
                if let Some(Some(c)) = &patch.caller_id {
                    check_caller(c);
                }
            }
        }
        2 => {
            let _ = serde_json::from_slice::<AgentForm>(body);
        }
        3 => {
            let _ = serde_json::from_slice::<QueueForm>(body);
        }
        4 => {
            let _ = serde_json::from_slice::<StatusChange>(body);
        }
        5 => {
            let _ = serde_json::from_slice::<NewToken>(body);
        }
        6 => {
            let _ = serde_json::from_slice::<NewDnc>(body);
        }
        7 => {
            let _ = serde_json::from_slice::<NewTenant>(body);
        }
        8 => {
            let _ = serde_json::from_slice::<RetentionForm>(body);
        }
        _ => {
            // `callbot campaign create --settings FILE` and the stored settings column.
            if let Ok(text) = std::str::from_utf8(body) {
                match CampaignSettings::parse(text) {
                    Ok(s) => {
                        let stored = serde_json::to_value(&s).expect("settings serialise");
                        check_settings(&stored);
                    }
                    Err(e) => assert!(!e.is_empty()),
                }
            }
        }
    }
});
