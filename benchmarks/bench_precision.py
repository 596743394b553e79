"""fp32 vs fp16-converted vs int8-QDQ models through ONNX Runtime on this machine: accuracy, agreement, file size
and CPU speed, for the figures in docs/ENGINES.md and docs/PERFORMANCE.md ("Model precision").

    .venv/bin/python benchmarks/bench_precision.py [--seconds 8] [--agreement-inputs 1000] [--skip-tiny]

1. The bundled digits ViT (jetvit_daemon/assets/vit_digits) converted with `engine export`'s own functions:
   fp16 (float16 weights and compute; softmax, layer norm and logits float32) and int8 (Q/DQ, entropy calibration
   on 256 frames of digits from scikit-learn's digits set that are not in the held-out set, filmed by the
   synthetic camera and written as PNGs). Top-1 on the held-out set (jetvit_daemon/assets/digits_test.npz),
   each digit filmed `--renders` times, every frame through the daemon's Preprocessor.
2. ViT-Tiny/16 (engines/make_vit_tiny.py's seeded random weights) at fp32, fp16 and int8 (calibrated on 128
   generated frames): how often fp16 and int8 give the fp32 top-1 on `--agreement-inputs` other generated frames,
   and each file's size.
3. `bench` (runner.infer alone, one ONNX Runtime thread as the daemon) of ViT-Tiny fp32 against int8 at batch 1
   and 8, the runs interleaved (fp32, int8, fp32, int8 per batch) so both see the same machine load.

Needs scikit-learn (the calibration digits; `pip install scikit-learn`) besides the cpu and export extras.
"""

import argparse
import platform
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.engine.bench import run_bench
from jetvit_daemon.engine.export import make_vit_tiny
from jetvit_daemon.engine.precision import convert_precision
from jetvit_daemon.pipeline.digits import load_digits_test, render_digit_frame
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.runners.manifest import load_manifest, write_manifest
from jetvit_daemon.runners.ort_runner import OrtRunner

PRECISIONS = ("fp32", "fp16", "int8")


def _copy_model(src: Path, folder: Path, precision: str) -> Path:
    """The model and its manifest (and labels) under folder/<stem>_<precision>.onnx."""
    out = folder / f"{src.stem}_{precision}.onnx"
    out.write_bytes(src.read_bytes())
    write_manifest(out, load_manifest(src))
    return out


def _convert(src: Path, folder: Path, calib: Path) -> Dict[str, Path]:
    models = {}
    for precision in PRECISIONS:
        path = _copy_model(src, folder, precision)
        manifest = load_manifest(path)
        source = convert_precision(path, precision, manifest, calib_images=calib, calib_method="entropy")
        write_manifest(path, manifest.model_copy(update={"precision": precision, "precision_source": source}))
        models[precision] = path
    return models


def _logits(path: Path, x: np.ndarray, batch: int = 32) -> np.ndarray:
    runner = OrtRunner(path, intra_op_threads=1)
    try:
        return np.concatenate([runner.infer(x[i:i + batch])["logits"] for i in range(0, len(x), batch)])
    finally:
        runner.close()


def _calibration_digits(count: int) -> np.ndarray:
    """Digits of scikit-learn's set that are not in the bundled held-out set, spread over it."""
    from sklearn.datasets import load_digits

    held_out, _ = load_digits_test()
    seen = {d.tobytes() for d in held_out}
    pool = [d for d in load_digits().images.astype(np.uint8) if d.tobytes() not in seen]
    step = len(pool) / float(count)
    return np.stack([pool[int(i * step)] for i in range(count)])


def digits_accuracy(folder: Path, renders: int) -> List[Tuple[str, float, int]]:
    calib = folder / "digits-calib"
    calib.mkdir()
    rng = np.random.default_rng(7)
    for i, digit in enumerate(_calibration_digits(256)):
        cv2.imwrite(str(calib / f"{i:04d}.png"), render_digit_frame(digit, rng))
    models = _convert(DEFAULT_MODEL, folder, calib)
    manifest = load_manifest(DEFAULT_MODEL)
    pre = Preprocessor(manifest.preprocess, manifest.input)
    images, labels = load_digits_test()
    rng = np.random.default_rng(11)
    frames = np.concatenate([pre.batch([render_digit_frame(d, rng) for _ in range(renders)]) for d in images])
    truth = np.repeat(labels, renders)
    rows = []
    for precision, path in models.items():
        top1 = _logits(path, frames).argmax(axis=1)
        rows.append((precision, 100.0 * float((top1 == truth).mean()), path.stat().st_size))
    return rows


def _generated_frames(count: int, seed: int) -> List[np.ndarray]:
    """Camera-like BGR frames: smooth random shapes and gradients plus noise (no data set needed)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        small = rng.integers(0, 256, size=(6, 8, 3)).astype(np.float32)
        frame = cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC)
        frame += rng.normal(0, 8, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def tiny_agreement(folder: Path, inputs: int) -> Tuple[Dict[str, Path], List[Tuple[str, float, int]]]:
    src = make_vit_tiny(folder / "vit_tiny16_224.onnx")
    calib = folder / "tiny-calib"
    calib.mkdir()
    for i, frame in enumerate(_generated_frames(128, seed=1)):
        cv2.imwrite(str(calib / f"{i:04d}.png"), frame)
    models = _convert(src, folder, calib)
    manifest = load_manifest(src)
    pre = Preprocessor(manifest.preprocess, manifest.input)
    x = np.concatenate([pre.batch(f) for f in np.array_split(np.stack(_generated_frames(inputs, seed=2)),
                                                            max(1, inputs // 50))])
    reference = _logits(models["fp32"], x).argmax(axis=1)
    rows = []
    for precision, path in models.items():
        agree = 100.0 * float((_logits(path, x).argmax(axis=1) == reference).mean())
        rows.append((precision, agree, path.stat().st_size))
    return models, rows


def speed(models: Dict[str, Path], seconds: float) -> List[Tuple[int, float, float]]:
    rows = []
    for batch in (1, 8):
        fps: Dict[str, List[float]] = {"fp32": [], "int8": []}
        for _ in range(2):  # interleaved: both precisions see the same load
            for precision in ("fp32", "int8"):
                runner = OrtRunner(models[precision], intra_op_threads=1)
                try:
                    fps[precision].append(run_bench(runner, batch, seconds / 2, warmup_s=1.0).frames_per_s)
                finally:
                    runner.close()
        rows.append((batch, float(np.mean(fps["fp32"])), float(np.mean(fps["int8"]))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed bench per precision and batch")
    parser.add_argument("--renders", type=int, default=3, help="frames filmed per held-out digit")
    parser.add_argument("--agreement-inputs", type=int, default=1000)
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    import onnxruntime

    print(f"machine: {platform.machine()} {platform.processor() or ''}, ONNX Runtime {onnxruntime.__version__}, "
          "CPUExecutionProvider, 1 intra-op thread")
    with tempfile.TemporaryDirectory(prefix="jetvit-precision-") as tmp:
        folder = Path(tmp)
        rows = digits_accuracy(folder, args.renders)
        images = len(load_digits_test()[1]) * args.renders
        print(f"\ndigits ViT, held-out set ({images} frames), top-1 through ONNX Runtime:")
        print("| precision | top-1 | vs fp32 | file |\n|---|---|---|---|")
        base = rows[0][1]
        for precision, top1, size in rows:
            print(f"| {precision} | {top1:.2f} % | {top1 - base:+.2f} points | {size / 1e3:.0f} kB |")
        if args.skip_tiny:
            return
        models, rows = tiny_agreement(folder, args.agreement_inputs)
        print(f"\nViT-Tiny/16, top-1 agreement with fp32 on {args.agreement_inputs} generated frames:")
        print("| precision | agrees with fp32 | file |\n|---|---|---|")
        for precision, agree, size in rows:
            print(f"| {precision} | {agree:.1f} % | {size / 1e6:.1f} MB |")
        print(f"\nViT-Tiny/16 `bench`, ONNX Runtime CPU, 1 thread, {args.seconds:g} s per precision and batch "
              "(interleaved):")
        print("| batch | fp32 frames/s | int8 QDQ frames/s | int8 / fp32 |\n|---|---|---|---|")
        for batch, fp32, int8 in speed(models, args.seconds):
            print(f"| {batch} | {fp32:.1f} | {int8:.1f} | {int8 / fp32:.2f}x |")


if __name__ == "__main__":
    main()
