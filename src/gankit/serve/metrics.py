"""Prometheus metrics of the service, in a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """Request counts and latencies per endpoint and model, batch sizes, input quality."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "gankit_requests", "Requests served", ["endpoint", "model", "status"], registry=reg
        )
        self.latency = Histogram(
            "gankit_request_latency_seconds",
            "Request latency",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch = Histogram(
            "gankit_batch_size",
            "Samples or rows per request (`request`) and per model call (`model_call`)",
            ["model", "level"],
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.values = Counter(
            "gankit_input_values", "Input cells seen", ["model", "column"], registry=reg
        )
        self.missing = Counter(
            "gankit_input_missing",
            "Input cells that were missing",
            ["model", "column"],
            registry=reg,
        )
        self.missing_share = Gauge(
            "gankit_input_missing_share",
            "Share of missing input cells per column since start",
            ["model", "column"],
            registry=reg,
        )
        self.out_of_range = Counter(
            "gankit_input_out_of_range",
            "Input values outside the range seen in training (numeric) or unknown categories",
            ["model", "column"],
            registry=reg,
        )
        self.drift_psi = Gauge(
            "gankit_drift_psi",
            "Population stability index of the recent window against the training reference",
            ["model", "column"],
            registry=reg,
        )
        self.drift_ks = Gauge(
            "gankit_drift_ks",
            "KS statistic (numeric columns) or total variation (categorical) of the recent window",
            ["model", "column"],
            registry=reg,
        )
        self.drift_flag = Gauge(
            "gankit_drift_flagged",
            "1 when the column's recent window is over a drift threshold",
            ["model", "column"],
            registry=reg,
        )
        self.drift_window = Gauge(
            "gankit_drift_window_values",
            "Values in the column's drift window",
            ["model", "column"],
            registry=reg,
        )
        self._missing_counts: dict[tuple[str, str], tuple[int, int]] = {}

    def observe_request(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        self.requests.labels(endpoint, model, str(status)).inc()
        self.latency.labels(endpoint, model).observe(seconds)

    def observe_batch(self, model: str, size: int, level: str = "request") -> None:
        """Record how many samples/rows one request asked for, or one model call processed."""
        self.batch.labels(model, level).observe(size)

    def observe_inputs(
        self,
        model: str,
        columns: Sequence[str],
        missing: Sequence[int],
        out_of_range: Sequence[int],
        rows: int,
    ) -> None:
        """Update the input-quality metrics with one batch of `rows` rows."""
        for column, n_missing, n_out in zip(columns, missing, out_of_range, strict=True):
            self.values.labels(model, column).inc(rows)
            if n_missing:
                self.missing.labels(model, column).inc(n_missing)
            if n_out:
                self.out_of_range.labels(model, column).inc(n_out)
            seen, miss = self._missing_counts.get((model, column), (0, 0))
            seen, miss = seen + rows, miss + n_missing
            self._missing_counts[(model, column)] = (seen, miss)
            self.missing_share.labels(model, column).set(miss / seen if seen else 0.0)

    def observe_drift(self, model: str, columns: Sequence[dict]) -> None:
        """Set the drift gauges from `DriftMonitor` column statuses (serve/drift.py)."""
        for c in columns:
            if c["psi"] is None:
                continue
            self.drift_psi.labels(model, c["name"]).set(c["psi"])
            self.drift_ks.labels(model, c["name"]).set(c["ks"] if c["numeric"] else c["tv"])
            self.drift_flag.labels(model, c["name"]).set(1.0 if c["drift"] else 0.0)
            self.drift_window.labels(model, c["name"]).set(c["n"])

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
