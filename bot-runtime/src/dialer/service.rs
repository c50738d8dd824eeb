//! The dialer node: runs every running campaign's leads through the rule engine and dials them
//! through the call server ([`Runtime`]), with leases so that any number of nodes can share one
//! database.
//!
//! One loop per node, every `poll`:
//! 1. renew the leases of the leads this node is working on (every third of the lease);
//! 2. for each running campaign: room = the campaign's `max_concurrent` minus the leads leased
//!    by all nodes, capped by this node's own capacity; claim that many due leads;
//! 3. each claimed lead runs in a task: close attempts a dead node left open (`interrupted`),
//!    read its attempt history, ask [`rules::next_dial`]; a `Wait` or `Stop` is stored with its
//!    reason and the lease is released; a `Dial` waits for the trunk's calls-per-second cap, opens
//!    the dial transaction ([`Store::begin_dial`]: lease, DNC, attempt and decision), sends the
//!    INVITE, commits, runs the call, maps its record to a disposition, asks the rules when (or
//!    whether) to call again, and stores both ([`Store::finish_attempt`]);
//! 4. a campaign with no lead left ready and none leased is marked `finished`.
//!
//! Opt-outs said during a call are written to the tenant's DNC list the moment the flow asks
//! (`LiveEvent::DncRequested`), while the call goes on; callbacks the flow schedules become the
//! lead's callback time (the flow's local time, read in the lead's first timezone).
//!
//! At start the node takes back what a previous process with the same node id left
//! ([`Store::recover_node`]): node ids must be unique among running processes.
//!
//! **Human and blended campaigns** ([`super::human`]). A human campaign is paced by its
//! [`Pacer`] (progressive 1:1 by default) fed with the live state of the agent desk this node
//! runs ([`Dialer::set_desk`], or the one given to the [`Runtime`]): the ready and busy agents
//! of the campaign's `queue`, and this node's calls of the campaign that ring or wait for an
//! agent. Its answered calls go straight to the queue (the built-in [`human::human_flow`]) and
//! wait at most [`human::HUMAN_MAX_WAIT`] for an agent; then the safe-harbour message plays
//! and the attempt is `abandoned`. Without a desk, or with no such queue on it, a human
//! campaign is not dialed (logged once). Blended campaigns are paced by capacity like robot
//! campaigns. For both, every live answer and abandon is fed to the campaign's pacer and added
//! to the campaign's 30-day abandon ledger in the store ([`Store::record_abandons`]), which a
//! node reads when it starts pacing the campaign and re-reads every [`LEDGER_REFRESH`]
//! ([`Pacer::rebase`]): a restart does not reset the rate, and nodes share it. Each node paces
//! with its own desk's agents.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use dialog_flows::Flow;
use tokio::sync::{mpsc, watch};

use crate::agents::desk::Desk;
use crate::call::LiveEvent;
use crate::dialer::campaign::CampaignSettings;
use crate::dialer::db::CampaignKind;
use crate::dialer::db::{
    Campaign, CampaignStatus, ClaimedLead, Decision, DialStart, DncEntry, LeadUpdate, NewAttempt,
};
use crate::dialer::dnc::{DncIndex, DncSet, Scope};
use crate::dialer::human::{self, CallTrack, LiveCounts};
use crate::dialer::pacing::{CpsLimiter, Pacer, PacingMode, PacingState};
use crate::dialer::phone;
use crate::dialer::rules::{self, Attempt, LeadState, Verdict};
use crate::dialer::trunk::{self, Admit, TrunkHealth};
use crate::durable;
use crate::record::CallRecord;
use crate::runtime::{Dial, Runtime};
use crate::store::{Store, StoreError};

/// Settings of a dialer node.
#[derive(Debug, Clone)]
pub struct DialerConfig {
    /// This node's id (unique among running nodes).
    pub node: String,
    /// How long a claim holds a lead without renewal.
    pub lease: Duration,
    /// How often campaigns are looked at.
    pub poll: Duration,
    /// The most calls this node runs at once.
    pub max_calls: u32,
    /// The actor named in the audit log for opt-outs said in calls.
    pub actor: String,
}

impl DialerConfig {
    pub fn new(node: &str) -> Self {
        DialerConfig {
            node: node.to_string(),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            max_calls: 64,
            actor: "robot".into(),
        }
    }
}

/// What the dialer reports as it works (for the CLI and tests).
#[derive(Debug, Clone)]
pub enum DialerEvent {
    /// A lead was dialed.
    Dialed {
        campaign: String,
        phone: String,
        attempt: String,
    },
    /// An attempt ended.
    Finished {
        campaign: String,
        phone: String,
        disposition: String,
        next: String,
    },
    /// A lead was not dialed: `verdict` is `wait`, `stop` or `blocked`.
    Skipped {
        campaign: String,
        phone: String,
        verdict: String,
        reason: String,
    },
    /// A campaign has no lead left to dial.
    CampaignFinished { tenant: String, campaign: String },
    /// A human campaign is not dialed, and why (no agent desk on this node, no such queue);
    /// sent once per reason.
    Held { campaign: String, reason: String },
}

/// See the module docs.
pub struct Dialer {
    store: Arc<Store>,
    rt: Runtime,
    cfg: DialerConfig,
    flows: Mutex<HashMap<(String, String, u32), Arc<Flow>>>,
    limiters: Mutex<HashMap<String, CpsLimiter>>,
    /// Each trunk's breaker, by address.
    trunks: Mutex<HashMap<String, TrunkHealth>>,
    active: Arc<AtomicU32>,
    t0: Instant,
    events: Option<mpsc::UnboundedSender<DialerEvent>>,
    /// Campaigns whose settings were refused, so the error is logged once.
    bad: Mutex<HashMap<(String, String), String>>,
    /// The DNC lists in memory (reloaded every [`DNC_RELOAD`], plus this node's own opt-outs):
    /// a fast pre-filter that spares a dial transaction for a listed number. The database check
    /// in [`Store::begin_dial`] stays the authority (entries added elsewhere since the last
    /// reload are caught there).
    dnc: std::sync::RwLock<DncIndex>,
    /// The pacers of the human and blended campaigns this node dials.
    pacers: Mutex<HashMap<(String, String), Arc<CampaignPacing>>>,
}

/// How often a node reloads the DNC lists into memory.
const DNC_RELOAD: Duration = Duration::from_secs(300);

/// How often a paced campaign's 30-day abandon window is re-read from the store.
pub const LEDGER_REFRESH: Duration = Duration::from_secs(60);

/// A human or blended campaign's pacing on this node.
struct CampaignPacing {
    pacer: Mutex<(Pacer, Instant)>,
    counts: Arc<Mutex<LiveCounts>>,
    /// Why it is not dialed now (logged once per reason).
    held: Mutex<Option<String>>,
}

impl Dialer {
    pub fn new(
        store: Arc<Store>,
        rt: Runtime,
        cfg: DialerConfig,
        events: Option<mpsc::UnboundedSender<DialerEvent>>,
    ) -> Arc<Dialer> {
        Arc::new(Dialer {
            store,
            rt,
            cfg,
            flows: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
            trunks: Mutex::new(HashMap::new()),
            active: Arc::new(AtomicU32::new(0)),
            t0: Instant::now(),
            events,
            bad: Mutex::new(HashMap::new()),
            dnc: std::sync::RwLock::new(DncIndex::new()),
            pacers: Mutex::new(HashMap::new()),
        })
    }

    /// The agent desk human campaigns pace against and transfer to (also the [`Runtime`]'s, for
    /// the flows' transfers). Without one, the runtime's desk if it has one; with neither, human
    /// campaigns are not dialed.
    pub fn set_desk(&self, desk: Desk) {
        self.rt.set_desk(desk);
    }

    /// A human or blended campaign's live answers and abandons over its 30-day window, as
    /// this node's pacer has them (`None`: this node has not paced the campaign).
    pub fn abandon_window(
        &self,
        tenant: &str,
        campaign: &str,
    ) -> Option<crate::dialer::pacing::AbandonLedger> {
        let pacers = self.pacers.lock().unwrap_or_else(|e| e.into_inner());
        let p = pacers.get(&(tenant.to_string(), campaign.to_string()))?;
        let window = p.pacer.lock().unwrap_or_else(|e| e.into_inner()).0.window();
        Some(window)
    }

    /// The pacing of a human or blended campaign: made on first use from the store's 30-day
    /// ledger, re-read every [`LEDGER_REFRESH`].
    async fn pacing(
        &self,
        c: &Campaign,
        mode: PacingMode,
    ) -> Result<Arc<CampaignPacing>, StoreError> {
        let key = (c.tenant.clone(), c.id.clone());
        let existing = self
            .pacers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(p) = existing {
            let stale = {
                let mut g = p.pacer.lock().unwrap_or_else(|e| e.into_inner());
                if g.0.mode() != mode {
                    g.0.set_mode(mode);
                }
                g.1.elapsed() >= LEDGER_REFRESH
            };
            if stale {
                let window = self
                    .store
                    .abandon_window(&c.tenant, &c.id, Utc::now())
                    .await?;
                let mut g = p.pacer.lock().unwrap_or_else(|e| e.into_inner());
                g.0.rebase(window);
                g.1 = Instant::now();
            }
            return Ok(p);
        }
        let window = self
            .store
            .abandon_window(&c.tenant, &c.id, Utc::now())
            .await?;
        tracing::info!(
            campaign = %c.id, live_answered = window.live_answered, abandoned = window.abandoned,
            rate = window.rate(), "pacing the campaign; its 30-day abandon ledger read"
        );
        let p = Arc::new(CampaignPacing {
            pacer: Mutex::new((Pacer::new(mode, window), Instant::now())),
            counts: Arc::new(Mutex::new(LiveCounts::default())),
            held: Mutex::new(None),
        });
        Ok(self
            .pacers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(p)
            .clone())
    }

    /// How many calls a human campaign may place now; `None` with no desk or no such queue
    /// (the reason logged and sent once).
    async fn human_room(&self, c: &Campaign, queue: &str, pacing: &CampaignPacing) -> Option<u32> {
        let hold = |why: String| {
            let mut held = pacing.held.lock().unwrap_or_else(|e| e.into_inner());
            if held.as_deref() != Some(why.as_str()) {
                tracing::warn!(campaign = %c.id, reason = %why, "human campaign not dialing");
                self.emit(DialerEvent::Held {
                    campaign: c.id.clone(),
                    reason: why.clone(),
                });
                *held = Some(why);
            }
            None
        };
        let Some(desk) = self.rt.desk() else {
            return hold(
                "no agent desk runs on this node (start the dialer with the agent console): \
                 a human campaign never dials without agents to take its calls"
                    .into(),
            );
        };
        let snapshot = match desk.snapshot().await {
            Ok(s) => s,
            Err(e) => return hold(format!("the agent desk does not answer: {e}")),
        };
        let Some((ready, busy)) = human::queue_agents(&snapshot, queue) else {
            return hold(format!(
                "the agent desk has no queue `{queue}` (`callbot queues set`)"
            ));
        };
        let counts = *pacing.counts.lock().unwrap_or_else(|e| e.into_inner());
        let state = PacingState {
            agents_ready: ready,
            agents_busy: &busy,
            calls_ringing: counts.ringing,
            calls_waiting: counts.waiting,
            calls_in_progress: counts.in_progress,
        };
        let n = pacing
            .pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .calls_to_place(self.t0.elapsed(), &state);
        if pacing
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
        {
            tracing::info!(campaign = %c.id, "human campaign dialing again");
        }
        Some(n)
    }

    fn emit(&self, e: DialerEvent) {
        use crate::metrics::{CampaignLabel, CampaignResultLabel};
        let m = &self.rt.engines().metrics;
        match &e {
            DialerEvent::Dialed { campaign, .. } => {
                m.dials
                    .get_or_create(&CampaignLabel {
                        campaign: campaign.clone(),
                    })
                    .inc();
            }
            DialerEvent::Finished {
                campaign,
                disposition,
                ..
            } => {
                m.attempts_finished
                    .get_or_create(&CampaignResultLabel {
                        campaign: campaign.clone(),
                        result: disposition.clone(),
                    })
                    .inc();
            }
            DialerEvent::Skipped {
                campaign, verdict, ..
            } => {
                m.leads_skipped
                    .get_or_create(&CampaignResultLabel {
                        campaign: campaign.clone(),
                        result: verdict.clone(),
                    })
                    .inc();
            }
            DialerEvent::CampaignFinished { .. } | DialerEvent::Held { .. } => {}
        }
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    /// Calls in progress on this node.
    pub fn active_calls(&self) -> u32 {
        self.active.load(Ordering::SeqCst)
    }

    /// Runs until `stop` becomes true (then waits for the calls in progress), or, with
    /// `until_idle`, until no running campaign has a lead left to dial (now or later) and no call
    /// is in progress.
    pub async fn run(
        self: &Arc<Self>,
        mut stop: watch::Receiver<bool>,
        until_idle: bool,
    ) -> Result<(), StoreError> {
        let (released, closed) = self.store.recover_node(&self.cfg.node, Utc::now()).await?;
        if released + closed > 0 {
            tracing::warn!(
                node = %self.cfg.node,
                released, closed,
                "took back the leases and open attempts of an earlier process with this node id"
            );
        }
        // When the leases were last renewed; a failed renewal is tried again at every poll.
        let mut last_renew = Instant::now();
        let mut renew_failing = false;
        // Whether the recordings disk holds dialing back (see `Runtime::recordings_blocked`).
        let mut disk_full = false;
        let mut last_sweep: Option<Instant> = None;
        let mut last_dnc_load: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let now = Utc::now();
            if renew_failing || last_renew.elapsed() >= self.cfg.lease / 3 {
                match self.store.renew_leases(&self.cfg.node, self.lease()).await {
                    Ok(_) => {
                        if renew_failing {
                            tracing::warn!("the database is back: leases renewed, dialing resumes");
                        }
                        renew_failing = false;
                        last_renew = Instant::now();
                    }
                    Err(e) => {
                        if !renew_failing {
                            tracing::error!(error = %e, "could not renew leases: no new dials until the database answers");
                        }
                        renew_failing = true;
                        self.rt.engines().metrics.error("dialer");
                    }
                }
            }
            // A call dialed now could not be recorded: wait for space (calls in progress go
            // on, and their recordings wait in memory for it).
            let disk_blocked = self.rt.recordings_blocked();
            match (&disk_blocked, disk_full) {
                (Some(why), false) => {
                    tracing::error!(reason = %why, "the recordings disk is full: no new dials until there is space");
                    self.rt.engines().metrics.recordings_disk_full.set(1);
                    self.rt.engines().metrics.error("dialer");
                }
                (None, true) => {
                    tracing::warn!("the recordings disk has space again: dialing resumes");
                    self.rt.engines().metrics.recordings_disk_full.set(0);
                }
                _ => {}
            }
            disk_full = disk_blocked.is_some();
            // Claiming needs this node's leases to be current: a claim releases the leases that
            // ran out, and one of ours that ran out during an outage is a call still in
            // progress here, which must not be closed and dialed again.
            if renew_failing || disk_full {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            if last_sweep.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                match self.store.sweep_dnc(now).await {
                    Ok(expired) => {
                        for e in expired {
                            tracing::info!(list = %e.tenant, phone = %e.phone, "DNC entry expired and lifted");
                            let _ = self
                                .store
                                .audit(
                                    if e.tenant == crate::dialer::db::GLOBAL {
                                        "default"
                                    } else {
                                        &e.tenant
                                    },
                                    "system",
                                    "dnc.expired",
                                    &e.phone,
                                    serde_json::json!({"list": e.tenant, "reason": e.reason}),
                                )
                                .await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not sweep expired DNC entries");
                        self.rt.engines().metrics.error("dialer");
                    }
                }
                last_sweep = Some(Instant::now());
            }
            if last_dnc_load.is_none_or(|t| t.elapsed() >= DNC_RELOAD) {
                match self.load_dnc(now).await {
                    Ok(n) => tracing::info!(entries = n, "DNC lists loaded into memory"),
                    Err(e) => {
                        tracing::error!(error = %e, "could not load the DNC lists");
                        self.rt.engines().metrics.error("dialer");
                    }
                }
                last_dnc_load = Some(Instant::now());
            }
            let mut busy = false;
            let campaigns = match self.store.running_campaigns().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "could not list running campaigns");
                    self.rt.engines().metrics.error("dialer");
                    // Not idle: what is left to dial is unknown.
                    busy = true;
                    Vec::new()
                }
            };
            for c in campaigns {
                match self.tick_campaign(&c).await {
                    Ok(has_work) => busy |= has_work,
                    Err(e) => {
                        busy = true;
                        tracing::error!(campaign = %c.id, error = %e, "dialer step failed");
                        self.rt.engines().metrics.error("dialer");
                    }
                }
            }
            if until_idle && !busy && self.active_calls() == 0 {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = stop.changed() => {}
            }
        }
        // Let the calls in progress end (their records and attempts are written as they do).
        while self.active_calls() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Rebuilds the in-memory DNC index from the database; returns the number of entries.
    async fn load_dnc(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let all = self.store.dnc_all(now).await?;
        let n = all.len();
        let mut by_list: HashMap<String, Vec<(u64, Option<i64>)>> = HashMap::new();
        for (list, number, expires) in all {
            if let Some(key) = phone::key(&number) {
                by_list.entry(list).or_default().push((key, expires));
            }
        }
        let mut index = DncIndex::new();
        for (list, entries) in by_list {
            let set = DncSet::build(entries);
            if list == crate::dialer::db::GLOBAL {
                index.set_global(set);
            } else {
                index.set_tenant(&list, set);
            }
        }
        *self.dnc.write().unwrap_or_else(|e| e.into_inner()) = index;
        Ok(n)
    }

    fn dnc_listed(&self, tenant: &str, number: &str, now: DateTime<Utc>) -> bool {
        phone::key(number).is_some_and(|key| {
            self.dnc
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .blocked(tenant, key, now.timestamp())
        })
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cfg.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    fn settings(&self, c: &Campaign) -> Option<CampaignSettings> {
        match CampaignSettings::from_value(&c.settings)
            .and_then(|s| s.check_kind(c.kind).map(|()| s))
        {
            Ok(s) => {
                self.bad
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(c.tenant.clone(), c.id.clone()));
                Some(s)
            }
            Err(e) => {
                let mut bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
                if bad
                    .insert((c.tenant.clone(), c.id.clone()), e.clone())
                    .as_ref()
                    != Some(&e)
                {
                    tracing::error!(campaign = %c.id, error = %e, "campaign settings refused; not dialing it");
                }
                None
            }
        }
    }

    async fn flow(&self, c: &Campaign) -> Result<Option<Arc<Flow>>, StoreError> {
        let key = (c.tenant.clone(), c.flow.clone(), c.flow_version);
        if let Some(f) = self.cached_flow(&key) {
            return Ok(Some(f));
        }
        let Some(src) = self
            .store
            .flow_source(&c.tenant, &c.flow, c.flow_version)
            .await?
        else {
            tracing::error!(campaign = %c.id, flow = %c.flow, "the campaign's flow version is not stored");
            return Ok(None);
        };
        let file = std::path::PathBuf::from(format!("{}@v{}", c.flow, c.flow_version));
        match dialog_flows::load_str(&src, &file) {
            Ok(f) => Ok(self.prepare(c, key, Arc::new(f)).await),
            Err(e) => {
                tracing::error!(campaign = %c.id, error = %e, "the campaign's flow does not load");
                Ok(None)
            }
        }
    }

    fn cached_flow(&self, key: &(String, String, u32)) -> Option<Arc<Flow>> {
        self.flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The built-in flow of a human campaign's calls ([`human::human_flow`]), its message
    /// naming the bank of the campaign's own flow.
    async fn human_flow(&self, c: &Campaign, queue: &str) -> Result<Option<Arc<Flow>>, StoreError> {
        let key = (
            c.tenant.clone(),
            format!("{}/{}/{}/{queue}", human::HUMAN_FLOW, c.flow, c.id),
            c.flow_version,
        );
        if let Some(f) = self.cached_flow(&key) {
            return Ok(Some(f));
        }
        let stored = self
            .store
            .flow_source(&c.tenant, &c.flow, c.flow_version)
            .await?
            .and_then(|src| dialog_flows::load_str(&src, std::path::Path::new(&c.flow)).ok());
        let bank = human::bank_name(stored.as_ref());
        match human::human_flow(&c.id, queue, &bank) {
            Ok(f) => Ok(self.prepare(c, key, Arc::new(f)).await),
            Err(e) => {
                tracing::error!(campaign = %c.id, error = %e, "no flow for the human campaign's calls");
                Ok(None)
            }
        }
    }

    /// Campaign start: the flow's NLU and its static prompts, before the first call; then the
    /// flow is kept for the campaign's calls.
    async fn prepare(
        &self,
        c: &Campaign,
        key: (String, String, u32),
        f: Arc<Flow>,
    ) -> Option<Arc<Flow>> {
        let engines = self.rt.engines().clone();
        let f2 = f.clone();
        let started = Instant::now();
        let prepared = tokio::task::spawn_blocking(move || {
            engines.flow_nlu(&f2)?;
            engines.prerender_flow(&f2)
        })
        .await;
        match prepared {
            Ok(Ok(n)) => tracing::info!(
                campaign = %c.id, flow = %f.name, prompts = n,
                ms = started.elapsed().as_millis() as u64,
                "flow prepared: NLU trained, static prompts rendered"
            ),
            Ok(Err(e)) => {
                tracing::error!(campaign = %c.id, error = %e, "the campaign's flow cannot be prepared");
                return None;
            }
            Err(e) => {
                tracing::error!(campaign = %c.id, error = %e, "preparing the flow failed");
                return None;
            }
        }
        self.flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, f.clone());
        Some(f)
    }

    /// One look at a running campaign; returns whether it still has leads to dial (now or
    /// later) or in progress.
    async fn tick_campaign(self: &Arc<Self>, c: &Campaign) -> Result<bool, StoreError> {
        let Some(settings) = self.settings(c) else {
            return Ok(false);
        };
        let now = Utc::now();
        let load = self.store.campaign_load(&c.tenant, &c.id, now).await?;
        if !load.has_leads {
            // Started before its leads were imported: it waits for them.
            return Ok(false);
        }
        if !load.has_ready && load.leased == 0 {
            if self
                .store
                .set_campaign_status(&c.tenant, &c.id, CampaignStatus::Finished, "dialer")
                .await
                .is_ok()
            {
                tracing::info!(campaign = %c.id, "campaign finished: every lead is done");
                self.emit(DialerEvent::CampaignFinished {
                    tenant: c.tenant.clone(),
                    campaign: c.id.clone(),
                });
            }
            return Ok(false);
        }
        if !load.has_due {
            return Ok(true);
        }
        let mode = settings.pacing_for(c.kind);
        let limit = match mode {
            Some(PacingMode::Robot { max_concurrent }) => max_concurrent.min(c.max_concurrent),
            // Human campaigns: the pacer decides below, within the campaign's concurrency;
            // robot and blended campaigns without a robot pacing: the campaign's concurrency.
            _ => c.max_concurrent,
        };
        let pacing = match c.kind {
            CampaignKind::Robot => None,
            CampaignKind::Human | CampaignKind::Blended => Some(
                self.pacing(
                    c,
                    mode.unwrap_or(PacingMode::Robot {
                        max_concurrent: limit,
                    }),
                )
                .await?,
            ),
        };
        let room = u64::from(limit).saturating_sub(load.leased);
        let node_room = self.cfg.max_calls.saturating_sub(self.active_calls());
        let mut n = room.min(u64::from(node_room)) as u32;
        let queue = settings.queue.clone().unwrap_or_default();
        if c.kind == CampaignKind::Human
            && let Some(p) = &pacing
        {
            match self.human_room(c, &queue, p).await {
                Some(k) => n = n.min(k),
                // Not dialing until a desk with the queue runs here: nothing to wait for.
                None => return Ok(false),
            }
        }
        if n == 0 {
            return Ok(true);
        }
        let flow = if c.kind == CampaignKind::Human {
            self.human_flow(c, &queue).await?
        } else {
            self.flow(c).await?
        };
        let Some(flow) = flow else {
            return Ok(false);
        };
        // A trunk that stopped answering is dialed one probe call at a time (dialer::trunk).
        let probe = match self.trunk_admit(&settings) {
            Admit::Dial => false,
            Admit::Probe => {
                n = 1;
                true
            }
            Admit::Wait(_) => return Ok(true),
        };
        // Preparing a flow takes seconds: the lease starts now, not when the tick began.
        let now = Utc::now();
        let claimed = self
            .store
            .claim_leads(
                &c.tenant,
                &c.id,
                &self.cfg.node,
                settings.order,
                now,
                now + self.lease(),
                n,
            )
            .await;
        let claimed = match claimed {
            Ok(c) if !c.is_empty() || !probe => c,
            other => {
                self.probe_not_dialed(&settings);
                other?
            }
        };
        for lead in claimed {
            self.active.fetch_add(1, Ordering::SeqCst);
            let me = self.clone();
            let c = c.clone();
            let settings = settings.clone();
            let flow = flow.clone();
            // Counted by the pacer from now on (before the next look at the campaign).
            let paced = pacing
                .as_ref()
                .map(|p| (p.clone(), CallTrack::new(p.counts.clone())));
            tokio::spawn(async move {
                let phone = lead.lead.phone.clone();
                let id = lead.lead.id.clone();
                let worked = me.work(&c, &settings, flow, lead, paced).await;
                if probe && !matches!(worked, Ok(true)) {
                    me.probe_not_dialed(&settings);
                }
                if let Err(e) = worked {
                    tracing::error!(campaign = %c.id, %phone, error = %e, "dialing a lead failed; its lease is given back and it will be tried again");
                    me.rt.engines().metrics.error("dialer");
                    // Renewed with the node's other leases, it would otherwise stay leased.
                    let what = format!("lease of lead {id}");
                    if let Err(e) = durable::persist(&what, &me.rt.engines().metrics, || {
                        me.store.release_lead(&c.tenant, &c.id, &id, &me.cfg.node)
                    })
                    .await
                    {
                        tracing::error!(campaign = %c.id, %phone, error = %e, "could not give back a lead's lease");
                    }
                }
                me.active.fetch_sub(1, Ordering::SeqCst);
            });
        }
        Ok(true)
    }

    /// Runs `f` on the breaker of the settings' trunk (made on first use).
    fn with_trunk<T>(
        &self,
        settings: &CampaignSettings,
        f: impl FnOnce(&mut TrunkHealth) -> T,
    ) -> T {
        f(self
            .trunks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(settings.trunk.address.clone())
            .or_insert_with(|| trunk_health(settings)))
    }

    /// What the trunk's breaker allows now.
    fn trunk_admit(&self, settings: &CampaignSettings) -> Admit {
        let now = self.t0.elapsed();
        self.with_trunk(settings, |t| t.admit(now))
    }

    fn probe_not_dialed(&self, settings: &CampaignSettings) {
        self.with_trunk(settings, TrunkHealth::probe_not_dialed);
    }

    /// Feeds an attempt's end to its trunk's breaker; alerts when the trunk goes down or up.
    fn trunk_result(&self, settings: &CampaignSettings, disposition: &str) {
        let now = self.t0.elapsed();
        let change = self.with_trunk(settings, |t| {
            t.on_result(now, trunk::CallResult::of(disposition))
        });
        let trunk = &settings.trunk.address;
        let gauge = || {
            self.rt
                .engines()
                .metrics
                .trunk_down
                .get_or_create(&crate::metrics::TrunkLabel {
                    trunk: trunk.clone(),
                })
                .clone()
        };
        match change {
            Some(trunk::Change::Down { failures }) => {
                tracing::error!(
                    %trunk, failures, probe_secs = settings.trunk.probe_secs,
                    "the trunk is not answering ({failures} calls in a row failed: 503s or timeouts): dialing on it is paused, one probe call every {} s",
                    settings.trunk.probe_secs
                );
                self.rt.engines().metrics.error("trunk");
                gauge().set(1);
            }
            Some(trunk::Change::Up { down_for }) => {
                tracing::warn!(
                    %trunk, down_secs = down_for.as_secs(),
                    "the trunk answers again: dialing on it resumes"
                );
                gauge().set(0);
            }
            None => {}
        }
    }

    async fn wait_for_trunk(&self, settings: &CampaignSettings) {
        loop {
            let now = self.t0.elapsed();
            let wait = {
                let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
                let l = limiters
                    .entry(settings.trunk.address.clone())
                    .or_insert_with(|| CpsLimiter::new(settings.trunk.cps, settings.trunk.burst));
                if l.try_take(now) {
                    return;
                }
                l.next_free(now)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    async fn work(
        self: &Arc<Self>,
        c: &Campaign,
        settings: &CampaignSettings,
        flow: Arc<Flow>,
        claimed: ClaimedLead,
        paced: Option<(Arc<CampaignPacing>, CallTrack)>,
    ) -> Result<bool, StoreError> {
        let (pacing, track) = match paced {
            Some((p, t)) => (Some(p), Some(t)),
            None => (None, None),
        };
        let lead = &claimed.lead;
        let now = Utc::now();
        self.store
            .close_interrupted(&c.tenant, &c.id, &lead.id, now)
            .await?;
        let zones: Vec<Tz> = lead
            .timezones
            .iter()
            .filter_map(|z| phone::parse_timezone(z))
            .collect();
        let mut history = self.history(c, &lead.id).await?;
        let debt = self
            .debt_history(c, settings, lead.debt_id.as_deref(), now)
            .await?;
        let state = LeadState {
            timezones: &zones,
            attempts: &history,
            debt_attempts: &debt,
            callback: claimed.callback_at,
        };
        let verdict = rules::next_dial(&settings.rules, &state, now);
        let reason = match verdict {
            Verdict::Dial(r) => r,
            Verdict::Wait { until, reason } => {
                return self
                    .skip(
                        c,
                        lead.id.clone(),
                        &lead.phone,
                        "wait",
                        reason.rule.as_str(),
                        &reason.detail,
                        Some(until),
                        false,
                        until,
                    )
                    .await
                    .map(|()| false);
            }
            Verdict::Stop(reason) => {
                return self
                    .skip(
                        c,
                        lead.id.clone(),
                        &lead.phone,
                        "stop",
                        reason.rule.as_str(),
                        &reason.detail,
                        None,
                        true,
                        now,
                    )
                    .await
                    .map(|()| false);
            }
        };
        // The in-memory DNC index first (no transaction for a number known to be listed); the
        // entry itself is read from the database for the audit record.
        if self.dnc_listed(&c.tenant, &lead.phone, now)
            && let Some(entry) = self.store.dnc_check(&c.tenant, &lead.phone, now).await?
        {
            return self
                .blocked(c, lead.id.clone(), &lead.phone, &entry, now)
                .await
                .map(|()| false);
        }
        self.wait_for_trunk(settings).await;
        let target = match telephony::sip::Uri::parse(&settings.trunk.uri(&lead.phone)) {
            Ok(u) => u,
            Err(e) => {
                return self
                    .skip(
                        c,
                        lead.id.clone(),
                        &lead.phone,
                        "stop",
                        "invalid_number",
                        &format!("cannot make a SIP URI: {e}"),
                        None,
                        true,
                        now,
                    )
                    .await
                    .map(|()| false);
            }
        };
        let next_hop = match settings.trunk.socket_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(campaign = %c.id, error = %e, "bad trunk");
                return Ok(false);
            }
        };
        let attempt = NewAttempt {
            id: uuid::Uuid::new_v4().to_string(),
            campaign: c.id.clone(),
            lead: lead.id.clone(),
            debt_id: lead.debt_id.clone(),
            phone: lead.phone.clone(),
            node: self.cfg.node.clone(),
            started_at: Utc::now(),
            rule: reason.rule.as_str().to_string(),
            detail: reason.detail.clone(),
        };
        let tx = match self.store.begin_dial(&c.tenant, &attempt).await? {
            DialStart::Dial(tx) => tx,
            DialStart::LeaseLost => {
                tracing::warn!(campaign = %c.id, phone = %lead.phone, "lease lost before dialing; another node has the lead");
                return Ok(false);
            }
            DialStart::Blocked(entry) => {
                return self
                    .blocked(c, lead.id.clone(), &lead.phone, &entry, now)
                    .await
                    .map(|()| false);
            }
        };
        // The call: its live events carry the flow's opt-outs and callbacks.
        let (live_tx, mut live_rx) = mpsc::unbounded_channel::<LiveEvent>();
        let mut data = lead.fields.clone();
        data.entry("phone".to_string())
            .or_insert_with(|| serde_json::Value::String(lead.phone.clone()));
        if let Some(name) = &lead.name {
            data.entry("name".to_string())
                .or_insert_with(|| serde_json::Value::String(name.clone()));
        }
        let dial = Dial {
            target,
            next_hop,
            flow,
            lead: data,
            lead_id: Some(lead.id.clone()),
            campaign: Some(c.id.clone()),
            phone: lead.phone.clone(),
            caller_id: c.caller_id.clone(),
            amd: settings.amd,
            live: Some(live_tx),
        };
        let mut placed = self.rt.place(dial).await;
        if let Err(e) = tx.commit().await {
            tracing::error!(error = %e, "could not commit the attempt after sending the INVITE");
            self.rt.engines().metrics.error("dialer");
        }
        if c.kind == CampaignKind::Human {
            // The safe harbour: no agent within it, the message.
            placed.limit_transfer_wait(human::HUMAN_MAX_WAIT);
        }
        if let Some(p) = &pacing {
            p.pacer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .on_event(
                    self.t0.elapsed(),
                    crate::dialer::pacing::PacingEvent::Dialed,
                );
        }
        self.emit(DialerEvent::Dialed {
            campaign: c.id.clone(),
            phone: lead.phone.clone(),
            attempt: attempt.id.clone(),
        });
        let store = self.store.clone();
        let tenant = c.tenant.clone();
        let phone_no = lead.phone.clone();
        let actor = self.cfg.actor.clone();
        let me = self.clone();
        let listener = tokio::spawn(async move {
            let dnc_index = &me.dnc;
            let mut opted_out = None;
            let mut callback = None;
            let mut track = track;
            while let Some(ev) = live_rx.recv().await {
                if let Some(t) = &mut track {
                    match &ev {
                        LiveEvent::Queued { .. } => t.on_queued(),
                        LiveEvent::AgentConnected { .. } => t.on_connected(),
                        LiveEvent::Bot { .. } | LiveEvent::Customer { .. } => t.on_answered(),
                        LiveEvent::Amd { verdict, .. } if verdict == "machine" => t.on_answered(),
                        _ => {}
                    }
                }
                match ev {
                    LiveEvent::DncRequested { call, reason } => {
                        let entry = DncEntry {
                            tenant: tenant.clone(),
                            phone: phone_no.clone(),
                            reason: reason.clone(),
                            source: format!("call:{call}"),
                            added_by: actor.clone(),
                            added_at: Utc::now(),
                            expires_at: None,
                        };
                        if let Some(key) = phone::key(&phone_no) {
                            dnc_index.write().unwrap_or_else(|e| e.into_inner()).insert(
                                Scope::Tenant(&tenant),
                                key,
                                None,
                            );
                        }
                        let entries = [entry];
                        let what = format!("opt-out said in call {call}");
                        match durable::persist(&what, &me.rt.engines().metrics, || {
                            store.add_dnc(&entries)
                        })
                        .await
                        {
                            Ok(()) => {
                                let _ = store
                                    .audit(
                                        &tenant,
                                        &actor,
                                        "dnc.add",
                                        &phone_no,
                                        serde_json::json!({"reason": reason, "call": call}),
                                    )
                                    .await;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "could not store an opt-out said in a call");
                                me.rt.engines().metrics.error("dialer");
                            }
                        }
                        opted_out = Some(reason);
                    }
                    LiveEvent::CallbackRequested { at, .. } => callback = at,
                    _ => {}
                }
            }
            (opted_out, callback, track)
        });
        let record = self.rt.complete(placed).await;
        let (opted_out, callback, track) = listener.await.unwrap_or((None, None, None));
        if let Some(p) = &pacing {
            let (queued, connected) = track
                .as_ref()
                .map_or((false, false), |t| (t.queued, t.connected));
            let ledger = human::ledger_entry(c.kind, &record, queued, connected);
            let at = record.answered_at.unwrap_or(record.ended_at);
            let what = format!("abandon ledger entry of call {}", record.id);
            if let Err(e) = durable::persist(&what, &self.rt.engines().metrics, || {
                self.store.record_abandons(&c.tenant, &c.id, at, ledger)
            })
            .await
            {
                tracing::error!(campaign = %c.id, error = %e, "could not add the call to the abandon ledger");
                self.rt.engines().metrics.error("dialer");
            }
            let mut g = p.pacer.lock().unwrap_or_else(|e| e.into_inner());
            for ev in human::pacing_events(&record, ledger) {
                g.0.on_event(self.t0.elapsed(), ev);
            }
            if ledger.abandoned > 0 {
                tracing::info!(
                    campaign = %c.id, phone = %lead.phone, rate_30d = g.0.abandon_rate(),
                    "a live answer was abandoned"
                );
            }
        }
        drop(track);
        let disposition = disposition_of(&record, opted_out.is_some(), callback.is_some());
        self.trunk_result(settings, &disposition);
        let callback_at = callback.and_then(|local| {
            let tz = zones.first().copied().unwrap_or(Tz::UTC);
            tz.from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        });
        history.push(Attempt {
            at: attempt.started_at,
            disposition: disposition.clone(),
        });
        let ended = Utc::now();
        // From the INVITE on, every read and write waits out a database outage: an error here
        // would leave the attempt open, to be closed `interrupted` and dialed again.
        let what = format!("debt history for attempt {}", attempt.id);
        let debt = durable::persist(&what, &self.rt.engines().metrics, || {
            self.debt_history(c, settings, lead.debt_id.as_deref(), ended)
        })
        .await?;
        let state = LeadState {
            timezones: &zones,
            attempts: &history,
            debt_attempts: &debt,
            callback: callback_at,
        };
        let update = match rules::next_dial(&settings.rules, &state, ended) {
            Verdict::Dial(r) => LeadUpdate {
                done: false,
                next_at: ended,
                reason: r.to_string(),
                callback_at,
            },
            Verdict::Wait { until, reason } => LeadUpdate {
                done: false,
                next_at: until,
                reason: reason.to_string(),
                callback_at,
            },
            Verdict::Stop(r) => LeadUpdate {
                done: true,
                next_at: ended,
                reason: r.to_string(),
                callback_at,
            },
        };
        let what = format!("outcome of attempt {}", attempt.id);
        let held = durable::persist(&what, &self.rt.engines().metrics, || {
            self.store.finish_attempt(
                &c.tenant,
                &c.id,
                &lead.id,
                &attempt.id,
                &self.cfg.node,
                &disposition,
                record.ended_at,
                Some(&record.id),
                &update,
            )
        })
        .await?;
        if !held {
            tracing::warn!(campaign = %c.id, phone = %lead.phone, "the lead's lease ran out during the call; its new owner decides what is next");
        }
        self.emit(DialerEvent::Finished {
            campaign: c.id.clone(),
            phone: lead.phone.clone(),
            disposition,
            next: update.reason,
        });
        Ok(true)
    }

    async fn history(&self, c: &Campaign, lead: &str) -> Result<Vec<Attempt>, StoreError> {
        Ok(self
            .store
            .lead_attempts(&c.tenant, &c.id, lead)
            .await?
            .into_iter()
            .filter_map(|a| {
                Some(Attempt {
                    at: a.started_at,
                    disposition: a.disposition?,
                })
            })
            .collect())
    }

    async fn debt_history(
        &self,
        c: &Campaign,
        settings: &CampaignSettings,
        debt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        match (debt, &settings.rules.debt_cap) {
            (Some(d), Some(cap)) => {
                let since = now - chrono::Duration::days(i64::from(cap.days));
                self.store.debt_attempts(&c.tenant, d, since).await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Records a dial refused by a DNC entry. A listing that expires lets the lead be tried
    /// again then.
    async fn blocked(
        &self,
        c: &Campaign,
        lead: String,
        phone: &str,
        entry: &DncEntry,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let list = if entry.tenant == crate::dialer::db::GLOBAL {
            "global"
        } else {
            "tenant"
        };
        let detail = format!(
            "on the {list} do-not-call list since {} ({}, source {})",
            entry.added_at.format("%Y-%m-%d %H:%M:%S UTC"),
            entry.reason,
            entry.source
        );
        let (done, next) = match entry.expires_at {
            Some(t) => (false, t),
            None => (true, now),
        };
        self.skip(
            c,
            lead,
            phone,
            "blocked",
            "dnc",
            &detail,
            entry.expires_at,
            done,
            next,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn skip(
        &self,
        c: &Campaign,
        lead: String,
        phone: &str,
        verdict: &str,
        rule: &str,
        detail: &str,
        until: Option<DateTime<Utc>>,
        done: bool,
        next_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let reason = format!("{rule}: {detail}");
        let decision = Decision {
            at: Utc::now(),
            campaign: c.id.clone(),
            lead,
            phone: phone.to_string(),
            verdict: verdict.to_string(),
            rule: rule.to_string(),
            detail: detail.to_string(),
            until,
            node: self.cfg.node.clone(),
            attempt: None,
        };
        self.store
            .defer_lead(
                &c.tenant,
                &decision,
                &LeadUpdate {
                    done,
                    next_at,
                    reason: reason.clone(),
                    callback_at: None,
                },
            )
            .await?;
        self.emit(DialerEvent::Skipped {
            campaign: c.id.clone(),
            phone: phone.to_string(),
            verdict: verdict.to_string(),
            reason,
        });
        Ok(())
    }
}

/// The attempt's disposition from the call's record: the network's answer when there was no
/// answer; for answered calls, the machine verdict, then what the flow did (an opt-out, a
/// callback, an outcome), else `answered` (the customer hung up before any outcome).
fn trunk_health(settings: &CampaignSettings) -> TrunkHealth {
    TrunkHealth::new(
        settings.trunk.trip_after,
        Duration::from_secs(settings.trunk.probe_secs),
    )
}

pub fn disposition_of(record: &CallRecord, opted_out: bool, callback: bool) -> String {
    match record.disposition.as_str() {
        "answered" => {}
        "cancelled" => return "no_answer".into(),
        other => return other.to_string(),
    }
    if record.amd.as_deref() == Some("machine") {
        return "machine".into();
    }
    if opted_out {
        return "opted_out".into();
    }
    if callback {
        return "callback".into();
    }
    if record.legs.iter().any(|l| l.kind == "agent") {
        return "transferred".into();
    }
    if record.flow == human::HUMAN_FLOW
        && record.outcome.as_deref() == Some(human::ABANDONED_OUTCOME)
    {
        // A human campaign's live answer that no agent took within the safe harbour.
        return "abandoned".into();
    }
    match record.outcome.as_deref() {
        // The interpreter's own endings: the customer hung up before any outcome; a message was
        // left on a machine.
        Some("hung_up") | None => "answered".into(),
        Some("voicemail_left") => "machine".into(),
        Some(o) if o.starts_with("cold_transferred:") => "transferred".into(),
        Some("wrong_party") => "wrong_party".into(),
        Some("runtime_error" | "lead_error") => "network_error".into(),
        Some(_) => "completed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Direction;

    #[test]
    fn dispositions() {
        let mut r = CallRecord::new(Direction::Outbound, "+15551234567", Utc::now());
        r.disposition = "busy".into();
        assert_eq!(disposition_of(&r, false, false), "busy");
        r.disposition = "cancelled".into();
        assert_eq!(disposition_of(&r, false, false), "no_answer");
        r.disposition = "answered".into();
        assert_eq!(disposition_of(&r, false, false), "answered");
        r.outcome = Some("hung_up".into());
        assert_eq!(disposition_of(&r, false, false), "answered");
        r.outcome = Some("voicemail_left".into());
        assert_eq!(disposition_of(&r, false, false), "machine");
        r.outcome = Some("promise_to_pay".into());
        assert_eq!(disposition_of(&r, false, false), "completed");
        assert_eq!(disposition_of(&r, false, true), "callback");
        assert_eq!(disposition_of(&r, true, true), "opted_out");
        r.amd = Some("machine".into());
        assert_eq!(disposition_of(&r, true, false), "machine");
    }
}
