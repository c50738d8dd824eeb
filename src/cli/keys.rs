//! `callbot keys …`: the keyring that seals personal data in the database
//! (`bot_runtime::vault`): generate a keys file, show which keys are in use, rotate.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bot_runtime::store::Store;
use bot_runtime::vault::{KEYS_ENV, KEYS_FILE_ENV, Vault, default_keys_file};
use clap::{Args, Subcommand};

use super::campaign::{DbArgs, rt};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Write a new keys file (an index key and a data key), readable by its owner only.
    Generate(GenerateArgs),
    /// The keyring in use and the keys the database records.
    Status(DbOnly),
    /// Add a new data key, re-seal every stored value with it, then drop the old keys from the
    /// keys file (stop the other callbot processes first, and give them the new file after).
    Rotate(RotateArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// The file to create (never replaced).
    file: PathBuf,
}

#[derive(Args)]
pub struct DbOnly {
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct RotateArgs {
    /// Keep the old keys in the file after re-sealing (they are no longer needed).
    #[arg(long)]
    keep_old: bool,
    #[command(flatten)]
    db: DbArgs,
}

pub fn run(c: KeysCommand) -> anyhow::Result<()> {
    match c {
        KeysCommand::Generate(a) => {
            let v = Vault::create_file(&a.file)?;
            println!(
                "wrote {} (data key {}); keep it secret and back it up apart from the database",
                a.file.display(),
                v.active_key()
            );
            Ok(())
        }
        KeysCommand::Status(a) => rt()?.block_on(async {
            let url = a.db.url();
            let store = Store::open(&url).await?;
            let v = store.vault();
            println!("keyring:      {}", v.origin());
            println!("data keys:    {}", v.key_ids().join(", "));
            println!("sealing with: {}", v.active_key());
            println!("index check:  {}", v.index_check());
            println!(
                "database:     {} (keys in use: {})",
                store.url(),
                store.recorded_keys().await?.join(", ")
            );
            Ok(())
        }),
        KeysCommand::Rotate(a) => rt()?.block_on(rotate(&a.db.url(), a.keep_old)),
    }
}

/// The keys file `callbot` uses for `url`.
fn keys_file(url: &str) -> anyhow::Result<PathBuf> {
    if std::env::var(KEYS_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        bail!(
            "the keyring comes from ${KEYS_ENV}; rotation writes a keys file: put the keyring in \
             a file and name it with ${KEYS_FILE_ENV}"
        );
    }
    if let Ok(p) = std::env::var(KEYS_FILE_ENV)
        && !p.trim().is_empty()
    {
        return Ok(PathBuf::from(p));
    }
    default_keys_file(url).with_context(|| format!("{url} has no keys file (in memory)"))
}

async fn rotate(url: &str, keep_old: bool) -> anyhow::Result<()> {
    let path = keys_file(url)?;
    let mut vault = Vault::load(&path)?;
    // The database must fit the keyring before anything changes.
    Store::open_with_keys(url, vault.clone())
        .await?
        .close()
        .await;
    let old = vault.key_ids();
    let new = vault.add_key();
    save(&vault, &path)?;
    println!(
        "added data key {new} to {}; re-sealing the stored personal data…",
        path.display()
    );
    let store = Store::open_with_keys(url, vault.clone()).await?;
    let n = store.reseal().await?;
    store.close().await;
    println!("re-sealed {n} rows with {new}");
    if keep_old {
        println!(
            "kept the old keys ({}) in {}: nothing uses them any more",
            old.join(", "),
            path.display()
        );
    } else {
        vault.retire_old_keys();
        save(&vault, &path)?;
        println!(
            "removed the old keys ({}) from {}; give the other callbot processes this file",
            old.join(", "),
            path.display()
        );
    }
    Ok(())
}

fn save(vault: &Vault, path: &Path) -> anyhow::Result<()> {
    vault
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}
