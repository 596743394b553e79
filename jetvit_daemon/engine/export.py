"""ViT checkpoint → ONNX model with a dynamic batch axis, plus its manifest (`jetvit-daemon engine export`).

    weights = load_checkpoint(Path("vit_small.npz"))           # .npz, .safetensors, or torch .pth/.pt
    cfg = config_from_weights(weights)                          # shapes read off the weights
    export_onnx(weights, cfg, Path("out/vit_small.onnx"), model_name="vit-small", preprocess=IMAGENET,
                fold=True)                                      # graph takes uint8 BGR frames

Weights use timm's names (what `timm.create_model(...).state_dict()` holds). `.npz` needs nothing but numpy;
`.pth`/`.pt` needs torch; a timm model name needs timm (and, for pretrained weights, a download from the
Hugging Face hub on first use). The `onnx` package is needed to write the graph: `pip install
'jetvit-daemon[export]'`. Functions, no state: thread-safe.
"""

import math
import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.manifest import (
    BatchRange,
    InputSpec,
    Manifest,
    PreprocessSpec,
    write_manifest,
)

ONNX_HINT = "the `onnx` package writes the model: pip install 'jetvit-daemon[export]' (or pip install onnx)"
# timm's ImageNet statistics (timm.data.IMAGENET_DEFAULT_MEAN / _STD), what its ViTs expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET = PreprocessSpec(resize="center_crop", interpolation="linear", channel_order="RGB", scale=1.0 / 255.0,
                          mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
# Every standard timm ViT (tiny 192/3, small 384/6, base 768/12, large 1024/16) has 64 dimensions per head;
# the weights do not say the head count, so this is the default when it is not given.
DEFAULT_HEAD_DIM = 64
# Parts of timm ViT variants the graph builder does not implement: refuse them rather than export wrong maths.
_UNSUPPORTED_KEYS = {
    "reg_token": "register tokens",
    "fc_norm.weight": "average pooling with fc_norm (global_pool='avg')",
    "norm_pre.weight": "a pre-norm before the blocks (CLIP-style)",
    "blocks.0.ls1.gamma": "LayerScale",
    "blocks.0.attn.q_norm.weight": "QK normalisation",
    "attn_pool.latent": "attention pooling",
}
_WRAPPERS = ("state_dict", "model", "model_state", "module")
_PREFIXES = ("module.", "model.")


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise EngineError(f"cannot export: {ONNX_HINT}") from None
    return onnx


def load_checkpoint(path: Path) -> Dict[str, np.ndarray]:
    """timm-named float weights from a `.npz`, `.safetensors` or torch `.pth`/`.pt`/`.bin` state dict (plain, or
    wrapped in {"state_dict": ...} / {"model": ...}, keys possibly prefixed "module." or "model.")."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such checkpoint file")
    suffix = path.suffix.lower()
    raw: Mapping[str, Any]
    if suffix == ".npz":
        try:
            with np.load(str(path), allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise EngineError(f"{path}: cannot read the .npz checkpoint: {exc}") from None
    elif suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise EngineError(f"{path}: reading .safetensors needs the safetensors package: pip install "
                              "safetensors") from None
        raw = load_file(str(path))
    elif suffix in (".pth", ".pt", ".bin"):
        raw = _load_torch(path)
    else:
        raise EngineError(f"{path}: unknown checkpoint type {suffix!r}; use .npz (timm names, numpy only), "
                          ".safetensors, or a torch .pth/.pt state dict")
    return _to_numpy(_unwrap(raw))


def _load_torch(path: Path) -> Mapping[str, Any]:
    try:
        import torch
    except ImportError:
        raise EngineError(f"{path}: reading a torch checkpoint needs torch (pip install torch); or convert it to "
                          ".npz elsewhere: np.savez(f, **{k: v.numpy() for k, v in state_dict.items()})") from None
    try:
        # weights_only: tensors and containers only, no arbitrary pickled code (torch 1.13+).
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except TypeError:  # torch older than 1.13 has no weights_only
        data = torch.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises pickle/zip/runtime errors for a damaged or foreign file
        raise EngineError(f"{path}: torch cannot load it as a state dict: {exc}") from None
    if not isinstance(data, Mapping):
        raise EngineError(f"{path}: holds a {type(data).__name__}, not a state dict (save model.state_dict())")
    return data


def _unwrap(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in _WRAPPERS:
        inner = raw.get(key)
        if isinstance(inner, Mapping) and inner:
            raw = inner
            break
    out: Dict[str, Any] = {}
    for key, value in raw.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def _to_numpy(raw: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    out: Dict[str, np.ndarray] = {}
    for key, value in raw.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().float().numpy()
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            out[key] = arr.astype(np.float32)
    return out


def config_from_weights(weights: Mapping[str, np.ndarray], num_heads: Optional[int] = None) -> Any:
    """The ViTConfig the weights describe (image size from the position embedding, depth from the blocks, ...).
    `num_heads` is not in the weights: default embed_dim / 64, as in every standard timm ViT."""
    from jetvit_daemon.engine.vit_onnx import ViTConfig

    unsupported = [why for key, why in _UNSUPPORTED_KEYS.items() if key in weights]
    if unsupported:
        raise EngineError("the checkpoint uses {}, which the exporter does not implement (it builds timm's plain "
                          "VisionTransformer: class token, pre-norm blocks, head on the class token)".format(
                              ", ".join(unsupported)))
    needed = ("patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.0.mlp.fc1.weight", "head.weight")
    missing = [k for k in needed if k not in weights]
    if missing:
        raise EngineError(f"the checkpoint lacks {missing} (timm ViT names expected, e.g. "
                          f"patch_embed.proj.weight, blocks.0.attn.qkv.weight, head.weight); has "
                          f"{sorted(weights)[:6]}...")
    embed_dim, in_chans, patch, patch_w = weights["patch_embed.proj.weight"].shape
    if patch != patch_w:
        raise EngineError(f"non-square patches {patch}x{patch_w} are not supported")
    tokens = int(weights["pos_embed"].shape[1])
    grid = math.isqrt(tokens - 1)
    if grid * grid != tokens - 1:
        raise EngineError(f"pos_embed has {tokens} positions: not a class token plus a square grid of patches")
    depth = 0
    while f"blocks.{depth}.norm1.weight" in weights:
        depth += 1
    hidden = int(weights["blocks.0.mlp.fc1.weight"].shape[0])
    if num_heads is None:
        if embed_dim % DEFAULT_HEAD_DIM:
            raise EngineError(f"embed_dim {embed_dim} is not a multiple of {DEFAULT_HEAD_DIM}: give the head count "
                              "(--num-heads)")
        num_heads = int(embed_dim) // DEFAULT_HEAD_DIM
    try:
        return ViTConfig(image_size=grid * int(patch), patch_size=int(patch), in_chans=int(in_chans),
                         embed_dim=int(embed_dim), depth=depth, num_heads=num_heads,
                         mlp_ratio=hidden / float(embed_dim), num_classes=int(weights["head.weight"].shape[0]))
    except ValueError as exc:
        raise EngineError(f"the checkpoint's shapes do not make a ViT: {exc}") from None


def weights_from_timm(name: str, pretrained: bool = True) -> Tuple[Dict[str, np.ndarray], Any, PreprocessSpec]:
    """(weights, ViTConfig, preprocessing) of a timm ViT; pretrained weights are downloaded on first use."""
    try:
        import timm
    except ImportError:
        raise EngineError("--timm needs timm and torch: pip install timm torch (or export the state dict to .npz "
                          "on a machine that has them and pass --checkpoint)") from None
    try:
        model = timm.create_model(name, pretrained=pretrained)
    except Exception as exc:  # timm raises RuntimeError/OSError/hub errors; all mean "no model here"
        where = (" Pretrained weights are downloaded from the Hugging Face hub on first use; offline, save "
                 "`{k: v.numpy() for k, v in model.state_dict().items()}` to an .npz on a machine with internet "
                 "and pass --checkpoint FILE.") if pretrained else ""
        raise EngineError(f"timm cannot create {name!r} ({exc}).{where}") from None
    weights = _to_numpy(model.state_dict())
    heads = getattr(getattr(getattr(model, "blocks", [None])[0], "attn", None), "num_heads", None)
    cfg = config_from_weights(weights, num_heads=heads)
    pcfg = dict(getattr(model, "pretrained_cfg", None) or {})
    interpolation = {"bilinear": "linear", "bicubic": "linear", "nearest": "nearest"}.get(
        str(pcfg.get("interpolation", "bicubic")), "linear")  # no bicubic in the daemon: linear is the closest
    preprocess = PreprocessSpec(resize="center_crop", interpolation=interpolation, channel_order="RGB",
                                scale=1.0 / 255.0, mean=list(pcfg.get("mean", IMAGENET_MEAN)),
                                std=list(pcfg.get("std", IMAGENET_STD)))
    return weights, cfg, preprocess


def export_onnx(
    weights: Mapping[str, np.ndarray],
    cfg: Any,
    out_path: Path,
    *,
    model_name: str,
    preprocess: PreprocessSpec,
    fold: bool = False,
    labels: Optional[Path] = None,
    max_batch: int = 32,
    decompose_layernorm: bool = False,
    precision: str = "fp32",
    calib_images: Optional[Path] = None,
    calib_method: str = "entropy",
    calib_max_images: int = 512,
) -> Path:
    """Write `out_path` (.onnx, dynamic batch) and its manifest; returns the model path.

    precision: `fp32`, `fp16` (float16 weights and compute, softmax/layer norm/logits kept in float32) or `int8`
    (Q/DQ pairs calibrated on the images in `calib_images` by `calib_method`, entropy or percentile); see
    jetvit_daemon/engine/precision.py. The manifest records the precision and how it was obtained.

    fold: the graph takes uint8 BGR frames [batch, H, W, 3] and normalises them itself; the manifest then says
    `normalize: graph`, `channel_order: BGR`, and the daemon only crops and resizes on the CPU.
    labels: a text file, one label per line, copied next to the model as `<stem>.labels.txt`."""
    onnx = require_onnx()
    from jetvit_daemon.engine.precision import convert_precision
    from jetvit_daemon.engine.vit_onnx import FRAMES_NAME, INPUT_NAME, OUTPUT_NAME, FoldedPreprocess, build_model

    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise EngineError(f"{out_path}: the model file must end in .onnx")
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineError(f"--precision {precision!r}: choose one of fp32, fp16, int8")
    if precision == "int8" and calib_images is None:
        raise EngineError("--precision int8 needs --calib-images DIR: a folder of representative frames from your "
                          "cameras (a few hundred), run through the model's preprocessing to calibrate")
    label_name = _labels_for(labels, out_path, cfg.num_classes)
    folded = None
    if fold:
        if preprocess.normalize == "graph":
            raise EngineError("the preprocessing is already in the graph")
        folded = FoldedPreprocess(scale=preprocess.scale, mean=_triple(preprocess.mean, "mean"),
                                  std=_triple(preprocess.std, "std"), model_channel_order=preprocess.channel_order,
                                  input_channel_order="BGR")
    try:
        model = build_model(cfg, dict(weights), model_name=model_name, decompose_layernorm=decompose_layernorm,
                            fold=folded)
    except ValueError as exc:
        raise EngineError(f"cannot build the ONNX graph: {exc}") from None
    size = cfg.image_size
    if folded is None:
        spec = InputSpec(name=INPUT_NAME, shape=[-1, cfg.in_chans, size, size], dtype="float32", layout="NCHW")
        pre = preprocess
    else:
        spec = InputSpec(name=FRAMES_NAME, shape=[-1, size, size, 3], dtype="uint8", layout="NHWC")
        pre = preprocess.model_copy(update={"channel_order": "BGR", "normalize": "graph"})
    manifest = Manifest(model_name=model_name, framework="onnx", input=spec, outputs=[OUTPUT_NAME], preprocess=pre,
                        labels=label_name, precision="fp32", batch=BatchRange(min=1, max=max_batch))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    if labels is not None and label_name is not None:
        target = out_path.parent / label_name
        if Path(labels).resolve() != target.resolve():
            shutil.copyfile(str(labels), str(target))
    write_manifest(out_path, manifest)
    if precision != "fp32":
        source = convert_precision(out_path, precision, manifest, calib_images=calib_images,
                                   calib_method=calib_method, calib_max_images=calib_max_images)
        manifest = manifest.model_copy(update={"precision": precision, "precision_source": source})
    else:
        manifest = manifest.model_copy(update={"precision_source": convert_precision(out_path, "fp32", manifest)})
    write_manifest(out_path, manifest)
    return out_path


def _triple(values: Sequence[float], what: str) -> Tuple[float, float, float]:
    if len(values) != 3:
        raise EngineError(f"{what} needs 3 values (one per channel), got {list(values)}")
    return float(values[0]), float(values[1]), float(values[2])


def _labels_for(labels: Optional[Path], out_path: Path, num_classes: int) -> Optional[str]:
    if labels is None:
        return None
    try:
        lines = [ln.strip() for ln in Path(labels).read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError as exc:
        raise EngineError(f"{labels}: cannot read the labels file: {exc.strerror or exc}") from None
    if len(lines) != num_classes:
        raise EngineError(f"{labels}: {len(lines)} labels for a model with {num_classes} classes")
    return out_path.stem + ".labels.txt"


# -- the benchmark model ------------------------------------------------------------------------------------


def vit_tiny_config() -> Any:
    """timm `vit_tiny_patch16_224`: 224×224, patch 16, embed 192, depth 12, 3 heads, MLP ratio 4, 1000 classes
    (5,717,416 parameters, 1.3 GMACs per image as timm counts it)."""
    from jetvit_daemon.engine.vit_onnx import ViTConfig

    return ViTConfig(image_size=224, patch_size=16, in_chans=3, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
                     num_classes=1000)


def make_vit_tiny(out_path: Union[str, Path], seed: int = 0, fold: bool = False, precision: str = "fp32",
                  calib_images: Optional[Path] = None) -> Path:
    """ViT-Tiny/16 with `init_weights(cfg, seed)` weights (the compute of the real model, meaningless logits)
    and its manifest: ImageNet preprocessing, batch 1..32, no labels. Same seed, same bytes."""
    require_onnx()
    from jetvit_daemon.engine.vit_onnx import init_weights

    cfg = vit_tiny_config()
    return export_onnx(init_weights(cfg, seed), cfg, Path(out_path), model_name="vit-tiny16-224",
                       preprocess=IMAGENET, fold=fold, max_batch=32, precision=precision, calib_images=calib_images)
