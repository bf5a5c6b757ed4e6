import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.datasets import DATASETS
from harness.core.dataset import collecting_problems, report
from harness.embedded import materialise_split, mpii_figures, shapes_ade, shapes_cityscapes, shapes_coco, shapes_voc
from harness.embedded import sintel_pairs, stick_figures
from harness.core.errors import DataError, UnknownNameError

from tests.datasets.checking import assert_problems, run_check

READERS = {"coco": ("detection", "instance", "keypoints"), "voc": ("detection", "semantic"),
           "cityscapes": ("semantic", "instance"), "ade20k": ("semantic",), "mpii": ("keypoints",),
           "sintel": ("flow",)}


def test_every_reader_is_registered_with_its_tasks():
    for name, tasks in READERS.items():
        assert DATASETS.get(name).tasks == tasks


def test_list_shows_each_dataset_and_its_tasks():
    result = CliRunner().invoke(main, ["datasets", "list"], terminal_width=200)
    assert result.exit_code == 0
    for name, tasks in READERS.items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert ", ".join(tasks) in line


@pytest.mark.parametrize("generator", [shapes_coco, shapes_voc, shapes_cityscapes, shapes_ade, mpii_figures,
                                       sintel_pairs, stick_figures])
def test_every_embedded_set_has_a_train_split_for_trainers_and_a_val_split(generator):
    sizes = {split: generator.SPLITS[split][0] for split in generator.SPLITS}
    if generator is shapes_cityscapes:  # (cities, frames per city, seed)
        sizes = {split: len(cities) * frames for split, (cities, frames, _) in generator.SPLITS.items()}
    if generator is sintel_pairs:  # scenes of FRAMES frames -> pairs
        sizes = {split: scenes * (generator.FRAMES - 1) for split, (scenes, *_) in generator.SPLITS.items()}
    train = sizes.get("train", sizes.get("training"))
    val = sizes.get("val", sizes.get("validation"))
    assert 150 <= train <= 1000 and 90 <= val <= 200


def test_unknown_embedded_split_is_a_one_line_error():
    with pytest.raises(UnknownNameError, match="the embedded coco-shapes dataset has splits train, val, not 'test'"):
        materialise_split("coco-shapes", shapes_coco, "test")


def test_check_refuses_a_task_the_dataset_does_not_serve():
    result = CliRunner().invoke(main, ["datasets", "check", "--dataset", "ade20k", "--task", "flow"])
    assert result.exit_code == 2 and "serves tasks semantic, not 'flow'" in result.output
    result = CliRunner().invoke(main, ["datasets", "check", "--dataset", "cocoo"])
    assert result.exit_code == 2 and "did you mean 'coco'" in result.output


def test_check_reports_a_missing_root_and_exits_non_zero(tmp_path):
    for name in READERS:
        result = run_check(name, tmp_path / "missing")
        assert_problems(result, "does not exist")


def test_report_raises_unless_problems_are_being_collected():
    with pytest.raises(DataError, match="first"):
        report(DataError("first"))
    with collecting_problems() as problems:
        report(DataError("first", "a.json"))
        report(DataError("second"))
    assert problems == ["a.json: first", "second"]
    with pytest.raises(DataError):
        report(DataError("after the block"))
