"""The shared slots: a fixed layout, the same memory seen from two mappings, views made once."""

import os

import numpy as np
import pytest

from jetvit_daemon.runners.shm_slots import ALIGN, PAGE, SlotFile, SlotLayout, TensorLayout


def layout(n_slots: int = 2) -> SlotLayout:
    return SlotLayout(TensorLayout("pixel_values", (3, 32, 32), "float32"),
                      [TensorLayout("logits", (10,), "float32"), TensorLayout("ids", (1,), "int64")],
                      max_batch=8, n_slots=n_slots)


def test_layout_is_fixed_by_shape_dtype_and_max_batch():
    lay = layout()
    assert lay.offsets["pixel_values"] == 0
    assert lay.offsets["logits"] == 8 * 3 * 32 * 32 * 4  # already a multiple of ALIGN
    assert lay.offsets["ids"] % ALIGN == 0 and lay.offsets["ids"] >= lay.offsets["logits"] + 8 * 10 * 4
    # whole pages (the TensorRT runner page-locks the whole mapping), the least that holds both slots
    assert lay.total_nbytes % PAGE == 0 and 0 <= lay.total_nbytes - 2 * lay.slot_nbytes < PAGE
    assert SlotLayout.from_dict(lay.to_dict()) == lay


def test_what_one_side_writes_the_other_reads(tmp_path):
    lay = layout()
    mine = SlotFile.create(lay, str(tmp_path))
    peer = SlotFile.attach(mine.path, lay)
    try:
        batch = np.random.default_rng(0).random((5, 3, 32, 32), dtype=np.float32)
        mine.input(1)[:5] = batch
        np.testing.assert_array_equal(peer.input(1)[:5], batch)
        assert not peer.input(0).any()  # slot 0 untouched: the slots do not overlap
        peer.output(1, "logits")[:5] = 7.0
        peer.output(1, "ids")[:5] = 42
        assert (mine.output(1, "logits")[:5] == 7.0).all() and (mine.output(1, "ids")[:5] == 42).all()
        assert not mine.output(0, "logits").any()
        assert os.stat(mine.path).st_size == lay.total_nbytes
        assert os.stat(mine.path).st_mode & 0o077 == 0  # only this user
    finally:
        peer.close()
        mine.close()
    assert not os.path.exists(mine.path)  # the creator removes it


def test_views_are_made_once_and_reused():
    lay = layout()
    slots = SlotFile.create(lay)
    try:
        assert slots.input(0) is slots.input(0) and slots.output(1, "logits") is slots.output(1, "logits")
        assert slots.input(0).shape == (8, 3, 32, 32) and slots.input(0).dtype == np.float32
    finally:
        slots.close()


def test_default_directory_is_dev_shm_where_there_is_one():
    slots = SlotFile.create(layout())
    try:
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            assert slots.path.startswith("/dev/shm/jetvit-slots-")
    finally:
        slots.close()


def test_attaching_with_another_layout_is_refused(tmp_path):
    slots = SlotFile.create(layout(2), str(tmp_path))
    try:
        with pytest.raises(ValueError, match="the layout needs"):
            SlotFile.attach(slots.path, layout(3))
    finally:
        slots.close()


def test_the_whole_mapping_is_one_page_aligned_array_for_page_locking(tmp_path):
    slots = SlotFile.create(layout(), str(tmp_path))
    try:
        memory = slots.memory()
        assert memory.dtype == np.uint8 and memory.nbytes == slots.layout.total_nbytes
        start = memory.__array_interface__["data"][0]
        assert start % PAGE == 0 and memory.nbytes % PAGE == 0
        for k in range(slots.n_slots):  # every slot's areas lie inside it
            for view in [slots.input(k), *slots.outputs(k).values()]:
                address = view.__array_interface__["data"][0]
                assert start <= address and address + view.nbytes <= start + memory.nbytes
        slots.input(1)[0, 0, 0, 0] = 1.5
        assert memory.view(np.float32)[slots.layout.slot_nbytes // 4] == 1.5  # the same memory
    finally:
        slots.close()
