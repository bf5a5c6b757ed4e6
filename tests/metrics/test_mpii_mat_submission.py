"""The ``mpii-mat`` submission: ``pos_pred_src`` as the toolkit reads it, written and read back to the bit."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from harness.datasets import DATASETS
from harness.core.errors import BenchError, PredictionError
from harness.file_eval.base import EvalRequest
from harness.file_eval.mpii import evaluate_mpii_files
from harness.core.structures import KeypointsPrediction
from harness.submissions import SUBMISSIONS
from tests.metrics.test_mpii_pckh import hand_case, jittered, score  # noqa: F401  (hand_case is a fixture)


def write(dataset, samples, predictions, out_dir):
    fmt = SUBMISSIONS.get(dataset.info.protocol.submission)(dataset.info, out_dir)
    records = []
    for sample, prediction in zip(samples, predictions):
        records += fmt.add(sample, prediction)
    fmt.finish(records)
    return fmt


def read_back(dataset, samples, path, **options):
    source = SUBMISSIONS.get("mpii-mat").reader(dataset.info, path, **options)
    return [source.predict(sample) for sample in samples]


def test_the_file_is_the_toolkits_pos_pred_src(hand_case, tmp_path):
    dataset, sample, prediction = hand_case
    fmt = write(dataset, [sample], [prediction], tmp_path)
    assert fmt.path == tmp_path / "predictions" / "pred.mat" and fmt.entry == "predictions/pred.mat"
    mat = scipy.io.loadmat(fmt.path)
    written = mat["pos_pred_src"]
    assert written.shape == (16, 2, 2) and written.dtype == np.float64
    # column = the person's position in the ground truth; 1-based = 0-based prediction + 1
    expected = np.transpose(prediction.keypoints[..., :2] + 1.0, (1, 2, 0))
    np.testing.assert_array_equal(written, expected)  # NaN where the model gave none (person A's left wrist)


def test_round_trip_is_exact_and_nan_needs_allow_missing(hand_case, tmp_path):
    dataset, sample, prediction = hand_case
    fmt = write(dataset, [sample], [prediction], tmp_path)
    with pytest.raises(PredictionError) as error:
        read_back(dataset, [sample], tmp_path / fmt.entry)
    message = str(error.value)
    assert "\n" not in message and "pred.mat" in message and "person #0" in message and "left_wrist" in message
    assert "--allow-missing" in message
    (back,) = read_back(dataset, [sample], tmp_path / "predictions", allow_missing=True)  # the folder works too
    assert score(dataset, [sample], [back]).metrics == score(dataset, [sample], [prediction]).metrics


def test_round_trip_on_the_embedded_data_is_bit_exact(bench_cache, tmp_path):
    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    samples = list(dataset)
    predictions = [jittered(sample, seed=1000 + sample.sample_id) for sample in samples]
    fmt = write(dataset, samples, predictions, tmp_path)
    back = read_back(dataset, samples, fmt.path)
    for original, again in zip(predictions, back):
        # what the metric compares (prediction + 1, the toolkit's coordinates) is the same double
        np.testing.assert_array_equal(again.keypoints[..., :2] + 1.0, original.keypoints[..., :2] + 1.0)
    direct, via_file = score(dataset, samples, predictions), score(dataset, samples, back)
    assert direct.metrics == via_file.metrics and direct.per_class == via_file.per_class
    for dialect in ("official", "mmpose"):
        assert score(dataset, samples, back, dialect).metrics == score(dataset, samples, predictions, dialect).metrics
    # `bench eval --task mpii` on the same files (the .mat ground truth read raw) gives the same numbers
    request = EvalRequest(task="mpii", gt=dataset.gt_mat, pred=fmt.path)
    assert evaluate_mpii_files(request).metrics == direct.metrics


def test_a_partial_run_leaves_the_other_people_missing(bench_cache, tmp_path):
    dataset = DATASETS.get("mpii")(None, None, "keypoints")
    first, second = dataset[0], dataset[1]
    fmt = write(dataset, [first], [jittered(first, seed=1)], tmp_path)
    written = scipy.io.loadmat(fmt.path)["pos_pred_src"]
    assert written.shape == (16, 2, dataset.info.extra["people"])
    assert np.isfinite(written[:, :, first.target.ann_ids]).all()
    assert np.isnan(np.delete(written, first.target.ann_ids, axis=2)).all()
    read_back(dataset, [first], fmt.path)  # the predicted sample reads back
    with pytest.raises(PredictionError, match=f"person #{second.target.ann_ids[0]} .*no finite prediction"):
        read_back(dataset, [second], fmt.path)


def test_bad_submissions_are_one_line_errors(hand_case, tmp_path):
    dataset, sample, prediction = hand_case
    reader = SUBMISSIONS.get("mpii-mat").reader
    wrong = tmp_path / "wrong.mat"
    scipy.io.savemat(wrong, {"pos_pred_src": np.zeros((16, 2, 3))})
    with pytest.raises(PredictionError, match="pos_pred_src has size 16x2x3; expected 16x2x2 for the 2 "):
        reader(dataset.info, wrong)
    scipy.io.savemat(wrong, {"preds": np.zeros((2, 16, 2))})
    with pytest.raises(PredictionError, match="no 'pos_pred_src' array"):
        reader(dataset.info, wrong)
    wrong.write_bytes(b"MATLAB 5.0 MAT-file but not really")
    with pytest.raises(PredictionError, match="not a readable .mat file"):
        reader(dataset.info, wrong)
    with pytest.raises(PredictionError, match="not found"):
        reader(dataset.info, tmp_path / "none.mat")
    fmt = SUBMISSIONS.get("mpii-mat")(dataset.info, tmp_path)
    one_person = KeypointsPrediction(prediction.keypoints[:1], prediction.scores[:1], prediction.boxes[:1])
    with pytest.raises(PredictionError, match="do not give the 16 MPII joints of its 2 ground-truth people"):
        fmt.add(sample, one_person)
    records = fmt.add(sample, prediction)
    assert records[0]["joints"][15] == [None, None]  # NaN as null: the records are strict JSON
    with pytest.raises(BenchError, match="person #1 was predicted twice"):
        fmt.finish(records + records[1:])
