//! Prometheus metrics of one instance.

pub use prometheus::Error as MetricsError;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric assent exports, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// Request latency by route pattern, method and status.
    pub http_duration: HistogramVec,
    /// Store calls that failed (backend unreachable or too slow).
    pub store_errors: IntCounter,
    /// Long polls waiting right now.
    pub open_long_polls: IntGauge,
    /// Flows started, by kind.
    pub flows_started: IntCounterVec,
    /// Flows ended, by kind and outcome.
    pub flows_finished: IntCounterVec,
    /// Time from flow start to the device's decision, by kind and decision.
    pub decision_seconds: HistogramVec,
    /// Messages (push, SMS, voice, email) that could not be delivered, by channel.
    pub deliveries_failed: IntCounterVec,
}

/// Counts one open long poll while alive.
pub struct OpenLongPoll(IntGauge);

impl Drop for OpenLongPoll {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("assent".to_owned()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
                ],
            ),
            &["route", "method", "status"],
        )?;
        let store_errors = IntCounter::new("store_errors_total", "Store calls that failed")?;
        let open_long_polls = IntGauge::new("open_long_polls", "Long polls waiting now")?;
        let flows_started = IntCounterVec::new(
            Opts::new("flows_started_total", "Flows started, by kind"),
            &["kind"],
        )?;
        let flows_finished = IntCounterVec::new(
            Opts::new("flows_finished_total", "Flows ended, by kind and outcome"),
            &["kind", "outcome"],
        )?;
        let decision_seconds = HistogramVec::new(
            HistogramOpts::new(
                "flow_decision_seconds",
                "Time from flow start to the device's decision",
            )
            .buckets(vec![
                0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            &["kind", "decision"],
        )?;
        let deliveries_failed = IntCounterVec::new(
            Opts::new(
                "deliveries_failed_total",
                "Messages that could not be delivered, by channel",
            ),
            &["channel"],
        )?;
        registry.register(Box::new(deliveries_failed.clone()))?;
        registry.register(Box::new(flows_started.clone()))?;
        registry.register(Box::new(flows_finished.clone()))?;
        registry.register(Box::new(decision_seconds.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        registry.register(Box::new(open_long_polls.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            store_errors,
            open_long_polls,
            flows_started,
            flows_finished,
            decision_seconds,
            deliveries_failed,
        })
    }

    /// Counts a long poll until the returned guard drops.
    pub fn long_poll_started(&self) -> OpenLongPoll {
        self.open_long_polls.inc();
        OpenLongPoll(self.open_long_polls.clone())
    }

    /// Registers a further collector (other crates' metrics).
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
