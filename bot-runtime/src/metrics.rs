//! Prometheus metrics of the runtime: calls in progress and finished, per-stage turn latency
//! histograms, the dialer's rates (dials, finished attempts by disposition, leads skipped by
//! verdict, per campaign), queue waits by queue and result, and errors by component.
//! [`Metrics::render`] gives the text exposition format (the admin API serves it at `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::record::StageLatency;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CampaignLabel {
    pub campaign: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CampaignResultLabel {
    pub campaign: String,
    /// A disposition (finished attempts) or a verdict (skipped leads).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
    /// `connected`, `no_agent` or `abandoned`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrunkLabel {
    pub trunk: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub disposition: String,
    pub outcome: String,
}

/// See the module docs.
pub struct Metrics {
    registry: Registry,
    pub calls_active: Gauge,
    pub calls_finished: Family<OutcomeLabel, Counter>,
    pub turn_latency: Family<StageLabel, Histogram>,
    pub barge_ins: Counter,
    pub dials: Family<CampaignLabel, Counter>,
    pub attempts_finished: Family<CampaignResultLabel, Counter>,
    pub leads_skipped: Family<CampaignResultLabel, Counter>,
    pub queue_wait: Family<QueueLabel, Histogram>,
    pub errors: Family<ComponentLabel, Counter>,
    /// Writes held in memory while the database is unavailable ([`crate::durable`]).
    pub store_writes_waiting: Gauge,
    /// Call recordings held in memory while the recordings disk is full ([`crate::durable`]).
    pub recordings_waiting: Gauge,
    /// 1 while the dialer dials nothing new because the recordings disk is short of space.
    pub recordings_disk_full: Gauge,
    /// 1 while a trunk's breaker holds it down ([`crate::dialer::trunk`]).
    pub trunk_down: Family<TrunkLabel, Gauge>,
}

fn wait_histogram() -> Histogram {
    Histogram::new([
        0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ])
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("callbot");
        let calls_active = Gauge::default();
        let calls_finished = Family::<OutcomeLabel, Counter>::default();
        let turn_latency =
            Family::<StageLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let barge_ins = Counter::default();
        registry.register(
            "calls_in_progress",
            "Calls with a robot conversation running",
            calls_active.clone(),
        );
        registry.register(
            "calls_finished",
            "Calls finished, by disposition and flow outcome",
            calls_finished.clone(),
        );
        registry.register(
            "turn_latency_seconds",
            "Customer turn latency by stage (total: end of speech to first robot audio)",
            turn_latency.clone(),
        );
        registry.register(
            "barge_ins",
            "Robot speech interrupted by the customer",
            barge_ins.clone(),
        );
        let dials = Family::<CampaignLabel, Counter>::default();
        registry.register(
            "dialer_dials",
            "Leads dialed (INVITE sent) by campaign",
            dials.clone(),
        );
        let attempts_finished = Family::<CampaignResultLabel, Counter>::default();
        registry.register(
            "dialer_attempts_finished",
            "Dial attempts ended, by campaign and disposition",
            attempts_finished.clone(),
        );
        let leads_skipped = Family::<CampaignResultLabel, Counter>::default();
        registry.register(
            "dialer_leads_skipped",
            "Leads not dialed when due, by campaign and verdict (wait, stop, blocked)",
            leads_skipped.clone(),
        );
        let queue_wait =
            Family::<QueueLabel, Histogram>::new_with_constructor(wait_histogram as fn() -> _);
        registry.register(
            "queue_wait_seconds",
            "Time transferred calls waited in a queue, by queue and result",
            queue_wait.clone(),
        );
        let errors = Family::<ComponentLabel, Counter>::default();
        registry.register(
            "errors",
            "Errors that were logged and survived, by component",
            errors.clone(),
        );
        let store_writes_waiting = Gauge::default();
        registry.register(
            "store_writes_waiting",
            "Writes (call records, attempt outcomes, opt-outs) held in memory while the database is unavailable",
            store_writes_waiting.clone(),
        );
        let recordings_waiting = Gauge::default();
        registry.register(
            "recordings_waiting",
            "Call recordings held in memory while the recordings disk is full",
            recordings_waiting.clone(),
        );
        let recordings_disk_full = Gauge::default();
        registry.register(
            "recordings_disk_full",
            "1 while the recordings disk is short of space and no new calls are dialed",
            recordings_disk_full.clone(),
        );
        let trunk_down = Family::<TrunkLabel, Gauge>::default();
        registry.register(
            "dialer_trunk_down",
            "1 while a trunk is not answering and only probe calls are dialed on it",
            trunk_down.clone(),
        );
        Metrics {
            registry,
            calls_active,
            calls_finished,
            turn_latency,
            barge_ins,
            dials,
            attempts_finished,
            leads_skipped,
            queue_wait,
            errors,
            store_writes_waiting,
            recordings_waiting,
            recordings_disk_full,
            trunk_down,
        }
    }

    pub fn observe_turn(&self, l: &StageLatency) {
        for (stage, ms) in [
            ("endpoint", l.endpoint_ms),
            ("asr", l.asr_ms),
            ("nlu", l.nlu_ms),
            ("flow", l.flow_ms),
            ("tts", l.tts_ms),
            ("total", l.total_ms),
        ] {
            self.turn_latency
                .get_or_create(&StageLabel {
                    stage: stage.into(),
                })
                .observe(f64::from(ms) / 1000.0);
        }
    }

    /// A transferred call's wait in `queue`, ended by `result`.
    pub fn observe_queue_wait(&self, queue: &str, result: &str, waited: std::time::Duration) {
        self.queue_wait
            .get_or_create(&QueueLabel {
                queue: queue.to_string(),
                result: result.to_string(),
            })
            .observe(waited.as_secs_f64());
    }

    /// Counts an error of `component` (`dialer`, `store`, …) that was logged and survived.
    pub fn error(&self, component: &str) {
        self.errors
            .get_or_create(&ComponentLabel {
                component: component.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialer_queue_and_error_series_are_exposed_with_their_labels() {
        let m = Metrics::new();
        m.dials
            .get_or_create(&CampaignLabel {
                campaign: "cards".into(),
            })
            .inc();
        m.attempts_finished
            .get_or_create(&CampaignResultLabel {
                campaign: "cards".into(),
                result: "no_answer".into(),
            })
            .inc_by(2);
        m.observe_queue_wait(
            "disputes",
            "connected",
            std::time::Duration::from_millis(1500),
        );
        m.error("dialer");
        let text = m.render();
        for line in [
            "callbot_dialer_dials_total{campaign=\"cards\"} 1",
            "callbot_dialer_attempts_finished_total{campaign=\"cards\",result=\"no_answer\"} 2",
            "callbot_queue_wait_seconds_count{queue=\"disputes\",result=\"connected\"} 1",
            "callbot_queue_wait_seconds_bucket{le=\"2.0\",queue=\"disputes\",result=\"connected\"} 1",
            "callbot_errors_total{component=\"dialer\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
