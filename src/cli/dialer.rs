//! `callbot dialer run`: a dialer node. It dials the running campaigns' due leads through its
//! own SIP user agent and runs the robot on every answered call; any number of nodes can share
//! one PostgreSQL database (leads are claimed with leases; see `bot_runtime::dialer::service`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use admin_api::{Console, ConsoleConfig};
use anyhow::Context as _;
use bot_runtime::agents::desk::Desk;
use bot_runtime::dialer::service::{Dialer, DialerConfig, DialerEvent};
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::runtime::{Runtime, RuntimeConfig, SrtpPolicy, sip_tls_from_files};
use callbot_models::ModelsDir;
use clap::{Args, Subcommand};
use tokio::sync::{mpsc, watch};

use super::campaign::DbArgs;

#[derive(Subcommand)]
pub enum DialerCommand {
    /// Run a dialer node until interrupted (Ctrl-C lets the calls in progress finish).
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// This node's id: unique among running nodes (a restarted node takes back its own leases).
    #[arg(long, default_value = "node-1")]
    node: String,
    /// SIP address to bind (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5070")]
    sip: SocketAddr,
    /// Address media binds to and advertises (default: the SIP address's).
    #[arg(long)]
    media_ip: Option<IpAddr>,
    /// Most calls this node runs at once.
    #[arg(long, default_value_t = 32)]
    max_calls: u32,
    /// Seconds a claimed lead stays this node's without renewal.
    #[arg(long, default_value_t = 30)]
    lease_secs: u64,
    /// Where recordings go (default: none).
    #[arg(long)]
    recordings: Option<PathBuf>,
    /// Dial nothing new while the recordings disk has less than this many MiB free (calls in
    /// progress go on; a recording that finds the disk full waits in memory for space).
    #[arg(long, default_value_t = 256)]
    recordings_min_free_mb: u64,
    /// End a call after this many seconds without RTP from the far end (a phone or trunk gone
    /// without a BYE); 0: never.
    #[arg(long, default_value_t = 60)]
    media_timeout_secs: u64,
    /// SRTP (SDES keys in the SDP) for calls' media: `accept` answers secure RTP when a trunk
    /// or phone offers it and places calls with plain RTP; `require` offers only secure RTP and
    /// refuses calls that do not offer it (488).
    #[arg(long, default_value = "accept", value_parser = ["accept", "require"])]
    srtp: String,
    /// Listen for SIP over TLS on this address (conventionally port 5061) with
    /// `--sip-tls-cert`/`--sip-tls-key`; campaigns whose trunk has `"transport": "tls"` place
    /// their calls over TLS, checking the trunk's certificate against `--sip-tls-ca`.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "sip_tls_cert",
        requires = "sip_tls_key"
    )]
    sip_tls: Option<SocketAddr>,
    /// The PEM certificate chain served on `--sip-tls` (and presented to trunks that ask for a
    /// client certificate).
    #[arg(long, value_name = "PATH", requires = "sip_tls")]
    sip_tls_cert: Option<PathBuf>,
    /// The PEM private key of `--sip-tls-cert`.
    #[arg(long, value_name = "PATH", requires = "sip_tls")]
    sip_tls_key: Option<PathBuf>,
    /// PEM file of the certificate authorities trusted for trunks reached over TLS (without it,
    /// calls can be taken over TLS but not placed).
    #[arg(long, value_name = "PATH", requires = "sip_tls")]
    sip_tls_ca: Option<PathBuf>,
    /// Exit when no campaign is running and no call is in progress.
    #[arg(long)]
    until_idle: bool,
    /// Serve the agent console, the supervisor's wallboard, the admin API and the metrics on
    /// this address, and hand
    /// the flows' transfers to the tenant's queues (`callbot queues set`) and agents.
    #[arg(long)]
    console: Option<SocketAddr>,
    /// The address the console's softphones reach this node's media on (default: the
    /// console's).
    #[arg(long)]
    webrtc_ip: Option<IpAddr>,
    /// Serve the console over HTTPS with this PEM certificate chain (the server's certificate
    /// first); needs `--tls-key`.
    #[arg(long, value_name = "PATH", requires = "tls_key", requires = "console")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "PATH", requires = "tls_cert", requires = "console")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

pub fn run(cmd: DialerCommand, models: &ModelsDir) -> anyhow::Result<()> {
    let DialerCommand::Run(a) = cmd;
    // The console's certificate and key, checked before anything loads or dials.
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(admin_api::tls::server_config(cert, key)?),
        _ => None,
    };
    let sip_tls = match (&a.sip_tls, &a.sip_tls_cert, &a.sip_tls_key) {
        (Some(bind), Some(cert), Some(key)) => Some(sip_tls_from_files(
            *bind,
            cert,
            key,
            a.sip_tls_ca.as_deref(),
        )?),
        _ => None,
    };
    let engines =
        Arc::new(Engines::load(models, &EngineConfig::default()).context("loading the models")?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Arc::new(a.db.open().await?);
        let mut cfg = RuntimeConfig::loopback();
        cfg.sip_bind = a.sip;
        cfg.media_ip = a.media_ip.unwrap_or(a.sip.ip());
        cfg.recording_dir = a.recordings.clone();
        cfg.recordings_min_free = a.recordings_min_free_mb.saturating_mul(1 << 20);
        cfg.media_timeout =
            (a.media_timeout_secs > 0).then(|| Duration::from_secs(a.media_timeout_secs));
        cfg.srtp = SrtpPolicy::from_name(&a.srtp).unwrap_or_default();
        cfg.sip_tls = sip_tls;
        if let Some(dir) = &a.recordings {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // The deployment's retention policy (`callbot retention set`), applied now and hourly.
        let retention = store.clone();
        let actor = format!("dialer node {}", a.node);
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                hourly.tick().await;
                match retention.apply_retention(chrono::Utc::now(), &actor).await {
                    Ok(r) if r.recordings + r.transcripts > 0 => tracing::info!(
                        recordings = r.recordings,
                        transcripts = r.transcripts,
                        "retention: purged what the policy no longer keeps"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention: applying the policy failed"),
                }
            }
        });
        let metrics = engines.metrics.clone();
        // The records are in the store; the stream is not read here, so it is dropped.
        let (runtime, _) = Runtime::start(engines, cfg, Some(store.clone()))
            .await
            .with_context(|| match a.sip_tls {
                Some(tls) => format!("binding SIP on {} and SIP over TLS on {tls}", a.sip),
                None => format!("binding SIP on {}", a.sip),
            })?;
        if let Some(addr) = a.console {
            let webrtc_ip = a.webrtc_ip.unwrap_or(addr.ip());
            start_console(
                &store,
                &runtime,
                &a.db.tenant,
                addr,
                webrtc_ip,
                metrics,
                tls,
            )
            .await?;
        }
        let mut dcfg = DialerConfig::new(&a.node);
        dcfg.max_calls = a.max_calls;
        dcfg.lease = Duration::from_secs(a.lease_secs.max(3));
        let (etx, mut erx) = mpsc::unbounded_channel();
        let dialer = Dialer::new(store.clone(), runtime.clone(), dcfg, Some(etx));
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: no new calls; waiting for the calls in progress");
                let _ = stop_tx.send(true);
            }
        });
        println!(
            "dialer {} on sip {} with database {}",
            a.node,
            runtime.local_addr(),
            store.url()
        );
        let printer = tokio::spawn(async move {
            while let Some(ev) = erx.recv().await {
                match ev {
                    DialerEvent::Dialed {
                        campaign, phone, ..
                    } => {
                        println!("{campaign}\t{phone}\tdialing")
                    }
                    DialerEvent::Finished {
                        campaign,
                        phone,
                        disposition,
                        next,
                    } => {
                        println!("{campaign}\t{phone}\t{disposition}\tnext: {next}")
                    }
                    DialerEvent::Skipped {
                        campaign,
                        phone,
                        verdict,
                        reason,
                    } => {
                        println!("{campaign}\t{phone}\t{verdict}\t{reason}")
                    }
                    DialerEvent::CampaignFinished { campaign, .. } => {
                        println!("{campaign}\tfinished")
                    }
                    DialerEvent::Held { campaign, reason } => {
                        println!("{campaign}\theld\t{reason}")
                    }
                }
            }
        });
        dialer.run(stop_rx, a.until_idle).await?;
        drop(dialer);
        printer.abort();
        Ok(())
    })
}

/// How often a node's console re-reads the queues and the logged-in agents' accounts.
const CONSOLE_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the agent desk with the tenant's queues, the registrar's accounts from the agents'
/// SIP phones, and the console server (over HTTPS with `tls`: `admin_api::tls::server_config`).
pub async fn start_console(
    store: &Arc<bot_runtime::store::Store>,
    runtime: &Runtime,
    tenant: &str,
    addr: SocketAddr,
    webrtc_ip: IpAddr,
    metrics: Arc<bot_runtime::metrics::Metrics>,
    tls: Option<Arc<admin_api::tls::ServerConfig>>,
) -> anyhow::Result<()> {
    let queues = store.queues(tenant).await?;
    if queues.is_empty() {
        eprintln!(
            "note: tenant {tenant:?} has no queues (`callbot queues set`): transfers will take the flows' fallback"
        );
    }
    let desk = Desk::start(queues, Arc::new(runtime.clone())).context("starting the agent desk")?;
    runtime.set_desk(desk.clone());
    runtime.set_registrar_accounts("callbot", store.sip_accounts().await?);
    let mut cfg = ConsoleConfig {
        default_tenant: tenant.to_string(),
        secure_cookie: tls.is_some(),
        ..ConsoleConfig::default()
    };
    cfg.webrtc.host_ips = vec![webrtc_ip];
    let console = Console::with_metrics(store.clone(), desk, cfg, metrics);
    // Changes other nodes make in the store (queues, agents' accounts) reach this one.
    console.spawn_sync(CONSOLE_SYNC_INTERVAL);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the console on {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "agent console on {scheme}://{local}/agent, admin API on {scheme}://{local}/api/v1 (OpenAPI: /api/v1/openapi.json), metrics on /metrics"
    );
    tokio::spawn(async move {
        let served = match tls {
            Some(config) => console.serve_tls(listener, config).await,
            None => console.serve(listener).await,
        };
        if let Err(e) = served {
            eprintln!("the console server stopped: {e}");
        }
    });
    Ok(())
}
