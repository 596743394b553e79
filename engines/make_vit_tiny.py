"""Write a compute-realistic ViT-Tiny/16 (224×224, 5.7 M parameters, 1.3 GMACs per image as timm counts it) with
deterministic random weights, for benchmarks: its logits mean nothing, its cost is that of the real model.

    .venv/bin/python engines/make_vit_tiny.py [--out engines/out/vit_tiny16_224.onnx] [--seed 0] [--fold]

The same as `jetvit-daemon engine export --vit-tiny-random --out FILE`; from code:
`jetvit_daemon.engine.export.make_vit_tiny(out_path, seed=0) -> Path`. Writes `<out>.manifest.json` next to the
model. Needs numpy and onnx only; no download.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from jetvit_daemon.engine.export import make_vit_tiny, vit_tiny_config

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "vit_tiny16_224.onnx"
VIT_TINY_16_224 = vit_tiny_config()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write a ViT-Tiny/16 ONNX model with deterministic weights.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model path (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: %(default)s)")
    parser.add_argument("--fold", action="store_true", help="fold the preprocessing in: uint8 BGR NHWC input")
    args = parser.parse_args(argv)
    path = make_vit_tiny(args.out, args.seed, fold=args.fold)
    print("wrote {} ({:.1f} MB) and {}".format(
        path, path.stat().st_size / 1e6, path.with_name(path.stem + ".manifest.json").name
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
