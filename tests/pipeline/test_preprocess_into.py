"""Preprocessing straight into the input slot (`Preprocessor.batch_into`, the pipeline's path): the same values
as the per-frame reference (`batch`) for every input layout, dtype and channel order the manifest allows, for
frames already at the model's size and frames that need resizing; only the batch's rows are written; nothing
frame-sized is allocated per batch once warm; the resizing threads end with `close`."""

import itertools
import threading
import tracemalloc

import numpy as np
import pytest

from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.runners.manifest import InputSpec, PreprocessSpec

SIZE = 224
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def make(dtype: str, layout: str, order: str, resize: str = "center_crop", threads=None) -> Preprocessor:
    shape = [-1, 3, SIZE, SIZE] if layout == "NCHW" else [-1, SIZE, SIZE, 3]
    spec = InputSpec(name="x", shape=shape, dtype=dtype, layout=layout)
    pre = PreprocessSpec(resize=resize, interpolation="linear", channel_order=order,
                         normalize="graph" if dtype == "uint8" else "cpu", **IMAGENET)
    return Preprocessor(pre, spec, resize_threads=threads)


def frames(n: int, height: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


# float32: OpenCV's multiply-add rounds once where numpy's multiply then add round twice (≤ 1 ulp apart);
# float16: computed in float32 like the reference, then rounded (a 1-ulp float32 difference may flip it).
TOLERANCE = {"float32": 1e-6, "float16": 2e-3, "uint8": 0}


@pytest.mark.parametrize("dtype,layout,order", list(itertools.product(["float32", "float16", "uint8"],
                                                                      ["NCHW", "NHWC"], ["RGB", "BGR"])))
@pytest.mark.parametrize("height,width", [(SIZE, SIZE), (720, 1280), (300, 200)])
def test_batch_into_gives_the_reference_values(dtype, layout, order, height, width):
    pre = make(dtype, layout, order, threads=2)
    images = frames(5, height, width)
    slot = np.full((8, *pre.input_spec.item_shape), 7, dtype=dtype)
    try:
        pre.batch_into(images, slot[:5])
    finally:
        pre.close()
    expected = pre.batch(images)
    np.testing.assert_allclose(slot[:5].astype(np.float64), expected.astype(np.float64), rtol=0,
                               atol=TOLERANCE[dtype])
    assert (slot[5:] == 7).all(), "rows past the batch were written"


def test_stretch_resizes_the_whole_frame_like_the_reference():
    pre = make("float32", "NCHW", "RGB", resize="stretch")
    images = frames(3, 720, 1280)
    out = np.empty((3, 3, SIZE, SIZE), np.float32)
    pre.batch_into(images, out)
    np.testing.assert_allclose(out, pre.batch(images), rtol=0, atol=1e-6)


@pytest.mark.parametrize("height,width", [(SIZE, SIZE), (720, 1280)])
def test_a_warm_batch_allocates_nothing_frame_sized(height, width):
    """The slot array is the output and the buffers are made once: after a warm-up batch, 30 more allocate
    less than one frame's worth in all (tracemalloc sees numpy's and OpenCV's arrays alike)."""
    pre = make("float32", "NCHW", "RGB", threads=2)
    images = frames(8, height, width)
    slot = np.empty((8, 3, SIZE, SIZE), np.float32)
    try:
        pre.batch_into(images, slot)  # warm: row buffers, the thread pool
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(30):
            pre.batch_into(images, slot)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        pre.close()
    one_plane = SIZE * SIZE  # the smallest thing a copy per frame would allocate (a uint8 channel)
    assert peak - base < one_plane, f"{peak - base} bytes at peak over 30 batches"
    assert current - base < one_plane


def test_bad_frames_and_arrays_are_refused_with_what_is_wrong():
    pre = make("float32", "NCHW", "RGB")
    out = np.empty((1, 3, SIZE, SIZE), np.float32)
    with pytest.raises(ValueError, match="H×W×3"):
        pre.batch_into([np.zeros((SIZE, SIZE), np.uint8)], out)
    with pytest.raises(ValueError, match="uint8"):
        pre.batch_into([np.zeros((SIZE, SIZE, 3), np.float32)], out)
    with pytest.raises(ValueError, match=r"2 frames for an array of float32 \[1, 3, 224, 224\]"):
        pre.batch_into(frames(2, SIZE, SIZE), out)
    with pytest.raises(ValueError, match="the model takes float32"):
        pre.batch_into(frames(1, SIZE, SIZE), np.empty((1, 3, SIZE, SIZE), np.float16))


def test_close_ends_the_resizing_threads_and_a_later_batch_starts_them_again():
    def pool_threads():
        return [t for t in threading.enumerate() if t.name.startswith("preprocess")]

    pre = make("float32", "NCHW", "RGB", threads=2)
    images = frames(4, 720, 1280)
    out = np.empty((4, 3, SIZE, SIZE), np.float32)
    pre.batch_into(images, out)
    assert pool_threads(), "a batch of frames to resize runs in the pool"
    pre.close()
    assert not pool_threads()
    pre.batch_into(images, out)
    pre.close()
    np.testing.assert_allclose(out, pre.batch(images), rtol=0, atol=1e-6)
