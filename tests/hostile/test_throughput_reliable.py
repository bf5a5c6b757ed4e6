"""Throughput from a single batch (no warm-up excluded) is marked unreliable and kept off leaderboards
(issue 11, finding 9: "0.0 img/s" published for mmseg FCN from its one batch)."""
from harness.publish.leaderboard import row_from_record
from harness.run.latency import LatencyRecorder
from tests.core.test_gate_and_leaderboard import record


def test_one_batch_is_unreliable_and_not_published():
    one = LatencyRecorder(batch_seconds=[2.0], batch_sizes=[4]).summary()
    many = LatencyRecorder(batch_seconds=[2.0, 0.1, 0.1], batch_sizes=[4, 4, 4]).summary()
    assert one["reliable"] is False and many["reliable"] is True and many["warmup_batches"] == 1
    run = record("m", 0.5, "1")
    run["throughput"] = {**run["throughput"], **one}
    row = row_from_record(run, ("AP",))
    assert row["images_per_s"] is None and row["latency_p50_ms"] is None
    run["throughput"] = {**run["throughput"], **many}
    assert row_from_record(run, ("AP",))["images_per_s"] == many["images_per_s"]
