import pytest

from harness.core.errors import UnknownNameError
from harness.core.registry import Registry


def test_unknown_name_suggests_the_closest_registered_one():
    registry: Registry = Registry("model", ())
    registry.register("heatmap")(object)
    registry.register("regression")(object)
    with pytest.raises(UnknownNameError, match=r"unknown model 'heatmaps'; did you mean 'heatmap'\?"):
        registry.get("heatmaps")


def test_prefix_entries_take_an_argument():
    registry: Registry = Registry("model", ())
    marker = type("Marker", (), {})  # entries must be classes or factories
    registry.register("mmdet:")(marker)
    assert registry.get("mmdet:rtmdet_tiny") is marker
    with pytest.raises(UnknownNameError):
        registry.get("mmseg:fcn")


def test_registering_two_objects_under_one_name_is_refused():
    registry: Registry = Registry("task", ())
    registry.register("a")(int)
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.register("a")(float)


def test_discovery_finds_the_packages_registrations():
    from harness.tasks import TASKS

    assert "keypoints" in TASKS.names()
