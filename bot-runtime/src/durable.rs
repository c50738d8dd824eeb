//! Writes that must not be lost when the database is away for a while.
//!
//! A call's record, an attempt's outcome and an opt-out said in a call are facts: the call
//! happened whether or not the database answered when it ended. [`persist`] runs such a write
//! until it is stored — while the database is unreachable (connection refused or dropped, the
//! pool timing out, the server shutting down, SQLite busy) it waits and tries again with a
//! backoff, holding the data in memory; an error the data itself causes (a refused row) is
//! returned at once, since trying again cannot help. The first failure is logged at `error` with
//! what is held, each later one at `warn`, the success after failures at `warn` (the default log level shows the
//! outage and its end); every failure
//! counts in `callbot_errors{component="store"}` and the writes held count in
//! `callbot_store_writes_waiting`, so an outage shows on the dashboard and in alerts.
//!
//! A call's recording is held the same way while the recordings disk is full
//! ([`store_recording`]): freeing space lets the same write succeed, and the dialer dials nothing
//! new while one waits.
//!
//! The node stays busy while a write waits (the dialer counts the call as in progress), so a
//! node asked to stop finishes its writes first; only a kill loses what is held, and the dialer's
//! recovery then closes the open attempt as `interrupted` (see [`crate::dialer::service`]).

use std::future::Future;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::store::StoreError;

/// The first wait after a failure; doubled up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a held write is waiting for: its gauge, its error component and its log lines.
struct Hold<'a> {
    component: &'static str,
    gauge: &'a prometheus_client::metrics::gauge::Gauge,
    first: &'static str,
    again: &'static str,
    back: &'static str,
}

/// The loop behind [`persist`] and [`store_recording`]: runs `op` until it succeeds or fails
/// with an error `transient` does not accept, backing off from [`FIRST_BACKOFF`] to
/// [`MAX_BACKOFF`] between tries.
async fn hold_until<T, E, F, Fut>(
    what: &str,
    metrics: &Metrics,
    hold: Hold<'_>,
    transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = 0u32;
    let mut wait = FIRST_BACKOFF;
    let result = loop {
        match op().await {
            Ok(v) => break Ok(v),
            Err(e) if transient(&e) => {
                metrics.error(hold.component);
                if failures == 0 {
                    hold.gauge.inc();
                    tracing::error!(write = what, error = %e, "{}", hold.first);
                } else {
                    tracing::warn!(write = what, failures, error = %e, "{}", hold.again);
                }
                failures += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
            Err(e) => break Err(e),
        }
    };
    if failures > 0 {
        hold.gauge.dec();
        if result.is_ok() {
            tracing::warn!(write = what, failures, "{}", hold.back);
        }
    }
    result
}

/// Runs `op` until it succeeds or fails for a reason other than the database being
/// unavailable ([`StoreError::is_unavailable`]). `what` names the write in logs
/// (`"call record 1b4e…"`).
pub async fn persist<T, F, Fut>(what: &str, metrics: &Metrics, op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let hold = Hold {
        component: "store",
        gauge: &metrics.store_writes_waiting,
        first: "the database is unavailable: holding this write and retrying until it is back",
        again: "the database is still unavailable",
        back: "the database is back: a held write is stored",
    };
    hold_until(what, metrics, hold, StoreError::is_unavailable, op).await
}

/// Whether a file write failed for want of space (the disk or the user's quota is full):
/// freeing space lets the same write succeed.
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Writes a call's recording with `op`, holding it in memory and retrying while the disk is full
/// ([`is_out_of_space`]); other errors return at once. Held recordings count in
/// `callbot_recordings_waiting` (the dialer dials nothing new while it is above zero) and every
/// failure in `callbot_errors{component="recording"}`.
pub async fn store_recording<T, F, Fut>(
    what: &str,
    metrics: &Metrics,
    op: F,
) -> Result<T, std::io::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, std::io::Error>>,
{
    let hold = Hold {
        component: "recording",
        gauge: &metrics.recordings_waiting,
        first: "the recordings disk is full: holding this recording and retrying until there is space",
        again: "the recordings disk is still full",
        back: "the recordings disk has space again: a held recording is stored",
    };
    hold_until(what, metrics, hold, is_out_of_space, op).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn unavailable() -> StoreError {
        StoreError::Query {
            url: "postgres://db".into(),
            action: "saving call x".into(),
            source: sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_delays_the_write_and_loses_nothing() {
        let metrics = Metrics::new();
        let tries = AtomicU32::new(0);
        let t0 = tokio::time::Instant::now();
        let out = persist("call record x", &metrics, || async {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            if n < 6 { Err(unavailable()) } else { Ok(n) }
        })
        .await;
        assert_eq!(out.expect("stored once the database is back"), 6);
        // 0.25 + 0.5 + 1 + 2 + 4 + 5 seconds of backoff: capped, not growing without bound.
        assert_eq!(t0.elapsed(), Duration::from_millis(12_750));
        let text = metrics.render();
        assert!(
            text.contains("callbot_errors_total{component=\"store\"} 6"),
            "{text}"
        );
        assert!(text.contains("callbot_store_writes_waiting 0"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_row_is_not_retried() {
        let metrics = Metrics::new();
        let tries = AtomicU32::new(0);
        let out: Result<(), _> = persist("call record y", &metrics, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::InvalidRecord {
                id: "y".into(),
                reason: "bad".into(),
            })
        })
        .await;
        assert!(matches!(out, Err(StoreError::InvalidRecord { .. })));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        assert!(!metrics.render().contains("component=\"store\""));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_held_shows_in_the_gauge() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = {
            let (metrics, up) = (metrics.clone(), up.clone());
            tokio::spawn(async move {
                persist("attempt z", &metrics, || {
                    let up = up.load(Ordering::SeqCst);
                    async move { if up { Ok(()) } else { Err(unavailable()) } }
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            metrics.render().contains("callbot_store_writes_waiting 1"),
            "{}",
            metrics.render()
        );
        up.store(true, Ordering::SeqCst);
        task.await.expect("task").expect("stored");
        assert!(metrics.render().contains("callbot_store_writes_waiting 0"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recording_waits_for_space_and_other_errors_return() {
        let metrics = Metrics::new();
        let tries = AtomicU32::new(0);
        let out = store_recording("recording r", &metrics, || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                1 => Err(std::io::Error::from(std::io::ErrorKind::QuotaExceeded)),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(out.expect("stored once there is space"), 2);
        let text = metrics.render();
        assert!(
            text.contains("callbot_errors_total{component=\"recording\"} 2"),
            "{text}"
        );
        assert!(text.contains("callbot_recordings_waiting 0"), "{text}");
        let denied = store_recording("recording s", &metrics, || async {
            Err::<(), _>(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
        })
        .await;
        assert_eq!(
            denied.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::PermissionDenied)
        );
    }
}
