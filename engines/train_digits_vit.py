"""Train the bundled ViT on scikit-learn's handwritten digits, filmed by the daemon's own synthetic camera, and
export it to `jetvit_daemon/assets/vit_digits/`.

    .venv/bin/pip install torch            # CPU build is enough; `pip install .[train]` names it
    .venv/bin/python engines/train_digits_vit.py

Inputs are produced exactly as the daemon produces them at run time: each training digit is rendered by
`render_digit_frame` (640×480 BGR, random placement, light and noise) and turned into a tensor by the
`Preprocessor` built from the very manifest this script ships, so training and serving cannot drift apart.
The held-out split is written to `jetvit_daemon/assets/digits_test.npz` for the synthetic camera.

Everything is seeded; on 2 CPU threads the whole run takes about five minutes.
"""

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from jetvit_daemon.engine.vit_onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    ViTConfig,
    build_model,
    count_params,
    init_weights,
)
from jetvit_daemon.pipeline.digits import DIGITS_TEST_FILE, render_digit_frame
from jetvit_daemon.pipeline.preprocess import Preprocessor
from jetvit_daemon.runners.manifest import load_labels, load_manifest

ENGINES = Path(__file__).resolve().parent
REPO = ENGINES.parent
ASSET_DIR = REPO / "jetvit_daemon" / "assets" / "vit_digits"
MODEL_PATH = ASSET_DIR / "vit_digits.onnx"
LABELS_FILE = "vit_digits.labels.txt"
# The daemon's synthetic camera films 640×480 frames (jetvit_daemon.pipeline.digits defaults).
FRAME_W, FRAME_H = 640, 480
CONFIG = ViTConfig(
    image_size=32, patch_size=4, in_chans=3, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0, num_classes=10
)
MANIFEST = {
    "format": 1,
    "model_name": "vit-digits",
    "framework": "onnx",
    "input": {"name": INPUT_NAME, "shape": [-1, 3, 32, 32], "dtype": "float32", "layout": "NCHW"},
    "outputs": [OUTPUT_NAME],
    "preprocess": {
        "resize": "center_crop",
        "interpolation": "area",
        "channel_order": "RGB",
        "scale": 1.0 / 255.0,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    },
    "labels": LABELS_FILE,
    "precision": "fp32",
    "batch": {"min": 1, "max": 32},
}
# Seed of the evaluation renders; tests/engines/test_vit_onnx.py renders its smoke set the same way.
EVAL_SEED = 1234


# ---------------------------------------------------------------------------------------------------------
# The torch twin of jetvit_daemon/engine/vit_onnx.py: same maths, same (timm) parameter names.


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.head_dim**-0.5, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU, as the ONNX graph spells it
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class TorchViT(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches + 1, cfg.embed_dim))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def to_numpy_weights(model: nn.Module) -> Dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------------------
# Data


def write_manifest_and_labels() -> None:
    ASSET_DIR.mkdir(parents=True, exist_ok=True)
    (ASSET_DIR / "vit_digits.manifest.json").write_text(json.dumps(MANIFEST, indent=2) + "\n", encoding="utf-8")
    (ASSET_DIR / LABELS_FILE).write_text("".join(f"{i}\n" for i in range(10)), encoding="utf-8")


def split_digits(seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    images = digits.images.astype(np.uint8)  # 8×8, ink 0..16
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=seed
    )
    return x_train, x_test, y_train, y_test


def warp_digit(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slightly rotated, sheared and rescaled copy of an 8×8 digit (float, same 0..16 ink), at 32×32 so the
    warp does not eat strokes; render_digit_frame scales any square digit to its frame size."""
    import cv2

    big = cv2.resize(digit.astype(np.float32), (32, 32), interpolation=cv2.INTER_LINEAR)
    angle = math.radians(rng.uniform(-12, 12))
    shear = rng.uniform(-0.2, 0.2)
    scale = rng.uniform(0.9, 1.1)
    a = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) @ np.array(
        [[1.0, shear], [0.0, 1.0]]
    )
    centre = np.array([15.5, 15.5])
    m = np.hstack([a, (centre - a @ centre)[:, None]]).astype(np.float32)
    return cv2.warpAffine(big, m, (32, 32), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _render_chunk(args: Tuple[np.ndarray, int, int, int, float]) -> np.ndarray:
    """Render `renders` frames of each digit and preprocess them. A seed per (chunk, digit) keeps the result
    independent of how the work is split between processes."""
    digits, renders, seed, first_index, warp_fraction = args
    pre = Preprocessor(*_specs())
    warped = round(renders * warp_fraction)
    out = []
    for i, digit in enumerate(digits):
        rng = np.random.default_rng([seed, first_index + i])
        sources = [warp_digit(digit, rng) if j < warped else digit for j in range(renders)]
        out.append(pre.batch([render_digit_frame(src, rng, FRAME_W, FRAME_H) for src in sources]))
    return np.concatenate(out) if out else np.zeros((0, 3, 32, 32), np.float32)


def _specs() -> tuple:
    manifest = load_manifest(MODEL_PATH)
    return manifest.preprocess, manifest.input


def render_set(
    images: np.ndarray, renders: int, seed: int, workers: int, warp_fraction: float = 0.0
) -> np.ndarray:
    """[N*renders, 3, 32, 32]: frame j of digit i sits at row i*renders + j."""
    chunk = 64
    jobs = [(images[s : s + chunk], renders, seed, s, warp_fraction) for s in range(0, len(images), chunk)]
    if workers <= 1:
        return np.concatenate([_render_chunk(job) for job in jobs])
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(_render_chunk, jobs)))


# ---------------------------------------------------------------------------------------------------------
# Train, export, verify


def lr_scale(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero: the usual schedule for training a ViT from scratch."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, lr: float, seed: int) -> TorchViT:
    torch.manual_seed(seed)
    model = TorchViT(CONFIG)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in init_weights(CONFIG, seed).items()})
    # Weight decay on matrices only, not on biases, norms, the class token or the position embedding (timm).
    decay: List[nn.Parameter] = []
    no_decay: List[nn.Parameter] = []
    for name, param in model.named_parameters():
        (decay if param.ndim >= 2 and name not in ("cls_token", "pos_embed") else no_decay).append(param)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps_per_epoch = math.ceil(len(xt) / batch_size)
    total, warmup = epochs * steps_per_epoch, steps_per_epoch // 2
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    step = 0
    for epoch in range(epochs):
        model.train()
        t0, seen, correct, loss_sum = time.monotonic(), 0, 0, 0.0
        for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
            scale = lr_scale(step, warmup, total)
            for group in opt.param_groups:
                group["lr"] = lr * scale
            logits = model(xt[idx])
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
        print(
            f"epoch {epoch + 1:2d}/{epochs}  loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}"
            f"  lr {lr * scale:.2e}  {time.monotonic() - t0:.0f} s",
            flush=True,
        )
    model.eval()
    return model


def ort_logits(session: ort.InferenceSession, x: np.ndarray, batch: int = 32) -> np.ndarray:
    outs = [session.run([OUTPUT_NAME], {INPUT_NAME: x[s : s + batch]})[0] for s in range(0, len(x), batch)]
    return np.concatenate(outs)


def main() -> int:
    parser = argparse.ArgumentParser(description="Train the bundled digits ViT and export it to ONNX.")
    parser.add_argument("--renders", type=int, default=16, help="random renders per training digit")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warp-fraction", type=float, default=0.5, help="share of renders of a warped digit")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    started = time.monotonic()
    torch.set_num_threads(args.threads)
    write_manifest_and_labels()
    x_train, x_test, y_train, y_test = split_digits(args.seed)
    np.savez_compressed(DIGITS_TEST_FILE, images=x_test, labels=y_test)
    print(f"digits: {len(x_train)} train, {len(x_test)} held out -> {DIGITS_TEST_FILE.relative_to(REPO)}")

    t0 = time.monotonic()
    x = render_set(x_train, args.renders, args.seed, args.threads, args.warp_fraction)
    y = np.repeat(y_train, args.renders)
    print(f"rendered {len(x)} training frames in {time.monotonic() - t0:.0f} s", flush=True)

    print(f"model: {count_params(CONFIG)} params, {CONFIG}")
    model = train(x, y, args.epochs, args.batch_size, args.lr, args.seed)

    weights = to_numpy_weights(model)
    onnx.save(build_model(CONFIG, weights, model_name="vit-digits"), str(MODEL_PATH))
    session = ort.InferenceSession(str(MODEL_PATH), providers=["CPUExecutionProvider"])

    x_eval = render_set(x_test, 1, EVAL_SEED, args.threads)
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x_eval[:64])).numpy()
    diff = float(np.abs(ort_logits(session, x_eval[:64]) - torch_out).max())
    print(f"onnxruntime vs torch: max abs logit diff {diff:.2e}")
    if diff >= 1e-3:
        print("FAIL: the ONNX graph does not match the torch model", file=sys.stderr)
        return 1

    labels = load_labels(MODEL_PATH, load_manifest(MODEL_PATH))
    assert labels == [str(i) for i in range(10)]
    pred = ort_logits(session, x_eval).argmax(1)
    acc = float((pred == y_test).mean())
    print(
        f"held-out accuracy, render_digit_frame(seed {EVAL_SEED}) -> Preprocessor -> onnxruntime: {acc:.4f}"
        f" ({int((pred == y_test).sum())}/{len(y_test)})"
    )
    size_kb = MODEL_PATH.stat().st_size / 1e3
    print(f"wrote {MODEL_PATH.relative_to(REPO)} ({size_kb:.0f} kB); total {time.monotonic() - started:.0f} s")
    if acc < 0.95:
        print("FAIL: held-out accuracy below 0.95", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
