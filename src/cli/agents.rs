//! `callbot agents …`, `callbot queues …` and `callbot tokens …`: the human agents' accounts
//! (console login, skills, SIP phone), the queues the flows transfer to, and the admin API's
//! tokens, per tenant.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bot_runtime::agents::queue::{Overflow, QueueConfig};
use bot_runtime::agents::store::AgentAccount;
use clap::{Args, Subcommand};

use super::campaign::{DbArgs, rt};

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// Create or replace an agent (the console password is read from stdin, one line).
    Add(AddAgent),
    /// List the tenant's agents.
    List(DbOnly),
    /// Disable an agent (they can no longer log in; their SIP phone can no longer register).
    Disable(AgentId),
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create an admin API token (printed once; only its hash is kept).
    Create(CreateToken),
    /// List the tenant's tokens (never the tokens themselves).
    List(DbOnly),
    /// Revoke a token by its id.
    Revoke(AgentId),
}

#[derive(Args)]
pub struct CreateToken {
    /// What the token is for (it names the caller in the audit log).
    #[arg(long)]
    name: String,
    /// `admin`, `supervisor`, `auditor` or `agent`.
    #[arg(long)]
    role: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Subcommand)]
pub enum QueuesCommand {
    /// Create or replace a queue.
    Set(SetQueue),
    /// List the tenant's queues.
    List(DbOnly),
}

#[derive(Args)]
pub struct DbOnly {
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct AgentId {
    id: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct AddAgent {
    /// The agent's login id.
    #[arg(long)]
    id: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Skills with levels 1–10, e.g. `collections=3,disputes=5`.
    #[arg(long, default_value = "")]
    skills: String,
    /// `agent` or `supervisor`.
    #[arg(long, default_value = "agent")]
    role: String,
    /// The SIP user the agent's phone registers as (its password follows the console
    /// password on stdin, on a second line).
    #[arg(long)]
    sip_user: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct SetQueue {
    /// The queue's name (flows transfer to it by this name).
    name: String,
    /// Skills an agent needs, with minimum levels, e.g. `collections=2`.
    #[arg(long, default_value = "")]
    skills: String,
    /// 1 is served first.
    #[arg(long, default_value_t = 5)]
    priority: u8,
    /// Seconds an agent has to accept an offer before it goes to the next.
    #[arg(long, default_value_t = 15)]
    offer_timeout: u64,
    /// Seconds a call waits before the flow's fallback runs.
    #[arg(long, default_value_t = 120)]
    max_wait: u64,
    /// Overflow to this queue after `--overflow-after` seconds.
    #[arg(long)]
    overflow_to: Option<String>,
    #[arg(long, default_value_t = 60)]
    overflow_after: u64,
    /// Seconds of wrap-up after each call (absent: until the agent saves a disposition).
    #[arg(long)]
    wrap_up: Option<u64>,
    #[command(flatten)]
    db: DbArgs,
}

/// `a=1,b=2` → {a: 1, b: 2}.
pub fn parse_skills(text: &str) -> anyhow::Result<BTreeMap<String, u8>> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, level) = part
            .split_once('=')
            .with_context(|| format!("skill {part:?}: write name=level, e.g. collections=3"))?;
        let level: u8 = level
            .trim()
            .parse()
            .ok()
            .filter(|l| (1..=10).contains(l))
            .with_context(|| format!("skill {part:?}: the level is a number from 1 to 10"))?;
        out.insert(name.trim().to_string(), level);
    }
    Ok(out)
}

fn read_line(stdin: &mut impl std::io::BufRead, what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from stdin"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        bail!("no {what} on stdin (write it as one line)");
    }
    Ok(line)
}

pub fn run(cmd: AgentsCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            AgentsCommand::Add(a) => {
                let skills = parse_skills(&a.skills)?;
                let mut stdin = std::io::stdin().lock();
                let password = read_line(&mut stdin, "console password")?;
                let sip_password = match &a.sip_user {
                    Some(_) => Some(read_line(&mut stdin, "SIP password (second line)")?),
                    None => None,
                };
                let hash = admin_api::auth::hash_password(&password)
                    .map_err(|e| anyhow::anyhow!("console password: {e}"))?;
                let store = a.db.open().await?;
                store
                    .save_agent(
                        &a.db.tenant,
                        &AgentAccount {
                            id: a.id.clone(),
                            name: a.name,
                            password_hash: hash,
                            skills,
                            role: a.role,
                            sip_user: a.sip_user,
                            sip_password,
                            disabled: false,
                        },
                    )
                    .await?;
                println!("agent {} saved", a.id);
            }
            AgentsCommand::List(a) => {
                let store = a.db.open().await?;
                println!("id\tname\trole\tskills\tsip_user\tdisabled");
                for ag in store.agents(&a.db.tenant).await? {
                    let skills: Vec<String> =
                        ag.skills.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        ag.id,
                        ag.name,
                        ag.role,
                        skills.join(","),
                        ag.sip_user.as_deref().unwrap_or("-"),
                        ag.disabled
                    );
                }
            }
            AgentsCommand::Disable(a) => {
                let store = a.db.open().await?;
                let Some(mut ag) = store.agent(&a.db.tenant, &a.id).await? else {
                    bail!("no agent {:?} in tenant {:?}", a.id, a.db.tenant);
                };
                ag.disabled = true;
                store.save_agent(&a.db.tenant, &ag).await?;
                println!("agent {} disabled", a.id);
            }
        }
        Ok(())
    })
}

pub fn run_tokens(cmd: TokensCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            TokensCommand::Create(t) => {
                let store = t.db.open().await?;
                let (record, token) = store
                    .create_api_token(&t.db.tenant, &t.name, &t.role)
                    .await?;
                eprintln!(
                    "token {} ({}, role {}) for tenant {}; it is shown only now:",
                    record.id, record.name, record.role, record.tenant
                );
                println!("{token}");
            }
            TokensCommand::List(a) => {
                let store = a.db.open().await?;
                println!("id\tname\trole\tcreated\trevoked");
                for t in store.api_tokens(&a.db.tenant).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        t.id,
                        t.name,
                        t.role,
                        t.created_at.to_rfc3339(),
                        t.revoked_at.map_or("-".to_string(), |r| r.to_rfc3339())
                    );
                }
            }
            TokensCommand::Revoke(a) => {
                let store = a.db.open().await?;
                if !store.revoke_api_token(&a.db.tenant, &a.id).await? {
                    bail!("no live token {:?} in tenant {:?}", a.id, a.db.tenant);
                }
                println!("token {} revoked", a.id);
            }
        }
        Ok(())
    })
}

pub fn run_queues(cmd: QueuesCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            QueuesCommand::Set(q) => {
                let store = q.db.open().await?;
                let config = QueueConfig {
                    name: q.name.clone(),
                    required_skills: parse_skills(&q.skills)?,
                    priority: q.priority,
                    offer_timeout: Duration::from_secs(q.offer_timeout),
                    max_wait: Duration::from_secs(q.max_wait),
                    overflow: q.overflow_to.map(|to| Overflow {
                        after: Duration::from_secs(q.overflow_after),
                        to,
                    }),
                    wrap_up: q.wrap_up.map(Duration::from_secs),
                };
                store.save_queue(&q.db.tenant, &config).await?;
                println!("queue {} saved", q.name);
            }
            QueuesCommand::List(a) => {
                let store = a.db.open().await?;
                for q in store.queues(&a.db.tenant).await? {
                    println!("{}", serde_json::to_string(&q)?);
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_parse_and_refuse() {
        let s = parse_skills("collections=3, disputes=10").expect("parse");
        assert_eq!(s.get("collections"), Some(&3));
        assert_eq!(s.get("disputes"), Some(&10));
        assert!(parse_skills("").expect("empty").is_empty());
        assert!(parse_skills("collections").is_err());
        assert!(parse_skills("collections=0").is_err());
        assert!(parse_skills("collections=11").is_err());
    }

    #[test]
    fn passwords_come_one_per_line() {
        let mut input = std::io::Cursor::new("first\r\nsecond\n");
        assert_eq!(read_line(&mut input, "a").expect("a"), "first");
        assert_eq!(read_line(&mut input, "b").expect("b"), "second");
        assert!(read_line(&mut input, "c").is_err());
    }
}
