//! Personal data at rest: the keyring that seals phone numbers, names, account fields,
//! transcripts and notes before they reach the database, and the blind index that still lets the
//! store find a phone number by equality.
//!
//! - **Sealing**: AES-256-GCM with a random 96-bit nonce per value. A sealed value is text,
//!   `enc:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, so it fits the portable `TEXT` columns
//!   of both engines. The associated data is the field's name (`"phone"`, `"name"`…), so a
//!   ciphertext copied into another kind of column does not open.
//! - **Blind index**: `bi:<base64url(HMAC-SHA256(index key, field ‖ 0 ‖ value)[..16])>`,
//!   deterministic, so `WHERE phone = $1` and `UNIQUE (tenant, phone)` keep working on the index
//!   while the number itself is only in the sealed `phone_enc` column. The index key is separate
//!   from the data keys and is never rotated (rotating it would change every index).
//! - **Rotation**: a keyring holds any number of data keys; the last one seals, all of them open.
//!   `callbot keys rotate` appends a new key and re-seals every stored value with it
//!   ([`crate::store::Store::reseal`]); the old key may then be removed from the file.
//! - **Checks against the database**: the store records each data key's and the index key's
//!   check value (an HMAC of a constant, which reveals nothing of the key) in `vault_keys`, and
//!   refuses to open a database whose keys the keyring lacks or holds with other bytes — a node
//!   started with the wrong keys file fails at once instead of writing index values nobody can
//!   match.
//!
//! # The keys file
//!
//! ```text
//! # callbot data keys: keep secret (mode 0600), back up apart from the database.
//! index 3J0k…(base64 of 32 bytes)
//! key k20261126 q9Xh…(base64 of 32 bytes)
//! key k20270301 Zt0P…            <- the last `key` line seals new data
//! ```
//!
//! Where the keyring comes from ([`Vault::for_database`]): `$CALLBOT_KEYS` (the file's text,
//! lines separated by newlines or `;`), else the file `$CALLBOT_KEYS_FILE`, else a default file
//! — beside a SQLite database (`callbot.db.keys`), `./callbot.keys` for PostgreSQL — created with
//! a fresh keyring the first time. `sqlite::memory:` gets a keyring that lives as long as the
//! process.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

/// Prefix of a sealed value.
pub const SEALED_PREFIX: &str = "enc:";
/// Prefix of a blind-index value.
pub const INDEX_PREFIX: &str = "bi:";
/// The first bytes of a sealed file (a recording).
pub const SEALED_FILE_MAGIC: &[u8; 8] = b"CBSEAL1\0";
/// The environment variable holding a keyring's text.
pub const KEYS_ENV: &str = "CALLBOT_KEYS";
/// The environment variable naming a keys file.
pub const KEYS_FILE_ENV: &str = "CALLBOT_KEYS_FILE";

const NONCE_LEN: usize = 12;
const INDEX_LEN: usize = 16;
const CHECK_INPUT: &[u8] = b"callbot key check v1";

type HmacSha256 = Hmac<Sha256>;

/// Why a keyring could not be loaded or a value not opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A keys file or `$CALLBOT_KEYS` that does not parse.
    #[error("{source_name}:{line}:{column}: {reason}")]
    Parse {
        /// The file's path, or `$CALLBOT_KEYS`.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A keys file that cannot be read or written.
    #[error("keys file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A value sealed with a key this keyring does not have.
    #[error("value sealed with key {0:?}, which the keyring ({1}) does not hold")]
    UnknownKey(String, String),
    /// A value that is not a sealed value, or that fails authentication (altered, or sealed
    /// for another field).
    #[error("{0}")]
    Corrupt(String),
}

/// One AES-256 data key.
#[derive(Clone)]
struct DataKey {
    id: String,
    bytes: [u8; 32],
}

/// A keyring: the blind-index key and the data keys, the last of which seals. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    index: [u8; 32],
    keys: Vec<DataKey>,
    /// Where it came from, for messages (`/etc/callbot/keys`, `$CALLBOT_KEYS`, `memory`).
    origin: String,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key bytes.
        f.debug_struct("Vault")
            .field("origin", &self.origin)
            .field("keys", &self.key_ids())
            .finish()
    }
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    k
}

/// A new data key id: `k`, the UTC date and time (ids sort in creation order), and a random
/// suffix so that two keyrings made in the same second do not share an id.
fn new_key_id() -> String {
    format!(
        "{}-{:04x}",
        chrono::Utc::now().format("k%Y%m%d%H%M%S"),
        rand::rng().next_u32() & 0xffff
    )
}

fn check_of(key: &[u8; 32]) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(CHECK_INPUT);
    hex::encode(&mac.finalize().into_bytes()[..16])
}

impl Vault {
    /// A fresh keyring (one index key, one data key) that lives only in memory.
    pub fn generate(origin: &str) -> Vault {
        Vault {
            index: random_key(),
            keys: vec![DataKey {
                id: new_key_id(),
                bytes: random_key(),
            }],
            origin: origin.to_string(),
        }
    }

    /// Parses a keyring's text (see the module docs); `source_name` is used in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Vault, VaultError> {
        let err = |line: usize, column: usize, reason: String| VaultError::Parse {
            source_name: source_name.to_string(),
            line,
            column,
            reason,
        };
        let mut index = None;
        let mut keys: Vec<DataKey> = Vec::new();
        let lines: Vec<&str> = if text.contains('\n') {
            text.lines().collect()
        } else {
            text.split(';').collect()
        };
        for (n, raw) in lines.iter().enumerate() {
            let line_no = n + 1;
            let line = raw.split('#').next().unwrap_or("");
            let mut words = Vec::new();
            let mut offset = 0;
            for w in line.split_whitespace() {
                let at = line[offset..].find(w).map_or(offset, |p| offset + p);
                words.push((at + 1, w));
                offset = at + w.len();
            }
            let Some(&(col, kind)) = words.first() else {
                continue;
            };
            let decode = |(col, b64): (usize, &str)| -> Result<[u8; 32], VaultError> {
                let bytes = STANDARD
                    .decode(b64)
                    .map_err(|e| err(line_no, col, format!("not base64: {e}")))?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    err(
                        line_no,
                        col,
                        format!("a key is 32 bytes, this one is {}", bytes.len()),
                    )
                })
            };
            match kind {
                "index" => {
                    let [_, key] = words[..] else {
                        return Err(err(line_no, col, "expected `index BASE64`".into()));
                    };
                    if index.is_some() {
                        return Err(err(line_no, col, "a second index key".into()));
                    }
                    index = Some(decode(key)?);
                }
                "key" => {
                    let [_, (id_col, id), key] = words[..] else {
                        return Err(err(line_no, col, "expected `key ID BASE64`".into()));
                    };
                    if id.is_empty()
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        return Err(err(
                            line_no,
                            id_col,
                            format!("key id {id:?}: letters, digits, - and _ only"),
                        ));
                    }
                    if keys.iter().any(|k| k.id == id) {
                        return Err(err(line_no, id_col, format!("key id {id:?} twice")));
                    }
                    keys.push(DataKey {
                        id: id.to_string(),
                        bytes: decode(key)?,
                    });
                }
                other => {
                    return Err(err(
                        line_no,
                        col,
                        format!("unknown entry {other:?}; expected `index` or `key`"),
                    ));
                }
            }
        }
        let Some(index) = index else {
            return Err(err(1, 1, "no `index` key".into()));
        };
        if keys.is_empty() {
            return Err(err(1, 1, "no `key` line".into()));
        }
        Ok(Vault {
            index,
            keys,
            origin: source_name.to_string(),
        })
    }

    /// The keyring as a keys file's text.
    pub fn to_text(&self) -> String {
        let mut s = String::from(
            "# callbot data keys. Keep this file secret (mode 0600) and back it up apart from\n\
             # the database: without it, the sealed personal data cannot be read.\n\
             # The last `key` line seals new data; older keys open what they sealed.\n",
        );
        s.push_str(&format!("index {}\n", STANDARD.encode(self.index)));
        for k in &self.keys {
            s.push_str(&format!("key {} {}\n", k.id, STANDARD.encode(k.bytes)));
        }
        s
    }

    /// Reads a keys file.
    pub fn load(path: &Path) -> Result<Vault, VaultError> {
        let text = std::fs::read_to_string(path).map_err(|source| VaultError::Io {
            path: path.display().to_string(),
            source,
        })?;
        warn_if_readable_by_others(path);
        Vault::parse(&text, &path.display().to_string())
    }

    /// Writes a new keys file with a fresh keyring (mode 0600); refuses to replace a file.
    pub fn create_file(path: &Path) -> Result<Vault, VaultError> {
        let vault = Vault::generate(&path.display().to_string());
        // Written whole to a private temporary file, then linked into place: the link fails if
        // the file exists, and a process reading it never sees half a keyring.
        let tmp = temp_beside(path);
        write_new(&tmp, &vault.to_text())?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|source| VaultError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(vault)
    }

    /// Reads the keys file at `path`, or creates it with a fresh keyring when there is none
    /// (another process creating it at the same moment is safe: the loser reads the winner's).
    pub fn load_or_create(path: &Path) -> Result<Vault, VaultError> {
        match Vault::create_file(path) {
            Ok(v) => {
                tracing::warn!(
                    keys_file = %path.display(),
                    "created a new keys file for the personal data in the database; back it up \
                     apart from the database (without it the data cannot be read) and consider \
                     moving it to a secrets store ($CALLBOT_KEYS_FILE)"
                );
                Ok(v)
            }
            Err(VaultError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Vault::load(path)
            }
            Err(e) => Err(e),
        }
    }

    /// The keyring for the database at `url`: `$CALLBOT_KEYS`, `$CALLBOT_KEYS_FILE`, or the
    /// default file for that database (created when missing), or a process-lifetime keyring for
    /// `sqlite::memory:` (see the module docs).
    pub fn for_database(url: &str) -> Result<Vault, VaultError> {
        if let Ok(text) = std::env::var(KEYS_ENV)
            && !text.trim().is_empty()
        {
            return Vault::parse(&text, "$CALLBOT_KEYS");
        }
        if let Ok(path) = std::env::var(KEYS_FILE_ENV)
            && !path.trim().is_empty()
        {
            return Vault::load(Path::new(&path));
        }
        match default_keys_file(url) {
            Some(path) => Vault::load_or_create(&path),
            None => Ok(Vault::generate("memory")),
        }
    }

    /// Adds a new data key, which seals from now on; returns its id.
    pub fn add_key(&mut self) -> String {
        let mut id = new_key_id();
        while self.keys.iter().any(|k| k.id == id) {
            id.push('a');
        }
        self.keys.push(DataKey {
            id: id.clone(),
            bytes: random_key(),
        });
        id
    }

    /// Drops every data key but the active one.
    pub fn retire_old_keys(&mut self) {
        let n = self.keys.len();
        if n > 1 {
            self.keys.drain(..n - 1);
        }
    }

    /// Where the keyring came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The data keys' ids, oldest first; the last one seals.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// The id of the key that seals.
    pub fn active_key(&self) -> &str {
        self.keys.last().map_or("", |k| k.id.as_str())
    }

    /// The check value of the index key (see the module docs).
    pub fn index_check(&self) -> String {
        check_of(&self.index)
    }

    /// The check value of data key `id`, if the keyring has it.
    pub fn key_check(&self, id: &str) -> Option<String> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .map(|k| check_of(&k.bytes))
    }

    /// Seals `value` of field `field` with the active key.
    pub fn seal(&self, field: &str, value: &str) -> String {
        let key = self.keys.last().expect("a keyring has a data key");
        let cipher = Aes256Gcm::new((&key.bytes).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: field.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message under 64 GiB");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!(
            "{SEALED_PREFIX}{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(&blob)
        )
    }

    /// Opens a value sealed for field `field`.
    pub fn open(&self, field: &str, sealed: &str) -> Result<String, VaultError> {
        let rest = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(|| {
            VaultError::Corrupt(format!(
                "{field} is not sealed (no {SEALED_PREFIX:?} prefix)"
            ))
        })?;
        let (id, b64) = rest
            .split_once(':')
            .ok_or_else(|| VaultError::Corrupt(format!("{field}: sealed value without key id")))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| VaultError::UnknownKey(id.to_string(), self.origin.clone()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| VaultError::Corrupt(format!("{field}: sealed value not base64: {e}")))?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(VaultError::Corrupt(format!(
                "{field}: sealed value too short"
            )));
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new((&key.bytes).into());
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| {
                VaultError::Corrupt(format!(
                    "{field}: sealed value fails authentication (altered, or not a {field})"
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| VaultError::Corrupt(format!("{field}: opened value is not UTF-8")))
    }

    /// Seals a file's bytes for field `field`: [`SEALED_FILE_MAGIC`], the key id's length (one
    /// byte) and the key id, then nonce ‖ ciphertext ‖ tag.
    pub fn seal_bytes(&self, field: &str, plain: &[u8]) -> Vec<u8> {
        let key = self.keys.last().expect("a keyring has a data key");
        let cipher = Aes256Gcm::new((&key.bytes).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: field.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message under 64 GiB");
        let mut out = SEALED_FILE_MAGIC.to_vec();
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`Vault::seal_bytes`] sealed for field `field`.
    pub fn open_bytes(&self, field: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        let corrupt = |why: &str| VaultError::Corrupt(format!("sealed {field}: {why}"));
        let rest = sealed
            .strip_prefix(SEALED_FILE_MAGIC)
            .ok_or_else(|| corrupt("not a sealed file"))?;
        let (&n, rest) = rest.split_first().ok_or_else(|| corrupt("truncated"))?;
        if rest.len() < usize::from(n) + NONCE_LEN + 16 {
            return Err(corrupt("truncated"));
        }
        let (id, rest) = rest.split_at(usize::from(n));
        let id = std::str::from_utf8(id).map_err(|_| corrupt("bad key id"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| VaultError::UnknownKey(id.to_string(), self.origin.clone()))?;
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        Aes256Gcm::new((&key.bytes).into())
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| corrupt("fails authentication (altered, or not this kind of file)"))
    }

    /// The id of the key that sealed `sealed`, if it is a sealed value.
    pub fn sealed_with(sealed: &str) -> Option<&str> {
        sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|r| r.split_once(':'))
            .map(|(id, _)| id)
    }

    /// The blind index of `value` of field `field`.
    pub fn index(&self, field: &str, value: &str) -> String {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.index).expect("HMAC takes any key length");
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!(
            "{INDEX_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(&tag[..INDEX_LEN])
        )
    }

    /// Writes the keyring over the keys file at `path` (atomically: a temporary file renamed).
    pub fn save(&self, path: &Path) -> Result<(), VaultError> {
        let tmp = temp_beside(path);
        write_new(&tmp, &self.to_text())?;
        std::fs::rename(&tmp, path).map_err(|source| VaultError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// The keys file used for `url` when neither `$CALLBOT_KEYS` nor `$CALLBOT_KEYS_FILE` is set:
/// `FILE.keys` beside a SQLite file, `./callbot.keys` for PostgreSQL, none for memory.
pub fn default_keys_file(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Some(PathBuf::from("callbot.keys"));
    }
    let rest = url.strip_prefix("sqlite:")?;
    if rest.starts_with(":memory:") || rest.contains("mode=memory") {
        return None;
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return None;
    }
    Some(PathBuf::from(format!("{path}.keys")))
}

/// A fresh temporary name in `path`'s directory.
fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp{}-{}",
        std::process::id(),
        rand::rng().next_u64()
    ));
    path.with_file_name(name)
}

fn write_new(path: &Path, text: &str) -> Result<(), VaultError> {
    let io = |source| VaultError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                keys_file = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the keys file can be read by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let v = Vault::generate("test");
        let a = v.seal("phone", "+442079460000");
        let b = v.seal("phone", "+442079460000");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("442079460000"));
        assert_eq!(v.open("phone", &a).expect("open"), "+442079460000");
        assert_eq!(Vault::sealed_with(&a), Some(v.active_key()));
    }

    #[test]
    fn a_value_sealed_for_one_field_does_not_open_as_another() {
        let v = Vault::generate("test");
        let sealed = v.seal("phone", "+442079460000");
        assert!(matches!(
            v.open("name", &sealed),
            Err(VaultError::Corrupt(_))
        ));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(v.open("phone", &tampered).is_err());
        assert!(matches!(
            v.open("phone", "+442079460000"),
            Err(VaultError::Corrupt(_))
        ));
    }

    #[test]
    fn sealed_files_round_trip_and_refuse_tampering() {
        let mut v = Vault::generate("test");
        let wav = b"RIFF....WAVEfmt lots of audio".repeat(100);
        let sealed = v.seal_bytes("recording", &wav);
        assert!(sealed.starts_with(SEALED_FILE_MAGIC));
        assert!(!sealed.windows(4).any(|w| w == b"RIFF"));
        assert_eq!(v.open_bytes("recording", &sealed).expect("open"), wav);
        v.add_key();
        assert_eq!(v.open_bytes("recording", &sealed).expect("old key"), wav);
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(v.open_bytes("recording", &bad).is_err());
        assert!(v.open_bytes("notes", &sealed).is_err());
        assert!(v.open_bytes("recording", &wav).is_err());
        assert!(v.open_bytes("recording", &sealed[..20]).is_err());
    }

    #[test]
    fn the_index_is_deterministic_keyed_and_per_field() {
        let v = Vault::generate("test");
        let w = Vault::generate("other");
        assert_eq!(v.index("phone", "+1"), v.index("phone", "+1"));
        assert_ne!(v.index("phone", "+1"), v.index("phone", "+2"));
        assert_ne!(v.index("phone", "+1"), v.index("name", "+1"));
        assert_ne!(v.index("phone", "+1"), w.index("phone", "+1"));
        assert!(v.index("phone", "+1").starts_with(INDEX_PREFIX));
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_seals_with_the_new_key() {
        let mut v = Vault::generate("test");
        let old = v.seal("name", "Ana");
        let first = v.active_key().to_string();
        let new = v.add_key();
        assert_ne!(first, new);
        assert_eq!(v.open("name", &old).expect("old key opens"), "Ana");
        let resealed = v.seal("name", "Ana");
        assert_eq!(Vault::sealed_with(&resealed), Some(new.as_str()));
        let index_before = v.index("phone", "+1");
        v.retire_old_keys();
        assert_eq!(v.key_ids(), vec![new]);
        assert!(matches!(
            v.open("name", &old),
            Err(VaultError::UnknownKey(..))
        ));
        assert_eq!(v.index("phone", "+1"), index_before, "the index survives");
    }

    #[test]
    fn keys_text_round_trips_and_bad_text_names_line_and_column() {
        let mut v = Vault::generate("test");
        v.add_key();
        let text = v.to_text();
        let back = Vault::parse(&text, "keys").expect("parse");
        assert_eq!(back.key_ids(), v.key_ids());
        assert_eq!(back.index_check(), v.index_check());
        let sealed = v.seal("phone", "+1");
        assert_eq!(back.open("phone", &sealed).expect("open"), "+1");
        // `;` separates lines in $CALLBOT_KEYS.
        let one_line = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(";");
        assert!(Vault::parse(&one_line, "$CALLBOT_KEYS").is_ok());

        let e = Vault::parse("index AAAA\n", "f").expect_err("short key");
        assert_eq!(
            e.to_string(),
            "f:1:7: a key is 32 bytes, this one is 3",
            "{e}"
        );
        let good = STANDARD.encode([7u8; 32]);
        let e = Vault::parse(
            &format!("index {good}\n  key k1 {good}\nkey k1 {good}\n"),
            "f",
        )
        .expect_err("dup");
        assert_eq!(e.to_string(), "f:3:5: key id \"k1\" twice");
        let e = Vault::parse(&format!("index {good}\nsecret x\n"), "f").expect_err("unknown");
        assert!(e.to_string().starts_with("f:2:1: unknown entry"), "{e}");
        let e = Vault::parse(&format!("index {good}\n"), "f").expect_err("no key");
        assert!(e.to_string().contains("no `key` line"), "{e}");
        let e = Vault::parse(&format!("index {good}\nkey k/1 {good}\n"), "f").expect_err("id");
        assert!(e.to_string().starts_with("f:2:5: key id"), "{e}");
    }

    #[test]
    fn files_are_created_private_once_and_then_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/callbot.keys");
        let a = Vault::load_or_create(&path).expect("create");
        let b = Vault::load_or_create(&path).expect("read");
        assert_eq!(a.index_check(), b.index_check());
        assert!(Vault::create_file(&path).is_err(), "never replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut c = b.clone();
        c.add_key();
        c.save(&path).expect("save");
        assert_eq!(Vault::load(&path).expect("load").key_ids(), c.key_ids());
    }

    #[test]
    fn default_files_sit_beside_sqlite_and_in_the_working_directory_for_postgres() {
        assert_eq!(
            default_keys_file("sqlite://data/callbot.db"),
            Some(PathBuf::from("data/callbot.db.keys"))
        );
        assert_eq!(
            default_keys_file("sqlite:///var/lib/callbot/c.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/callbot/c.db.keys"))
        );
        assert_eq!(default_keys_file("sqlite::memory:"), None);
        assert_eq!(
            default_keys_file("postgres://u@h/db"),
            Some(PathBuf::from("callbot.keys"))
        );
    }
}
