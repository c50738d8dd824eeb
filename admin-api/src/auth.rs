//! Console accounts: Argon2id password hashes, sessions behind an HttpOnly cookie, and a
//! brake on password guessing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use bot_runtime::agents::desk::Endpoint;
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
    pub skills: std::collections::BTreeMap<String, u8>,
    /// How this agent takes calls this session.
    pub endpoint: Endpoint,
    expires: Instant,
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

    /// Opens a session and returns its token (32 random bytes, hex).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &self,
        tenant: &str,
        agent: &str,
        name: &str,
        role: &str,
        skills: std::collections::BTreeMap<String, u8>,
        endpoint: Endpoint,
    ) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let session = Session {
            tenant: tenant.to_string(),
            agent: agent.to_string(),
            name: name.to_string(),
            role: role.to_string(),
            skills,
            endpoint,
            expires: Instant::now() + self.ttl,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(token.clone(), session);
        token
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

    #[test]
    fn sessions_open_find_close_and_lock_out() {
        let s = Sessions::new(Duration::from_secs(60));
        let token = s.open(
            "t",
            "a1",
            "Ann",
            "agent",
            Default::default(),
            Endpoint::Console,
        );
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
