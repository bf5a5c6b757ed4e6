"""Issue 12 item 8, through `bench run`: a COCO-format dataset anywhere (--ann-file/--img-dir), a model class from
a file, adapter arguments (--model-arg), OpenMMLab overrides (--cfg-options) and a class mapping (--label-map);
each recorded in metrics.json and part of the run's identity."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

KEYPOINTS = Path(__file__).resolve().parents[1] / "data" / "coco-keypoints"
LIMIT = "12"


def run(tmp_path: Path, *args: str):
    return CliRunner().invoke(main, ["run", "--bootstrap", "0", "--gallery", "0", "--no-cache",
                                     "--reports-dir", str(tmp_path / "reports"),
                                     "--leaderboards-dir", str(tmp_path / "boards"), *args], catch_exceptions=False)


def records(tmp_path: Path) -> list[dict]:
    return [json.loads((folder / "metrics.json").read_text())
            for folder in sorted((tmp_path / "reports").iterdir()) if (folder / "metrics.json").is_file()]


def one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> tuple[Path, Path]:
    """The embedded COCO shapes split copied out of its layout: one annotation file and one image folder."""
    from harness.datasets.coco_format import locate_coco
    from harness.embedded import materialise_split, shapes_coco

    root = materialise_split("coco-shapes", shapes_coco, "val")
    ann, images = locate_coco(root, "val", "instances_val.json")
    out = tmp_path_factory.mktemp("own")
    shutil.copytree(images, out / "pictures")
    shutil.copy(ann, out / "shapes.json")
    return out / "shapes.json", out / "pictures"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """centernet on the embedded split through --dataset coco: the numbers a copy of it must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    result = run(tmp, "--task", "detection", "--model", "centernet", "--limit", LIMIT)
    assert result.exit_code == 0, result.output
    return records(tmp)[0]


def test_ann_file_and_img_dir_score_like_the_registry_dataset(tmp_path, shapes, reference):
    ann, images = shapes
    result = run(tmp_path, "--task", "detection", "--model", "centernet", "--limit", LIMIT,
                 "--ann-file", str(ann), "--img-dir", str(images))
    assert result.exit_code == 0, result.output
    record = records(tmp_path)[0]
    assert record["metrics"] == reference["metrics"]  # the COCO protocol, same file, same numbers
    assert record["protocol"]["key"] == reference["protocol"]["key"]
    assert record["dataset"]["name"] == "file:shapes" != reference["dataset"]["name"]
    assert record["dataset"]["ann_file"] == str(ann) and record["dataset"]["img_dir"] == str(images)
    assert record["identity"]["data"]["ann_file"] == str(ann.resolve())
    assert "ann_file" not in reference["dataset"]  # registry runs keep the keys they always wrote
    # `bench eval --run` opens the same file and folder again (not the registry's coco) and agrees
    out = tmp_path / "rescored.json"
    rescored = CliRunner().invoke(main, ["eval", "--run", str(tmp_path / "reports" / record["run_id"]),
                                         "--json", str(out)], catch_exceptions=False)
    assert rescored.exit_code == 0, rescored.output
    assert json.loads(out.read_text())["metrics"] == record["metrics"]
    assert json.loads(out.read_text())["dataset"] == "file:shapes"
    assert record["dataset"]["registry"] is None  # nothing to re-open by name
    # bench compare re-opens it too (the paired bootstrap needs the ground truth): a run against itself
    compared = CliRunner().invoke(main, ["compare", str(tmp_path / "reports" / record["run_id"]),
                                         str(tmp_path / "reports" / record["run_id"]), "--json"],
                                  catch_exceptions=False)
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.output)["run_a"] == record["run_id"]


def test_an_image_path_outside_img_dir_is_refused_before_any_model_runs(tmp_path, shapes):
    ann, images = shapes
    data = json.loads(ann.read_text())
    data["images"][3]["file_name"] = "../../etc/passwd"
    bad = tmp_path / "escape.json"
    bad.write_text(json.dumps(data))
    result = run(tmp_path, "--task", "detection", "--model", "centernet", "--ann-file", str(bad),
                 "--img-dir", str(images))
    one_line_error(result, "escape.json", "outside", "../../etc/passwd")
    assert not (tmp_path / "reports").exists() or not records(tmp_path)


@pytest.mark.parametrize("args, words", [
    (["--ann-file", "{ann}"], ["--ann-file and --img-dir go together"]),
    (["--ann-file", "{ann}", "--img-dir", "{images}", "--dataset", "coco"], ["drop --dataset"]),
    (["--ann-file", "{missing}", "--img-dir", "{images}"], ["nope.json", "not found"]),
])
def test_ann_file_misuse_is_one_line(tmp_path, shapes, args, words):
    ann, images = shapes
    filled = [a.format(ann=ann, images=images, missing=tmp_path / "nope.json") for a in args]
    one_line_error(run(tmp_path, "--task", "detection", "--model", "centernet", *filled), *words)


def test_keypoints_from_an_annotation_file(tmp_path):
    result = run(tmp_path, "--task", "keypoints", "--model", "mean-pose", "--ann-file",
                 str(KEYPOINTS / "test_coco.json"), "--img-dir", str(KEYPOINTS))
    assert result.exit_code == 0, result.output
    record = records(tmp_path)[0]
    assert record["dataset"]["name"] == "file:test_coco" and record["samples"] == 4
    assert record["protocol"]["name"].startswith("coco-keypoints") and "AP" in record["metrics"]
    board = (tmp_path / "boards" / "keypoints.csv").read_text()
    assert "file:test_coco" in board and str(KEYPOINTS.resolve()) in board  # the data column names the copy


def test_model_arg_is_parsed_validated_and_recorded(tmp_path):
    result = run(tmp_path, "--task", "detection", "--model", "centernet", "--limit", "4", "--model-arg", "threads=2")
    assert result.exit_code == 0, result.output
    record = records(tmp_path)[0]
    assert record["identity"]["conditions"]["model_args"] == {"threads": 2}  # a YAML int, not "2"
    assert record["provenance"]["model_args"] == {"threads": 2}
    one_line_error(run(tmp_path, "--task", "detection", "--model", "centernet", "--model-arg", "thread=2"),
                   "--model-arg thread", "centernet", "accepted: threads")
    one_line_error(run(tmp_path, "--task", "detection", "--model", "centernet", "--model-arg", "threads={a: 1}"),
                   "--model-arg threads", "dict")
    one_line_error(run(tmp_path, "--task", "detection", "--model", "centernet", "--model-arg", "threads"),
                   "expected key=value")
    one_line_error(run(tmp_path, "--task", "detection", "--model", "centernet", "--cfg-options", "a.b=1"),
                   "--cfg-options", "OpenMMLab models only")


def test_models_list_names_the_accepted_model_args():
    listed = CliRunner().invoke(main, ["models", "list", "--task", "detection", "--json"], catch_exceptions=False)
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert rows["centernet"]["options"] == "threads"
    assert "model_kwargs" in rows["tv-fasterrcnn_resnet50_fpn"]["options"]


def test_model_args_key_the_prediction_cache(tmp_path):
    """Options are part of the model fingerprint: another --model-arg never reuses cached predictions."""
    from harness.run.bench_run import RunConfig, build_adapter
    from harness.tasks import get_task

    task = get_task("detection")
    plain = build_adapter("centernet", task, RunConfig(task="detection"))
    threaded = build_adapter("centernet", task, RunConfig(task="detection", model_args={"threads": 2}))
    assert threaded.options == {"threads": 2} and plain.fingerprint() != threaded.fingerprint()


def test_cfg_options_reach_an_openmmlab_adapter():
    pytest.importorskip("mmdet")
    from harness.run.bench_run import RunConfig, build_adapter
    from harness.tasks import get_task

    config = RunConfig(task="detection", cfg_options={"model.test_cfg.score_thr": 0.3},
                       model_args={"max_batch": 2})
    adapter = build_adapter("mmdet:rtmdet_tiny_8xb32-300e_coco", get_task("detection"), config)
    assert adapter.options["cfg_options"] == {"model.test_cfg.score_thr": 0.3}
    assert adapter.options["max_batch"] == 2 and adapter.options["config"] == "rtmdet_tiny_8xb32-300e_coco"


def test_cfg_options_and_a_label_map_through_bench_run_on_an_openmmlab_detector(tmp_path):
    """RTMDet (random weights, COCO classes from its config) on the shapes: every COCO class mapped to 'circle',
    and --cfg-options keeping 3 boxes of any score per image.  Exactly 3 detections per image, all circles, show
    the overrides reached the resolved config and the map relabelled every box."""
    pytest.importorskip("mmdet")
    import torch

    from adapters.torchvision.labels import COCO_LABELS

    torch.manual_seed(0)  # the random weights are drawn when the network is built, before bench seeds the run

    label_map = tmp_path / "all_circles.json"
    label_map.write_text(json.dumps({name: "circle" for name in COCO_LABELS.values()}))
    result = run(tmp_path, "--task", "detection", "--model", "mmdet:rtmdet_tiny_8xb32-300e_coco", "--limit", "2",
                 "--cfg-options", "model.test_cfg.score_thr=0.0", "--cfg-options", "model.test_cfg.max_per_img=3",
                 "--label-map", str(label_map))
    assert result.exit_code == 0, result.output
    record = records(tmp_path)[0]
    detections = json.loads((tmp_path / "reports" / record["run_id"] / "predictions.json").read_text())
    per_image: dict[int, int] = {}
    for detection in detections:
        per_image[detection["image_id"]] = per_image.get(detection["image_id"], 0) + 1
    assert sorted(per_image.values()) == [3, 3] and {d["category_id"] for d in detections} == {1}  # circle
    conditions = record["identity"]["conditions"]
    assert conditions["cfg_options"] == {"model.test_cfg.score_thr": 0.0, "model.test_cfg.max_per_img": 3}
    assert conditions["score_threshold"] == 0.0 and conditions["input_size"] == [640, 640]


def renamed_copy(tmp_path: Path, ann: Path) -> Path:
    """The shapes file with other class names and ids (circle -> round, id + 100): the model's classes differ."""
    data = json.loads(ann.read_text())
    names = {"circle": "round", "square": "box", "triangle": "wedge"}
    for category in data["categories"]:
        category["name"] = names.get(category["name"], category["name"] + "-x")
        category["id"] += 100
    for annotation in data["annotations"]:
        annotation["category_id"] += 100
    out = tmp_path / "renamed.json"
    out.write_text(json.dumps(data))
    return out


def test_label_map_scores_a_model_on_a_dataset_with_other_classes(tmp_path, shapes, reference):
    ann, images = shapes
    renamed = renamed_copy(tmp_path, ann)
    base = ["--task", "detection", "--model", "centernet", "--limit", LIMIT, "--ann-file", str(renamed),
            "--img-dir", str(images)]
    # no silent mapping without a file (the in-repo model finds no weights for these classes; others: "differ")
    one_line_error(run(tmp_path, *base), "centernet", "file:renamed")
    model_classes = json.loads(ann.read_text())["categories"]
    mapping = {c["name"]: {"circle": "round", "square": "box", "triangle": "wedge"}.get(c["name"], c["name"] + "-x")
               for c in model_classes}
    label_map = tmp_path / "map.yaml"
    label_map.write_text("".join(f"{k}: {v}\n" for k, v in mapping.items()))
    result = run(tmp_path, *base, "--label-map", str(label_map))
    assert result.exit_code == 0, result.output
    record = records(tmp_path)[-1]
    assert record["metrics"] == reference["metrics"]  # same detections, relabelled: the same numbers
    assert record["identity"]["conditions"]["label_map"]["file"] == str(label_map)
    assert record["provenance"]["label_map"] == str(label_map)
    # by id, and a class dropped: fewer true positives, a different row and number
    by_id = tmp_path / "map.json"
    by_id.write_text(json.dumps({str(c["id"]): None if c["name"] == "circle" else c["id"] + 100
                                 for c in model_classes}))
    result = run(tmp_path, *base, "--label-map", str(by_id))
    assert result.exit_code == 0, result.output
    dropped = records(tmp_path)[-1]
    assert dropped["metrics"]["AP"] < reference["metrics"]["AP"]


def test_label_map_problems_are_one_line(tmp_path, shapes):
    ann, images = shapes
    renamed = renamed_copy(tmp_path, ann)
    base = ["--task", "detection", "--model", "centernet", "--ann-file", str(renamed), "--img-dir", str(images)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("circle: hexagon\n")
    one_line_error(run(tmp_path, *base, "--label-map", str(bad)), "bad.yaml", "'hexagon' is not a dataset class")
    bad.write_text("sphere: round\n")
    one_line_error(run(tmp_path, *base, "--label-map", str(bad)), "bad.yaml", "'sphere' is not a model class")
    bad.write_text("circle: round\n1: box\n")
    one_line_error(run(tmp_path, *base, "--label-map", str(bad)), "bad.yaml", "name the same model class")
    bad.write_text("- a\n- b\n")
    one_line_error(run(tmp_path, *base, "--label-map", str(bad)), "bad.yaml", "mapping")
    one_line_error(run(tmp_path, "--task", "keypoints", "--model", "heatmap", "--label-map", str(bad)),
                   "--label-map applies to detection and instance")


def test_the_shipped_coco_to_voc_map_covers_every_voc_class():
    """examples/label_maps/coco_to_voc.yaml, read as --label-map reads it, against torchvision's COCO names and
    the VOC reader's classes: every VOC class is reached, by one COCO class each."""
    from adapters.torchvision.labels import COCO_LABELS
    from harness.datasets.voc import VOC_CLASSES
    from harness.run.label_mapping import read_label_map, translation

    path = Path(__file__).resolve().parents[2] / "examples" / "label_maps" / "coco_to_voc.yaml"
    ids = sorted(COCO_LABELS)
    table = translation(read_label_map(path), [COCO_LABELS[i] for i in ids], ids, VOC_CLASSES,
                        list(range(1, len(VOC_CLASSES) + 1)), path)
    assert sorted(table.values()) == list(range(1, 21)) and len(table) == 20


def test_a_model_class_from_a_file(tmp_path, reference):
    module = tmp_path / "my_detector.py"
    module.write_text("from adapters.inrepo.detection.adapter import CenterNetAdapter\n\n\n"
                      "class Mine(CenterNetAdapter):\n    \"\"\"centernet under another name.\"\"\"\n")
    result = run(tmp_path, "--task", "detection", "--model", f"{module}:Mine", "--limit", LIMIT,
                 "--model-arg", "threads=1")
    assert result.exit_code == 0, result.output
    record = records(tmp_path)[0]
    assert record["model"]["name"] == f"{module}:Mine" and record["metrics"] == reference["metrics"]
    missing = run(tmp_path, "--task", "detection", "--model", f"{module}:Other")
    assert missing.exit_code == 2 and "Other" in missing.output
