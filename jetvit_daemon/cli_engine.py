"""Command-line commands for models and engines: `engine export`, `engine build`, `engine check`, `bench`.

Registered by `cli.build_parser`; errors are raised from the error tree (EngineError → exit 3, ConfigError →
exit 2) and mapped to exit codes there. Heavy imports (onnx, TensorRT, ONNX Runtime) happen inside the commands.
"""

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, List

from jetvit_daemon.errors import EngineError


def _floats(text: str) -> List[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected 3 values (one per channel), got {text!r}")
    return values


def _cmd_export(args: argparse.Namespace) -> int:
    from jetvit_daemon.engine import export as ex

    ex.require_onnx()
    if args.vit_tiny_random:
        from jetvit_daemon.engine.vit_onnx import init_weights

        cfg = ex.vit_tiny_config()
        weights, preprocess, name = init_weights(cfg, args.seed), ex.IMAGENET, "vit-tiny16-224"
    elif args.timm:
        weights, cfg, preprocess = ex.weights_from_timm(args.timm, pretrained=not args.random_init)
        name = args.timm
    else:
        weights = ex.load_checkpoint(args.checkpoint)
        cfg = ex.config_from_weights(weights, num_heads=args.num_heads)
        preprocess, name = ex.IMAGENET, args.checkpoint.stem
    if args.num_heads is not None and not args.checkpoint:
        import dataclasses

        cfg = dataclasses.replace(cfg, num_heads=args.num_heads)
    updates = {k: v for k, v in (("resize", args.resize), ("interpolation", args.interpolation),
                                 ("channel_order", args.channel_order), ("mean", args.mean), ("std", args.std))
               if v is not None}
    preprocess = preprocess.model_copy(update=updates)
    out = ex.export_onnx(weights, cfg, args.out, model_name=args.name or name, preprocess=preprocess,
                         fold=args.fold_preprocess, labels=args.labels, max_batch=args.max_batch,
                         decompose_layernorm=args.decompose_layernorm, precision=args.precision,
                         calib_images=args.calib_images, calib_method=args.calib_method,
                         calib_max_images=args.calib_max_images)
    from jetvit_daemon.runners.manifest import load_manifest, manifest_path_for

    manifest = load_manifest(out)
    spec = manifest.input
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {manifest_path_for(out).name}")
    print(f"  {cfg.depth} blocks, embed {cfg.embed_dim}, {cfg.num_heads} heads, patch {cfg.patch_size}, "
          f"{cfg.image_size}x{cfg.image_size}, {cfg.num_classes} classes")
    print(f"  input {spec.name} {spec.dtype} {spec.shape} {spec.layout}"
          + ("; preprocessing folded into the graph, the CPU only crops and resizes"
             if manifest.preprocess.normalize == "graph" else ""))
    print(f"  precision {manifest.precision}: "
          + (manifest.precision_source.describe() if manifest.precision_source else "as exported"))
    print(f"next, on the board: jetvit-daemon engine build {out}")
    return 0


def _build_options(args: argparse.Namespace) -> Any:
    from jetvit_daemon.engine.build import BuildOptions

    return BuildOptions(
        onnx_path=args.model, engine_path=args.out, precision=args.precision, min_batch=args.min_batch,
        opt_batch=args.opt_batch, max_batch=args.max_batch, dla_core=args.dla_core, calib_images=args.calib_images,
        calib_cache=args.calib_cache, calib_max_images=args.calib_max_images, calib_batch=args.calib_batch,
        workspace_mib=args.workspace_mib, tensorrt_version=args.tensorrt_version,
    )


def _cmd_build(args: argparse.Namespace) -> int:
    import shlex

    from jetvit_daemon.engine.build import (
        TensorRTUnavailable,
        build_engine,
        plan_build,
        trtexec_argv,
        trtexec_target,
    )
    from jetvit_daemon.hardware.sysfs import SysfsTree

    plan = plan_build(_build_options(args))
    if args.print_trtexec:
        try:
            trt = importlib.import_module("tensorrt")
        except ImportError:
            trt = None
        version, found = trtexec_target(plan.options, SysfsTree("/"), trt)
        print(f"# trtexec flags of TensorRT {version} ({found})", file=sys.stderr)
        print(" ".join(shlex.quote(a) for a in trtexec_argv(plan, args.trtexec or "trtexec", version)))
        return 0
    try:
        engine = build_engine(plan, method=args.method, trtexec=args.trtexec)
    except TensorRTUnavailable as exc:
        print(exc.command, flush=True)
        raise
    print(f"wrote {engine} ({engine.stat().st_size / 1e6:.1f} MB) and its manifest; run it with runner.model: "
          f"{engine}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from jetvit_daemon.engine.build import probe_facts
    from jetvit_daemon.hardware.sysfs import SysfsTree
    from jetvit_daemon.runners.engine_check import check_engine_manifest
    from jetvit_daemon.runners.manifest import load_manifest
    from jetvit_daemon.runners.trt_runner import PYCUDA_HINT, TENSORRT_HINT, trt_logger

    manifest = load_manifest(args.engine)
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        raise EngineError(f"TensorRT is not installed here, so there is nothing to check {args.engine} against: "
                          f"run `jetvit-daemon engine check` on the board that will run it ({TENSORRT_HINT})") from None
    runtime = trt.Runtime(trt_logger(trt))
    cuda: Any = None
    try:
        cuda = importlib.import_module("pycuda.driver")
    except ImportError:
        print(f"pycuda is not installed here, so the GPU is not compared: {PYCUDA_HINT}", file=sys.stderr)
    facts = probe_facts(trt, cuda, SysfsTree("/"), runtime)
    check_engine_manifest(args.engine, manifest, facts)
    build = manifest.build
    assert build is not None
    how = manifest.precision_source.describe() if manifest.precision_source else "how: not recorded"
    print(f"{args.engine}: fits this system (TensorRT {build.tensorrt_version}, {build.device}, "
          f"JetPack {build.jetpack or 'unknown'}; here {facts.tensorrt_version or '?'}, {facts.device_text()}, "
          f"JetPack {facts.jetpack or 'unknown'}); {manifest.precision}: {how}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from jetvit_daemon.config import DEFAULT_MODEL
    from jetvit_daemon.engine.bench import format_bench, run_bench
    from jetvit_daemon.runners.base import choose_runner_name, create_runner

    model: Path = args.model or DEFAULT_MODEL
    name = choose_runner_name(args.runner, model)
    options = {}
    if name == "onnxruntime":
        options = {"providers": args.providers or ["CPUExecutionProvider"], "intra_op_threads": args.threads}
    runner = create_runner(name, model, options)
    try:
        result = run_bench(runner, args.batch, args.seconds, warmup_s=args.warmup)
    finally:
        runner.close()
    if args.json:
        print(json.dumps(result.summary()))
    else:
        print(format_bench(result))
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(sub: Any) -> None:
    """Add `engine` (export, build, check) and `bench` to the main parser's subparsers."""
    engine = sub.add_parser("engine", help="export a ViT to ONNX; build and check TensorRT engines")
    actions = engine.add_subparsers(dest="engine_command", metavar="ACTION")
    actions.required = True

    export = actions.add_parser(
        "export", help="ViT checkpoint or timm model → ONNX (dynamic batch) + manifest",
        description="Write a ViT as ONNX with a dynamic batch axis and its manifest. Needs the onnx package "
                    "(pip install 'jetvit-daemon[export]').")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, metavar="FILE",
                        help="timm-named weights: .npz (numpy only), .safetensors, or a torch .pth/.pt state dict")
    source.add_argument("--timm", metavar="NAME", help="a timm model name, e.g. vit_small_patch16_224 (needs timm; "
                        "pretrained weights are downloaded on first use)")
    source.add_argument("--vit-tiny-random", action="store_true",
                        help="ViT-Tiny/16 with seeded random weights (the benchmark model)")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.onnx")
    export.add_argument("--name", default=None, help="model name for the manifest (default: from the source)")
    export.add_argument("--num-heads", type=_positive, metavar="N", default=None,
                        help="attention heads (not stored in the weights; default embed_dim / 64)")
    export.add_argument("--fold-preprocess", action="store_true",
                        help="fold scale/mean/std and the BGR→RGB flip into the graph: it takes uint8 BGR frames "
                             "[batch, H, W, 3], the CPU only crops and resizes (TensorRT 8.5+ for uint8 inputs)")
    export.add_argument("--resize", choices=["center_crop", "stretch"], default=None)
    export.add_argument("--interpolation", choices=["area", "linear", "nearest"], default=None)
    export.add_argument("--channel-order", choices=["RGB", "BGR"], default=None,
                        help="channel order the model was trained on (default RGB)")
    export.add_argument("--mean", type=_floats, default=None, metavar="R,G,B", help="default: ImageNet's")
    export.add_argument("--std", type=_floats, default=None, metavar="R,G,B", help="default: ImageNet's")
    export.add_argument("--labels", type=Path, default=None, metavar="FILE", help="one label per line")
    export.add_argument("--max-batch", type=_positive, metavar="N", default=32, help="largest batch in the manifest")
    export.add_argument("--decompose-layernorm", action="store_true",
                        help="spell LayerNorm with primitive ops (for TensorRT parsers older than 8.6)")
    export.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                        help="carried by the model, built alike on TensorRT 8.6, 10 and 11: fp16 converts weights "
                             "and compute to float16 (softmax, layer norm, logits stay float32); int8 inserts "
                             "Q/DQ pairs calibrated on --calib-images (needs onnxruntime)")
    export.add_argument("--calib-images", type=Path, default=None, metavar="DIR",
                        help="int8: a folder of representative frames (a few hundred), run through the model's "
                             "own preprocessing")
    export.add_argument("--calib-method", choices=["entropy", "percentile"], default="entropy",
                        help="int8: how activation ranges are chosen (default entropy, as TensorRT's calibrator)")
    export.add_argument("--calib-max-images", type=_positive, metavar="N", default=512)
    export.add_argument("--random-init", action="store_true", help="with --timm: random weights, no download")
    export.add_argument("--seed", type=int, default=0, help="with --vit-tiny-random: the weight seed")
    export.set_defaults(func=_cmd_export)

    build = actions.add_parser(
        "build", help="ONNX → TensorRT engine + manifest (on the board that will run it)",
        description="Build a TensorRT engine with TensorRT's Python API or trtexec. Without TensorRT, prints the "
                    "trtexec command line it would run and exits 3.")
    build.add_argument("model", type=Path, metavar="MODEL.onnx", help="exported model (its manifest next to it)")
    build.add_argument("--out", type=Path, default=None, metavar="FILE.engine",
                       help="default: <model>_<precision>[_dla<N>].engine next to the model")
    build.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                       help="default: the model's own (engine export --precision), which every TensorRT builds; "
                            "fp16/int8 of an fp32 model use TensorRT's FP16 flag / INT8 calibrator (8.x, 10.x only)")
    build.add_argument("--min-batch", type=_positive, metavar="N", default=None,
                       help="default: the manifest's batch.min")
    build.add_argument("--opt-batch", type=_positive, metavar="N", default=None,
                       help="the batch TensorRT tunes kernels for (default: 8 within min..max)")
    build.add_argument("--max-batch", type=_positive, metavar="N", default=None,
                       help="default: the manifest's batch.max")
    build.add_argument("--dla-core", type=int, default=None, metavar="N",
                       help="run on DLA core N, GPU fallback for the rest (AGX Orin, Orin NX; fp16/int8)")
    build.add_argument("--calib-images", type=Path, default=None, metavar="DIR",
                       help="int8: a folder of representative images (a few hundred)")
    build.add_argument("--calib-cache", type=Path, default=None, metavar="FILE",
                       help="int8: calibration cache to write, or to reuse without --calib-images "
                            "(default <engine>.calib)")
    build.add_argument("--calib-max-images", type=_positive, metavar="N", default=512)
    build.add_argument("--calib-batch", type=_positive, metavar="N", default=8)
    build.add_argument("--workspace-mib", type=_positive, metavar="MIB", default=1024, help="builder scratch memory")
    build.add_argument("--with", dest="method", choices=["auto", "api", "trtexec"], default="auto",
                       help="auto: TensorRT's Python API if importable, else trtexec")
    build.add_argument("--trtexec", default=None, metavar="PATH",
                       help="trtexec to run (default: on PATH, else /usr/src/tensorrt/bin/trtexec)")
    build.add_argument("--print-trtexec", action="store_true", help="only print the trtexec command line")
    build.add_argument("--tensorrt-version", default=None, metavar="X.Y.Z",
                       help="the TensorRT release trtexec's flags are for, where it cannot be found out here "
                            "(default: the installed one, else 10.3.0 as on JetPack 6.1/6.2)")
    build.set_defaults(func=_cmd_build)

    check = actions.add_parser("check", help="does an engine's manifest match this system? (exit 3 if not)")
    check.add_argument("engine", type=Path, metavar="ENGINE")
    check.set_defaults(func=_cmd_check)

    bench = sub.add_parser("bench", help="raw runner throughput and latency percentiles, like trtexec")
    bench.add_argument("--runner", choices=["auto", "onnxruntime", "tensorrt"], default="auto")
    bench.add_argument("--model", type=Path, default=None, help="model or engine (default: the bundled ViT)")
    bench.add_argument("--batch", type=_positive, metavar="N", default=1)
    bench.add_argument("--seconds", type=float, default=10.0, help="timed run after the warm-up")
    bench.add_argument("--warmup", type=float, default=1.0, metavar="S")
    bench.add_argument("--threads", type=int, default=1,
                       help="ONNX Runtime intra-op threads (default 1, as the daemon; 0: all cores)")
    bench.add_argument("--providers", type=lambda s: s.split(","), default=None, metavar="P1,P2",
                       help="ONNX Runtime execution providers, or auto (default: CPUExecutionProvider)")
    bench.add_argument("--json", action="store_true", help="one JSON object instead of the report")
    bench.set_defaults(func=_cmd_bench)

