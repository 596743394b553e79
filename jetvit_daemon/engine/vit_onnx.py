"""A Vision Transformer written straight into an ONNX graph, with numpy and `onnx` only.

    cfg = ViTConfig(image_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0,
                    num_classes=10)
    weights = init_weights(cfg, seed=0)          # or a converted timm / torch state_dict
    model = build_model(cfg, weights)            # onnx.ModelProto, input `pixel_values`, output `logits`
    onnx.save(model, "vit.onnx")
    logits = forward_numpy(cfg, weights, x)      # the same maths in numpy, for tests

    # Preprocessing folded in: the graph takes uint8 BGR frames [batch, H, W, 3] (input `frames`) and does
    # the scaling, mean/std and channel order itself; the CPU only crops and resizes.
    fold = FoldedPreprocess(scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    model = build_model(cfg, weights, fold=fold)

The architecture is timm's `VisionTransformer` (pre-norm blocks, class token, learned position embedding,
LayerNorm eps 1e-6, exact erf GELU, head on the class token), and the weight names and shapes are timm's
(`cls_token`, `pos_embed`, `patch_embed.proj.weight`, `blocks.0.attn.qkv.weight`, ...), so a timm or torch
state_dict converts with `{k: v.numpy() for k, v in state_dict.items()}`. Linear weights keep torch's
[out, in] layout in the dict; the graph stores them transposed ([in, out]) under `<name>_t` for MatMul.

Needs the `onnx` package (the `export` or `dev` extra). Everything here is pure and stateless: thread-safe.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Opset 17 is the first with a LayerNormalization op; the TensorRT 8.6 release notes recommend targeting it
# because the fused op is more accurate in fp16 than the same maths spelled with primitive ops.
OPSET = 17
# IR version 8 came with opset 17 (ONNX 1.12). Newer `onnx` packages stamp a newer IR by default, and ONNX
# Runtime / TensorRT parsers refuse IR versions newer than they know, though they read every op used here.
IR_VERSION = 8
# timm's VisionTransformer builds its norms with `partial(nn.LayerNorm, eps=1e-6)`.
LAYER_NORM_EPS = 1e-6
INPUT_NAME = "pixel_values"
# Input of a graph with the preprocessing folded in: uint8 frames, NHWC, as the camera delivers them.
FRAMES_NAME = "frames"
OUTPUT_NAME = "logits"
PRODUCER = "jetvit-daemon"


@dataclass(frozen=True)
class ViTConfig:
    """Shape of a ViT. ViT-Tiny/16: ViTConfig(224, 16, 3, 192, 12, 3, 4.0, 1000)."""

    image_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}"
            )

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


@dataclass(frozen=True)
class FoldedPreprocess:
    """The preprocessing a folded graph applies to its uint8 input: `(x * scale - mean) / std` per channel,
    mean and std given in the model's channel order (`model_channel_order`); the graph's input carries its
    channels in `input_channel_order` (BGR: camera frames as OpenCV delivers them, so the CPU does not flip).
    `build_model(cfg, weights, fold=FoldedPreprocess(mean=..., std=...))`. Immutable: thread-safe."""

    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    model_channel_order: str = "RGB"
    input_channel_order: str = "BGR"

    def __post_init__(self) -> None:
        for order in (self.model_channel_order, self.input_channel_order):
            if order not in ("RGB", "BGR"):
                raise ValueError(f"channel order must be RGB or BGR, got {order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise ValueError(f"need 3 means and 3 non-zero stds, got mean {self.mean} std {self.std}")

    @property
    def flips_channels(self) -> bool:
        return self.model_channel_order != self.input_channel_order

    def mul_add(self) -> Tuple[np.ndarray, np.ndarray]:
        """(a, b) with x_norm = x * a + b, per channel in the input's channel order."""
        a = np.float32(self.scale) / np.asarray(self.std, dtype=np.float32)
        b = -np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        if self.flips_channels:
            a, b = a[::-1], b[::-1]
        return a.astype(np.float32), b.astype(np.float32)


def weight_shapes(cfg: ViTConfig) -> Dict[str, Tuple[int, ...]]:
    """Every weight the model needs, timm name → shape (linear weights as [out, in])."""
    d, h = cfg.embed_dim, cfg.mlp_hidden
    shapes: Dict[str, Tuple[int, ...]] = {
        "cls_token": (1, 1, d),
        "pos_embed": (1, cfg.num_patches + 1, d),
        "patch_embed.proj.weight": (d, cfg.in_chans, cfg.patch_size, cfg.patch_size),
        "patch_embed.proj.bias": (d,),
    }
    for i in range(cfg.depth):
        p = f"blocks.{i}."
        shapes.update(
            {
                p + "norm1.weight": (d,),
                p + "norm1.bias": (d,),
                p + "attn.qkv.weight": (3 * d, d),
                p + "attn.qkv.bias": (3 * d,),
                p + "attn.proj.weight": (d, d),
                p + "attn.proj.bias": (d,),
                p + "norm2.weight": (d,),
                p + "norm2.bias": (d,),
                p + "mlp.fc1.weight": (h, d),
                p + "mlp.fc1.bias": (h,),
                p + "mlp.fc2.weight": (d, h),
                p + "mlp.fc2.bias": (d,),
            }
        )
    shapes.update(
        {
            "norm.weight": (d,),
            "norm.bias": (d,),
            "head.weight": (cfg.num_classes, d),
            "head.bias": (cfg.num_classes,),
        }
    )
    return shapes


def count_params(cfg: ViTConfig) -> int:
    return sum(int(np.prod(shape)) for shape in weight_shapes(cfg).values())


def _trunc_normal(rng: np.random.Generator, shape: Tuple[int, ...], std: float) -> np.ndarray:
    """Normal(0, std) truncated to ±2 std by redrawing, like timm's `trunc_normal_tf_`."""
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2.0 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2.0 * std
    return out.astype(np.float32)


def init_weights(cfg: ViTConfig, seed: int = 0) -> Dict[str, np.ndarray]:
    """Deterministic weights for `cfg`: the same seed gives bit-identical arrays on every machine.

    timm's scheme: truncated normal std 0.02 for every matrix, the class token and the position embedding;
    zero biases; LayerNorm gamma 1, beta 0.
    """
    rng = np.random.default_rng(seed)
    weights: Dict[str, np.ndarray] = {}
    for name, shape in weight_shapes(cfg).items():
        if name.endswith(".bias"):
            weights[name] = np.zeros(shape, dtype=np.float32)
        elif name.endswith(".weight") and name.split(".")[-2].startswith("norm"):
            weights[name] = np.ones(shape, dtype=np.float32)
        else:
            weights[name] = _trunc_normal(rng, shape, 0.02)
    return weights


def _check_weights(cfg: ViTConfig, weights: Dict[str, np.ndarray]) -> None:
    expected = weight_shapes(cfg)
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ValueError(f"weights missing for {missing[:3]} (and {max(0, len(missing) - 3)} more)")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise ValueError(
                f"weight {name} has shape {tuple(weights[name].shape)}, the config needs {shape}"
            )


class _Graph:
    """Accumulates nodes and initializers with unique tensor names."""

    def __init__(self) -> None:
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name=name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], name_hint: str, **attrs: Any) -> str:
        self._count += 1
        out = f"{name_hint}/{op_type}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _layer_norm(g: _Graph, x: str, prefix: str, decompose: bool) -> str:
    gamma, beta = prefix + ".weight", prefix + ".bias"
    if not decompose:
        return g.op("LayerNormalization", [x, gamma, beta], prefix, axis=-1, epsilon=LAYER_NORM_EPS)
    mean = g.op("ReduceMean", [x], prefix, axes=[-1], keepdims=1)
    centred = g.op("Sub", [x, mean], prefix)
    var = g.op("ReduceMean", [g.op("Mul", [centred, centred], prefix)], prefix, axes=[-1], keepdims=1)
    std = g.op("Sqrt", [g.op("Add", [var, "const.ln_eps"], prefix)], prefix)
    normed = g.op("Div", [centred, std], prefix)
    return g.op("Add", [g.op("Mul", [normed, gamma], prefix), beta], prefix)


def _linear(g: _Graph, x: str, prefix: str) -> str:
    return g.op("Add", [g.op("MatMul", [x, prefix + ".weight_t"], prefix), prefix + ".bias"], prefix)


def build_model(
    cfg: ViTConfig,
    weights: Dict[str, np.ndarray],
    model_name: str = "vit",
    decompose_layernorm: bool = False,
    fold: Optional[FoldedPreprocess] = None,
) -> onnx.ModelProto:
    """The ONNX graph of `cfg` with `weights` baked in: `pixel_values` [batch, C, H, W] float32 →
    `logits` [batch, num_classes], batch dynamic (dim_param "batch").

    fold: take `frames` [batch, H, W, 3] uint8 instead and apply `fold` inside the graph (Cast → Transpose →
    Mul/Add per channel; a channel flip is folded into the patch embedding's weights, exactly).
    decompose_layernorm spells LayerNorm with ReduceMean/Sub/Sqrt/Div for parsers without the opset-17 op.
    """
    if fold is not None and cfg.in_chans != 3:
        raise ValueError(f"folded preprocessing takes 3-channel frames, the model has {cfg.in_chans} channels")
    _check_weights(cfg, weights)
    g = _Graph()
    d, heads, hd = cfg.embed_dim, cfg.num_heads, cfg.head_dim

    for name in weight_shapes(cfg):  # extra entries of a converted state_dict are left out
        value = np.asarray(weights[name], dtype=np.float32)
        if name == "patch_embed.proj.weight" and fold is not None and fold.flips_channels:
            value = value[:, ::-1]  # the frames' channel order, so the graph needs no channel gather
        if value.ndim == 2:  # torch Linear [out, in] → MatMul's [in, out]
            g.const(name + "_t", value.T)
        else:
            g.const(name, value)
    g.const("const.half", np.array(0.5, dtype=np.float32))
    g.const("const.one", np.array(1.0, dtype=np.float32))
    g.const("const.sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    g.const("const.attn_scale", np.array(hd**-0.5, dtype=np.float32))
    if decompose_layernorm:
        g.const("const.ln_eps", np.array(LAYER_NORM_EPS, dtype=np.float32))
    g.const("const.idx0", np.array(0, dtype=np.int64))
    g.const("const.idx1", np.array(1, dtype=np.int64))
    g.const("const.idx2", np.array(2, dtype=np.int64))
    g.const("const.slice_start", np.array([0], dtype=np.int64))
    g.const("const.slice_end", np.array([1], dtype=np.int64))
    g.const("const.cls_tail", np.array([1, d], dtype=np.int64))
    g.const("const.tokens_shape", np.array([0, d, -1], dtype=np.int64))
    g.const("const.qkv_shape", np.array([0, 0, 3, heads, hd], dtype=np.int64))
    g.const("const.merge_shape", np.array([0, 0, d], dtype=np.int64))

    input_name = INPUT_NAME if fold is None else FRAMES_NAME
    pixels = input_name
    if fold is not None:
        mul, add = fold.mul_add()
        g.const("const.fold_mul", mul.reshape(1, 3, 1, 1))
        g.const("const.fold_add", add.reshape(1, 3, 1, 1))
        # TensorRT takes uint8 network inputs from 8.5 on only if a Cast comes first (TensorRT 8.5 release notes).
        pixels = g.op("Cast", [input_name], "preprocess", to=TensorProto.FLOAT)
        pixels = g.op("Transpose", [pixels], "preprocess", perm=[0, 3, 1, 2])  # NHWC → NCHW
        pixels = g.op("Mul", [pixels, "const.fold_mul"], "preprocess")
        pixels = g.op("Add", [pixels, "const.fold_add"], "preprocess")

    # Patch embedding: a conv with kernel = stride = patch, then [B, D, gh, gw] → [B, N, D].
    x = g.op(
        "Conv",
        [pixels, "patch_embed.proj.weight", "patch_embed.proj.bias"],
        "patch_embed",
        kernel_shape=[cfg.patch_size, cfg.patch_size],
        strides=[cfg.patch_size, cfg.patch_size],
    )
    x = g.op("Reshape", [x, "const.tokens_shape"], "patch_embed")
    x = g.op("Transpose", [x], "patch_embed", perm=[0, 2, 1])

    # Class token, broadcast to the runtime batch size, in front of the patches; then position embedding.
    batch = g.op("Slice", [g.op("Shape", [input_name], "cls"), "const.slice_start", "const.slice_end"], "cls")
    cls = g.op("Expand", ["cls_token", g.op("Concat", [batch, "const.cls_tail"], "cls", axis=0)], "cls")
    x = g.op("Concat", [cls, x], "cls", axis=1)
    x = g.op("Add", [x, "pos_embed"], "pos_embed")

    for i in range(cfg.depth):
        p = f"blocks.{i}"
        # Multi-head self-attention, pre-norm.
        h = _layer_norm(g, x, p + ".norm1", decompose_layernorm)
        qkv = _linear(g, h, p + ".attn.qkv")
        qkv = g.op("Reshape", [qkv, "const.qkv_shape"], p + ".attn")  # [B, T, 3, H, hd]
        qkv = g.op("Transpose", [qkv], p + ".attn", perm=[2, 0, 3, 1, 4])  # [3, B, H, T, hd]
        q = g.op("Gather", [qkv, "const.idx0"], p + ".attn.q", axis=0)
        k = g.op("Gather", [qkv, "const.idx1"], p + ".attn.k", axis=0)
        v = g.op("Gather", [qkv, "const.idx2"], p + ".attn.v", axis=0)
        q = g.op("Mul", [q, "const.attn_scale"], p + ".attn.q")
        kt = g.op("Transpose", [k], p + ".attn.k", perm=[0, 1, 3, 2])
        attn = g.op("Softmax", [g.op("MatMul", [q, kt], p + ".attn")], p + ".attn", axis=-1)
        out = g.op("MatMul", [attn, v], p + ".attn")  # [B, H, T, hd]
        out = g.op("Transpose", [out], p + ".attn", perm=[0, 2, 1, 3])
        out = g.op("Reshape", [out, "const.merge_shape"], p + ".attn")
        x = g.op("Add", [x, _linear(g, out, p + ".attn.proj")], p)
        # MLP with exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))).
        h = _layer_norm(g, x, p + ".norm2", decompose_layernorm)
        h = _linear(g, h, p + ".mlp.fc1")
        erf = g.op("Erf", [g.op("Div", [h, "const.sqrt2"], p + ".mlp.gelu")], p + ".mlp.gelu")
        gate = g.op("Mul", [h, g.op("Add", [erf, "const.one"], p + ".mlp.gelu")], p + ".mlp.gelu")
        h = g.op("Mul", [gate, "const.half"], p + ".mlp.gelu")
        x = g.op("Add", [x, _linear(g, h, p + ".mlp.fc2")], p)

    x = _layer_norm(g, x, "norm", decompose_layernorm)
    x = g.op("Gather", [x, "const.idx0"], "head.cls", axis=1)  # [B, D]
    logits = _linear(g, x, "head")
    g.nodes.append(helper.make_node("Identity", [logits], [OUTPUT_NAME], name="logits"))

    if fold is None:
        graph_input = helper.make_tensor_value_info(
            INPUT_NAME, TensorProto.FLOAT, ["batch", cfg.in_chans, cfg.image_size, cfg.image_size]
        )
    else:
        graph_input = helper.make_tensor_value_info(
            FRAMES_NAME, TensorProto.UINT8, ["batch", cfg.image_size, cfg.image_size, 3]
        )
    graph = helper.make_graph(
        g.nodes,
        model_name,
        [graph_input],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", cfg.num_classes])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------------------
# numpy reference (float64 inside, for tests)


def _np_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * gamma + beta


def _np_erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def forward_numpy(cfg: ViTConfig, weights: Dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits for `x` ([B, C, H, W]) computed in float64 numpy, independently of the ONNX graph."""
    _check_weights(cfg, weights)
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    x = np.asarray(x, dtype=np.float64)
    b, ps, d = x.shape[0], cfg.patch_size, cfg.embed_dim
    grid = cfg.image_size // ps
    # Patchify in the conv's (C, kh, kw) order so the conv weight flattens to a [D, C*P*P] matrix.
    patches = x.reshape(b, cfg.in_chans, grid, ps, grid, ps).transpose(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(b, grid * grid, cfg.in_chans * ps * ps)
    t = patches @ w["patch_embed.proj.weight"].reshape(d, -1).T + w["patch_embed.proj.bias"]
    t = np.concatenate([np.broadcast_to(w["cls_token"], (b, 1, d)), t], axis=1) + w["pos_embed"]
    n = t.shape[1]
    for i in range(cfg.depth):
        p = f"blocks.{i}."
        h = _np_layer_norm(t, w[p + "norm1.weight"], w[p + "norm1.bias"])
        qkv = h @ w[p + "attn.qkv.weight"].T + w[p + "attn.qkv.bias"]
        qkv = qkv.reshape(b, n, 3, cfg.num_heads, cfg.head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * cfg.head_dim**-0.5, qkv[1], qkv[2]
        s = q @ k.transpose(0, 1, 3, 2)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        a = (s @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
        t = t + a @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"]
        h = _np_layer_norm(t, w[p + "norm2.weight"], w[p + "norm2.bias"])
        h = h @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"]
        h = 0.5 * h * (1.0 + _np_erf(h / math.sqrt(2.0)))
        t = t + h @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]
    t = _np_layer_norm(t, w["norm.weight"], w["norm.bias"])
    return t[:, 0] @ w["head.weight"].T + w["head.bias"]
