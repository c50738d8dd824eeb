//! The shared media scheduler: a few worker threads (one per core), each owning many sessions.
//!
//! A worker divides the 20 ms packet period into [`SLOTS`] slots 1 ms apart and places each new
//! session in its least-loaded slot (the soonest among equals), so the sends of a thousand calls
//! spread evenly over the period instead of bunching on the instants their calls happened to
//! start. The worker sleeps until its next occupied slot (a futex wait with a sub-millisecond
//! timeout, which also wakes for a new session), then visits the slot in two passes: first every
//! session sends its packet, which keeps the lateness of the last send of the slot down to a few
//! send syscalls; then every session drains its socket (one `recvmmsg`, with kernel arrival
//! stamps), plays out a frame and publishes its counters. A worker that falls behind visits the
//! missed slots in order, so every session still gets one tick per 20 ms (a late tick is caught
//! up, not skipped). The workers of one process start their slots staggered by 1 ms / workers.
//!
//! Each session keeps its own socket (its port is in the call's SDP), so sends are one `sendto`
//! per packet: `sendmmsg` only batches datagrams of one socket.

use super::session::Session;
use super::{MediaError, PTIME, SchedulerConfig, SchedulerInfo, WorkerPriority};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, MultiHeaders, recvmmsg};
use nix::sys::time::TimeSpec;
use std::io::IoSliceMut;
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Slots per 20 ms period.
const SLOTS: usize = 20;
/// Datagrams taken per `recvmmsg`.
const BATCH: usize = 8;
/// Receive buffer per datagram (longer datagrams are truncated).
const BUF: usize = 2048;

fn slot_len() -> Duration {
    PTIME / SLOTS as u32
}

/// Batch receive state shared by all sessions of a worker (they are served one at a time).
pub(super) struct RecvIo {
    headers: MultiHeaders<()>,
    bufs: Box<[[u8; BUF]; BATCH]>,
    /// Length and kernel arrival stamp (since the Unix epoch) of each received datagram.
    meta: [(usize, Option<Duration>); BATCH],
}

impl RecvIo {
    fn new() -> RecvIo {
        RecvIo {
            headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
            bufs: Box::new([[0; BUF]; BATCH]),
            meta: [(0, None); BATCH],
        }
    }

    /// Most datagrams one call to [`recv`](Self::recv) takes.
    pub(super) fn capacity(&self) -> usize {
        BATCH
    }

    /// Take up to [`capacity`](Self::capacity) datagrams waiting on `fd` without blocking;
    /// returns how many (0 when none is waiting or on error).
    pub(super) fn recv(&mut self, fd: RawFd) -> usize {
        let mut iovs = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let Ok(results) = recvmmsg(
            fd,
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) else {
            return 0;
        };
        let mut n = 0;
        for msg in results {
            let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => Some(Duration::new(
                        u64::try_from(t.tv_sec()).unwrap_or(0),
                        u32::try_from(t.tv_nsec()).unwrap_or(0),
                    )),
                    _ => None,
                })
            });
            if let Some(m) = self.meta.get_mut(n) {
                *m = (msg.bytes.min(BUF), stamp);
                n += 1;
            }
        }
        n
    }

    /// Datagram `i` of the last [`recv`](Self::recv) and its arrival stamp.
    pub(super) fn datagram(&self, i: usize) -> (&[u8], Option<Duration>) {
        let (len, stamp) = self.meta[i];
        (&self.bufs[i][..len], stamp)
    }
}

/// The process-wide scheduler: where new sessions go.
struct Scheduler {
    workers: Vec<WorkerHandle>,
    info: SchedulerInfo,
}

struct WorkerHandle {
    /// Behind a mutex only so that the scheduler is `Sync` (sessions are submitted rarely).
    tx: Mutex<Sender<Box<Session>>>,
    /// Sessions the worker owns (incremented on submit, decremented when one ends).
    load: Arc<AtomicUsize>,
}

static SCHEDULER: OnceLock<Scheduler> = OnceLock::new();

/// Ask for SCHED_FIFO at `priority` on the calling thread; false if the OS refused.
fn make_realtime(priority: u8) -> bool {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let Ok(value) = priority.clamp(1, 99).try_into() else {
        return false;
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    )
    .is_ok()
}

impl Scheduler {
    fn spawn(cfg: &SchedulerConfig) -> Scheduler {
        let n = if cfg.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.workers
        }
        .clamp(1, 64);
        let base = Instant::now();
        let (ready_tx, ready_rx) = channel();
        let priority = cfg.priority;
        let workers: Vec<WorkerHandle> = (0..n)
            .filter_map(|i| {
                let (tx, rx) = channel();
                let load = Arc::new(AtomicUsize::new(0));
                let epoch = base + slot_len() * i as u32 / n as u32;
                let worker_load = load.clone();
                let ready = ready_tx.clone();
                // Built on its thread: the receive headers hold raw pointers (not `Send`).
                let spawned = std::thread::Builder::new()
                    .name(format!("media-{i}"))
                    .spawn(move || {
                        let realtime = match priority {
                            WorkerPriority::Normal => false,
                            WorkerPriority::Realtime(p) => make_realtime(p),
                        };
                        let _ = ready.send(realtime);
                        drop(ready);
                        Worker::new(rx, worker_load, epoch).run();
                    });
                match spawned {
                    Ok(_) => Some(WorkerHandle {
                        tx: Mutex::new(tx),
                        load,
                    }),
                    Err(e) => {
                        tracing::error!("media worker {i}: {e}");
                        None
                    }
                }
            })
            .collect();
        drop(ready_tx);
        let realtime_workers = ready_rx.iter().filter(|&rt| rt).count();
        if matches!(priority, WorkerPriority::Realtime(_)) && realtime_workers < workers.len() {
            tracing::warn!(
                "media workers: realtime priority refused for {} of {}",
                workers.len() - realtime_workers,
                workers.len()
            );
        }
        let info = SchedulerInfo {
            workers: workers.len(),
            realtime_workers,
        };
        Scheduler { workers, info }
    }
}

fn scheduler() -> &'static Scheduler {
    SCHEDULER.get_or_init(|| Scheduler::spawn(&SchedulerConfig::default()))
}

/// Start the scheduler with `cfg`; `None` if it had already started.
pub(super) fn configure(cfg: &SchedulerConfig) -> Option<SchedulerInfo> {
    let mut info = None;
    SCHEDULER.get_or_init(|| {
        let s = Scheduler::spawn(cfg);
        info = Some(s.info);
        s
    });
    info
}

/// The running scheduler's workers, if it has started.
pub(super) fn info() -> Option<SchedulerInfo> {
    SCHEDULER.get().map(|s| s.info)
}

/// Hand a new session to the least-loaded worker.
pub(super) fn submit(session: Session) -> Result<(), MediaError> {
    let closed = || MediaError::Io(std::io::Error::other("no media worker thread"));
    let worker = scheduler()
        .workers
        .iter()
        .min_by_key(|w| w.load.load(Ordering::Relaxed))
        .ok_or_else(closed)?;
    worker.load.fetch_add(1, Ordering::Relaxed);
    let tx = worker.tx.lock().unwrap_or_else(|e| e.into_inner());
    tx.send(Box::new(session)).map_err(|_| {
        worker.load.fetch_sub(1, Ordering::Relaxed);
        closed()
    })
}

/// The slot for a new session, given each slot's occupancy and the next slot visit: the least
/// occupied, and among those the one visited soonest.
fn pick_slot(occupancy: impl ExactSizeIterator<Item = usize>, cursor: u64) -> usize {
    let n = occupancy.len().max(1) as u64;
    let start = (cursor % n) as usize;
    occupancy
        .enumerate()
        .min_by_key(|&(k, len)| (len, (k + n as usize - start) % n as usize))
        .map_or(0, |(k, _)| k)
}

struct Worker {
    rx: Receiver<Box<Session>>,
    load: Arc<AtomicUsize>,
    /// Start of slot 0 of period 0.
    epoch: Instant,
    /// The next slot visit, counted in slots since `epoch`.
    cursor: u64,
    slots: Vec<Vec<Session>>,
    sessions: usize,
    io: RecvIo,
}

impl Worker {
    fn new(rx: Receiver<Box<Session>>, load: Arc<AtomicUsize>, epoch: Instant) -> Worker {
        Worker {
            rx,
            load,
            epoch,
            cursor: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            sessions: 0,
            io: RecvIo::new(),
        }
    }

    fn slot_time(&self, visit: u64) -> Instant {
        self.epoch + Duration::from_nanos(slot_len().as_nanos() as u64 * visit)
    }

    /// The first slot visit at or after `t`.
    fn visit_at_or_after(&self, t: Instant) -> u64 {
        let slot = slot_len().as_nanos();
        let since = t.saturating_duration_since(self.epoch).as_nanos();
        since.div_ceil(slot) as u64
    }

    /// Place a session in the least-loaded slot, the soonest visited among equals.
    fn add(&mut self, session: Box<Session>) {
        let best = pick_slot(self.slots.iter().map(Vec::len), self.cursor);
        self.slots[best].push(*session);
        self.sessions += 1;
    }

    fn run(mut self) {
        loop {
            if self.sessions == 0 {
                // Idle: wait for a session, then resume the slot clock from now.
                let Ok(s) = self.rx.recv() else { return };
                self.cursor = self.visit_at_or_after(Instant::now());
                self.add(s);
                continue;
            }
            while let Ok(s) = self.rx.try_recv() {
                self.add(s);
            }
            // Skip empty slots (at least one is occupied).
            while self.slots[(self.cursor % SLOTS as u64) as usize].is_empty() {
                self.cursor += 1;
            }
            let due = self.slot_time(self.cursor);
            let now = Instant::now();
            if due > now {
                match self.rx.recv_timeout(due - now) {
                    Ok(s) => {
                        self.add(s);
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if Instant::now() < due {
                    continue;
                }
            }
            self.visit(due);
            self.cursor += 1;
        }
    }

    /// One visit of the cursor's slot, scheduled at `due`.
    fn visit(&mut self, due: Instant) {
        let k = (self.cursor % SLOTS as u64) as usize;
        let mut slot = std::mem::take(&mut self.slots[k]);
        // Pass 1: every session's packet.
        let before = slot.len();
        slot.retain_mut(|s| catch_unwind(AssertUnwindSafe(|| s.tick_send(due))).unwrap_or(false));
        let ended = before - slot.len();
        // Pass 2: receive, play out, RTCP, statistics. A session that panics is dropped.
        let io = &mut self.io;
        let before = slot.len();
        slot.retain_mut(|s| catch_unwind(AssertUnwindSafe(|| s.tick_receive(io))).is_ok());
        let ended = ended + before - slot.len();
        if ended > 0 {
            self.sessions -= ended;
            self.load.fetch_sub(ended, Ordering::Relaxed);
        }
        self.slots[k] = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sessions_fill_slots_evenly_soonest_first() {
        let mut occupancy = vec![0usize; SLOTS];
        // Sessions arriving while the cursor moves on by 5 slots each time (the bench's 5 ms
        // call spacing) still spread over all slots, one per slot before any slot has two.
        let mut cursor = 3u64;
        for i in 0..SLOTS {
            let k = pick_slot(occupancy.iter().copied(), cursor);
            if i == 0 {
                assert_eq!(k, 3, "an empty worker uses the next slot visited");
            }
            assert_eq!(occupancy[k], 0, "slot {k} taken twice before all are used");
            occupancy[k] += 1;
            cursor += 5;
        }
        for _ in 0..(3 * SLOTS + 7) {
            let k = pick_slot(occupancy.iter().copied(), cursor);
            occupancy[k] += 1;
            cursor += 1;
        }
        let (lo, hi) = (occupancy.iter().min(), occupancy.iter().max());
        assert_eq!((lo, hi), (Some(&4), Some(&5)), "{occupancy:?}");
        // The soonest among equals: slots 3.. are free after the cursor at 2.
        let mut occupancy = [1usize; SLOTS];
        occupancy[1] = 0;
        occupancy[7] = 0;
        assert_eq!(pick_slot(occupancy.iter().copied(), 2), 7);
        assert_eq!(pick_slot(occupancy.iter().copied(), 1), 1);
        assert_eq!(pick_slot(occupancy.iter().copied(), 8 + SLOTS as u64), 1);
    }
}
