"""The one schedule of the in-repo trainers: lengths in epochs or steps convert exactly, batches follow the epochs.

The committed weights were trained with two batch orders (per-epoch permutations cut into whole batches for
detection and top-down keypoints; chained permutations for segmentation, flow and OpenPose); these tests pin
both against the loops they replaced, so a change to either moves these numbers before it moves any weights.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from adapters.inrepo.train_loop import EpochOrder, Schedule
from harness.core.errors import BenchError
from harness.run.trainers import TRAINERS, TrainFunction


def test_an_epoch_of_whole_batches_drops_the_tail_and_converts_exactly():
    schedule = Schedule(epochs=3, batch_size=16)
    assert schedule.steps_per_epoch(40) == 2 and schedule.total_steps(40) == 6
    assert schedule.total_steps(10) == 3  # fewer items than a batch: one (short) batch per epoch
    assert schedule.in_steps(40).steps == 6 and schedule.in_steps(40).epochs is None
    assert schedule.in_steps(40, max_steps=5).steps == 5 and schedule.in_steps(40, max_steps=9).steps == 6
    assert schedule.in_steps(40, max_steps=3).epochs_run(40) == 1.5
    assert Schedule(epochs=0.5, batch_size=16).total_steps(40) == 1


def test_chained_epochs_convert_through_the_fraction_of_an_epoch_a_batch_is():
    schedule = Schedule(epochs=1.5, batch_size=4, drop_last=False)
    assert schedule.total_steps(10) == 4  # ceil(1.5 * 10 / 4)
    assert Schedule(steps=4, batch_size=4, drop_last=False).epochs_run(10) == 1.6


def test_overrides_replace_the_length_and_steps_win():
    schedule = Schedule(epochs=24, batch_size=16)
    assert schedule.overridden(steps=7).total_steps(1000) == 7
    assert schedule.overridden(epochs=2, steps=7).total_steps(1000) == 7
    assert schedule.overridden(epochs=2, batch_size=8).total_steps(40) == 10
    assert schedule.overridden() == schedule
    with pytest.raises(BenchError, match="epochs must be positive"):
        schedule.overridden(epochs=0)
    with pytest.raises(BenchError, match="steps must be at least 1"):
        schedule.overridden(steps=0)
    with pytest.raises(ValueError):
        Schedule(epochs=1, steps=1)


def test_whole_batch_order_equals_a_loop_over_shuffled_epochs():
    for count, size in ((40, 16), (10, 16), (32, 16)):
        old, new = np.random.default_rng(5), np.random.default_rng(5)
        expected = []
        per_epoch = max(count // size, 1)
        for _ in range(3):
            order = old.permutation(count)
            for start in range(0, per_epoch * size, size):
                expected.append(order[start: start + size])
                old.random()  # an augmentation draw between batches
        order = EpochOrder(new, count, drop_last=True)
        for batch in expected:
            np.testing.assert_array_equal(order.take(size), batch)
            new.random()
        assert old.random() == new.random()


def test_chained_order_tops_a_batch_up_from_the_next_epoch():
    rng = np.random.default_rng(2)
    first = np.random.default_rng(2).permutation(10)
    order = EpochOrder(rng, 10)
    np.testing.assert_array_equal(order.take(4), first[:4])
    np.testing.assert_array_equal(order.take(4), first[4:8])
    batch = order.take(4)
    reference = np.random.default_rng(2)
    reference.permutation(10)
    second = reference.permutation(10)
    np.testing.assert_array_equal(batch, np.concatenate([first[8:], second[:2]]))


def test_every_registered_trainer_has_the_one_entry_point():
    expected = inspect.signature(TrainFunction.__call__).parameters
    for task in TRAINERS.names():
        parameters = inspect.signature(TRAINERS.get(task).train).parameters
        assert list(parameters) == [name for name in expected if name != "self"], task
