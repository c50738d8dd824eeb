//! Prometheus metrics of the runtime: calls in progress and finished, and per-stage turn
//! latency histograms. [`Metrics::render`] gives the text exposition format (the admin API
//! serves it).

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
        Metrics {
            registry,
            calls_active,
            calls_finished,
            turn_latency,
            barge_ins,
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

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
