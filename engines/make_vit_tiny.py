"""Write a compute-realistic ViT-Tiny/16 (224×224, 5.7 M parameters, 1.3 GMACs per image as timm counts it) with
deterministic random weights, for benchmarks: its logits mean nothing, its cost is that of the real model.

    .venv/bin/python engines/make_vit_tiny.py [--out engines/out/vit_tiny16_224.onnx] [--seed 0]

or from code: `make_vit_tiny(out_path, seed=0) -> Path`. Writes `<out>.manifest.json` next to the model.
Needs numpy and onnx only; no download.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import onnx

ENGINES = Path(__file__).resolve().parent
if str(ENGINES) not in sys.path:
    sys.path.insert(0, str(ENGINES))

from vit_onnx import INPUT_NAME, OUTPUT_NAME, ViTConfig, build_model, init_weights  # noqa: E402

DEFAULT_OUT = ENGINES / "out" / "vit_tiny16_224.onnx"
# timm `vit_tiny_patch16_224`: embed 192, depth 12, heads 3, MLP ratio 4, ImageNet-1k head.
VIT_TINY_16_224 = ViTConfig(
    image_size=224, patch_size=16, in_chans=3, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
    num_classes=1000,
)


def vit_tiny_manifest(model_name: str = "vit-tiny16-224") -> Dict[str, Any]:
    """The manifest the runners read (jetvit_daemon.runners.manifest.Manifest)."""
    size = VIT_TINY_16_224.image_size
    return {
        "format": 1,
        "model_name": model_name,
        "framework": "onnx",
        "input": {"name": INPUT_NAME, "shape": [-1, 3, size, size], "dtype": "float32", "layout": "NCHW"},
        "outputs": [OUTPUT_NAME],
        # ImageNet statistics, as timm's ViT-Tiny expects its input.
        "preprocess": {
            "resize": "center_crop",
            "interpolation": "linear",
            "channel_order": "RGB",
            "scale": 1.0 / 255.0,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        "labels": None,
        "precision": "fp32",
        "batch": {"min": 1, "max": 32},
    }


def make_vit_tiny(out_path: Union[str, Path] = DEFAULT_OUT, seed: int = 0) -> Path:
    """Build ViT-Tiny/16 with `init_weights(cfg, seed)` into `out_path` plus its manifest; returns the path.
    The same seed writes the same weights on every machine."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = build_model(VIT_TINY_16_224, init_weights(VIT_TINY_16_224, seed), model_name="vit-tiny16-224")
    onnx.save(model, str(out))
    manifest = out.with_name(out.stem + ".manifest.json")
    manifest.write_text(json.dumps(vit_tiny_manifest(), indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write a ViT-Tiny/16 ONNX model with deterministic weights.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model path (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: %(default)s)")
    args = parser.parse_args(argv)
    path = make_vit_tiny(args.out, args.seed)
    print("wrote {} ({:.1f} MB) and {}".format(
        path, path.stat().st_size / 1e6, path.with_name(path.stem + ".manifest.json").name
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
