//! Console accounts: Argon2id password hashes, sessions behind an HttpOnly cookie, and a
//! brake on password guessing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use bot_runtime::agents::desk::Endpoint;
use bot_runtime::agents::store::AgentAccount;
use rand::RngCore;

/// The session cookie's name.
pub const COOKIE: &str = "callbot_session";

/// Failed logins allowed per account in [`LOCKOUT_WINDOW`] before further attempts are refused.
pub const MAX_FAILURES: usize = 5;
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(300);

/// Hashes a console password as an Argon2id PHC string (random salt, the crate's defaults).
///
/// # Errors
/// An empty password, or one over 1,024 bytes.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1,024 bytes".into());
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (a malformed hash matches nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    pub tenant: String,
    pub agent: String,
    pub name: String,
    /// `agent` or `supervisor`.
    pub role: String,
    pub skills: BTreeMap<String, u8>,
    /// How this agent takes calls this session.
    pub endpoint: Endpoint,
    /// The account's password hash at login: a session outlives no password change.
    credential: Credential,
    expires: Instant,
}

/// A password hash kept to compare with the account's, never printed.
#[derive(Clone, PartialEq, Eq)]
struct Credential(String);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

/// What [`Sessions::reconcile`] did to an agent's sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Sessions closed: the account is gone or disabled, or its password or role changed.
    pub closed: usize,
    /// The account's skills, when the sessions left open had others (they now have these).
    pub new_skills: Option<BTreeMap<String, u8>>,
}

/// The sessions of this server (in memory: a restart logs everybody out).
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<(String, String), Vec<Instant>>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session of `account` and returns its token (32 random bytes, hex).
    pub fn open(&self, tenant: &str, account: &AgentAccount, endpoint: Endpoint) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let session = Session {
            tenant: tenant.to_string(),
            agent: account.id.clone(),
            name: account.name.clone(),
            role: account.role.clone(),
            skills: account.skills.clone(),
            endpoint,
            credential: Credential(account.password_hash.clone()),
            expires: Instant::now() + self.ttl,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(token.clone(), session);
        token
    }

    /// The accounts with a live session here, (tenant, agent), each once.
    pub fn accounts(&self) -> Vec<(String, String)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut out: Vec<(String, String)> = map
            .values()
            .filter(|s| s.expires > now)
            .map(|s| (s.tenant.clone(), s.agent.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Brings an agent's sessions in line with the account as stored now (`None`: deleted):
    /// a session whose account is gone or disabled, or whose password or role changed since
    /// login, is closed; the others take the account's name and skills.
    pub fn reconcile(
        &self,
        tenant: &str,
        agent: &str,
        account: Option<&AgentAccount>,
    ) -> Reconciled {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Reconciled::default();
        map.retain(|_, s| {
            if s.tenant != tenant || s.agent != agent {
                return true;
            }
            let Some(a) = account else {
                out.closed += 1;
                return false;
            };
            if a.disabled || a.role != s.role || Credential(a.password_hash.clone()) != s.credential
            {
                out.closed += 1;
                return false;
            }
            if s.skills != a.skills {
                s.skills = a.skills.clone();
                out.new_skills = Some(a.skills.clone());
            }
            s.name = a.name.clone();
            true
        });
        out
    }

    /// The session of a request's cookie, its lifetime renewed; `None` without a live one.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let token = cookie(headers, COOKIE)?;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let s = map.get_mut(&token)?;
        if s.expires <= now {
            map.remove(&token);
            return None;
        }
        s.expires = now + self.ttl;
        Some((token, s.clone()))
    }

    pub fn close(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// Closes every session of an agent (an account disabled, its password or role changed);
    /// returns how many were open.
    pub fn close_agent(&self, tenant: &str, agent: &str) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, s| !(s.tenant == tenant && s.agent == agent));
        before - map.len()
    }

    /// Whether this account is locked out by recent failures (and, if not, nothing changes).
    pub fn locked_out(&self, tenant: &str, agent: &str) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), agent.to_string());
        let now = Instant::now();
        if let Some(list) = f.get_mut(&key) {
            list.retain(|t| now.duration_since(*t) < LOCKOUT_WINDOW);
            return list.len() >= MAX_FAILURES;
        }
        false
    }

    pub fn failed(&self, tenant: &str, agent: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((tenant.to_string(), agent.to_string()))
            .or_default()
            .push(Instant::now());
    }

    pub fn succeeded(&self, tenant: &str, agent: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.to_string(), agent.to_string()));
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse!", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(h, hash_password("correct horse").expect("hash"), "salted");
        assert!(hash_password("").is_err());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=1; callbot_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    fn account(id: &str, role: &str, hash: &str) -> AgentAccount {
        AgentAccount {
            id: id.into(),
            name: format!("Agent {id}"),
            password_hash: hash.into(),
            skills: BTreeMap::from([("cards".to_string(), 2)]),
            role: role.into(),
            sip_user: None,
            sip_password: None,
            disabled: false,
        }
    }

    #[test]
    fn sessions_follow_their_account() {
        let s = Sessions::new(Duration::from_secs(60));
        let a1 = account("a1", "agent", "h1");
        s.open("t", &a1, Endpoint::Console);
        s.open("t", &a1, Endpoint::Console);
        s.open("u", &account("a1", "supervisor", "h9"), Endpoint::Console);
        s.open("t", &account("a2", "agent", "h2"), Endpoint::Console);
        assert_eq!(s.accounts().len(), 3);
        assert!(!format!("{:?}", s.accounts()).contains("h1"));
        // Unchanged: nothing happens.
        assert_eq!(s.reconcile("t", "a1", Some(&a1)), Reconciled::default());
        // New skills reach both of a1's sessions in tenant t, and only those.
        let mut skilled = a1.clone();
        skilled.skills.insert("loans".into(), 5);
        let r = s.reconcile("t", "a1", Some(&skilled));
        assert_eq!(r.closed, 0);
        assert_eq!(r.new_skills.as_ref(), Some(&skilled.skills));
        assert_eq!(
            s.reconcile("t", "a1", Some(&skilled)),
            Reconciled::default()
        );
        // Another role, another password, disabled, deleted: closed.
        let mut promoted = skilled.clone();
        promoted.role = "supervisor".into();
        assert_eq!(s.reconcile("t", "a1", Some(&promoted)).closed, 2);
        assert_eq!(s.accounts().len(), 2);
        assert_eq!(
            s.reconcile("u", "a1", Some(&account("a1", "supervisor", "h10")))
                .closed,
            1
        );
        let mut off = account("a2", "agent", "h2");
        assert_eq!(s.reconcile("t", "a2", Some(&off)).closed, 0);
        off.disabled = true;
        assert_eq!(s.reconcile("t", "a2", Some(&off)).closed, 1);
        s.open("t", &account("a3", "agent", "h3"), Endpoint::Console);
        assert_eq!(s.reconcile("t", "a3", None).closed, 1);
        assert!(s.accounts().is_empty());
    }

    #[test]
    fn sessions_open_find_close_and_lock_out() {
        let s = Sessions::new(Duration::from_secs(60));
        let token = s.open("t", &account("a1", "agent", "h1"), Endpoint::Console);
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={token}")).expect("header"),
        );
        let (_, found) = s.from_headers(&h).expect("session");
        assert_eq!(found.agent, "a1");
        s.close(&token);
        assert!(s.from_headers(&h).is_none());

        for _ in 0..MAX_FAILURES - 1 {
            s.failed("t", "a1");
        }
        assert!(!s.locked_out("t", "a1"));
        s.failed("t", "a1");
        assert!(s.locked_out("t", "a1"));
        assert!(!s.locked_out("t", "a2"), "per account");
        s.succeeded("t", "a1");
        assert!(!s.locked_out("t", "a1"));
    }
}
