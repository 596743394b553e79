"""Does this TensorRT engine belong on this system? Compared before the engine is deserialised.

A serialised TensorRT engine holds kernels chosen for one TensorRT release and one GPU: NVIDIA's developer guide
says engines are not portable across TensorRT versions or GPU models, and JetPack pins the TensorRT, CUDA and
cuDNN releases together (JetPack 4.6: TensorRT 8.2, 5.1: 8.5, 6.0: 8.6, 6.1 and 6.2: 10.3). So the manifest records
what the engine was built on and the runner refuses a mismatch with what differs and the command that rebuilds it.

    facts = SystemFacts(tensorrt_version="10.3.0", compute_capability=(8, 7), gpu_name="Orin", soc="t234",
                        l4t_release="36.4.3", jetpack="6.2", dla_cores=0)
    check_engine_manifest(Path("vit.engine"), manifest, facts)      # EngineError on a mismatch

Pure functions on values: thread-safe. Runs on Python 3.6 (the inference worker checks the engine where TensorRT
is), so the pydantic manifest is only imported for type checking and by `SystemFacts.build_info`.
"""

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple

from jetvit_daemon.errors import EngineError

if TYPE_CHECKING:
    from jetvit_daemon.runners.manifest import BuildInfo, Manifest

_SM_RE = re.compile(r"\bsm_(\d+)(\d)\b")


class SystemFacts(NamedTuple):
    """What an engine must match: TensorRT release, GPU, L4T/JetPack release and DLA cores (None: unknown).
    Immutable: thread-safe."""

    tensorrt_version: Optional[str]
    compute_capability: Optional[Tuple[int, int]]
    gpu_name: Optional[str] = None
    soc: Optional[str] = None  # "t234" from the device tree; None off a Jetson
    l4t_release: Optional[str] = None
    jetpack: Optional[str] = None
    dla_cores: Optional[int] = None

    def device_text(self) -> str:
        """The GPU in words, as BuildInfo.device records it: "t234 Orin sm_87"."""
        parts = [p for p in (self.soc, self.gpu_name) if p]
        if self.compute_capability is not None:
            parts.append("sm_{}{}".format(*self.compute_capability))
        return " ".join(parts) or "unknown GPU"

    def build_info(self, dla_core: Optional[int], source_model: Optional[str], command: Optional[str]) -> "BuildInfo":
        """The manifest's build section for an engine built here."""
        from jetvit_daemon.runners.manifest import BuildInfo

        return BuildInfo(
            tensorrt_version=self.tensorrt_version or "unknown",
            device=self.device_text(),
            compute_capability=None if self.compute_capability is None else "{}.{}".format(*self.compute_capability),
            jetpack=self.jetpack,
            l4t_release=self.l4t_release,
            dla_core=dla_core,
            source_model=source_model,
            command=command,
        )


def version_key(version: str) -> Tuple[int, ...]:
    """"8.5.2.2" → (8, 5, 2): major.minor.patch, the part that decides engine compatibility (the fourth number
    is a build of the same release)."""
    numbers = []
    for part in version.split(".")[:3]:
        m = re.match(r"\d+", part)
        if not m:
            break
        numbers.append(int(m.group(0)))
    return tuple(numbers)


def parse_compute_capability(build: "BuildInfo") -> Optional[Tuple[int, int]]:
    """(8, 7) from compute_capability "8.7", else from an "sm_87" in the device text; None if neither."""
    if build.compute_capability:
        m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", build.compute_capability)
        if m:
            return int(m.group(1)), int(m.group(2))
    m = _SM_RE.search(build.device)
    if m:
        return int(m.group(1)), int(m.group(2))
    return None


def engine_mismatches(build: "BuildInfo", facts: SystemFacts) -> List[str]:
    """One line per difference between where the engine was built and this system; empty when it fits.
    A fact unknown on either side is not a difference (it cannot be compared)."""
    problems: List[str] = []
    if facts.tensorrt_version and version_key(build.tensorrt_version) != version_key(facts.tensorrt_version):
        problems.append(f"TensorRT: the engine was built with {build.tensorrt_version}, this system has "
                        f"{facts.tensorrt_version}")
    built_cc = parse_compute_capability(build)
    if built_cc is not None and facts.compute_capability is not None and built_cc != facts.compute_capability:
        problems.append(f"GPU: the engine was built for {build.device} (compute capability "
                        f"{built_cc[0]}.{built_cc[1]}), this GPU is {facts.device_text()}")
    if build.jetpack and facts.jetpack:
        if build.jetpack != facts.jetpack:
            problems.append(f"JetPack: the engine was built on JetPack {build.jetpack}"
                            f"{_l4t(build.l4t_release)}, this board runs JetPack {facts.jetpack}"
                            f"{_l4t(facts.l4t_release)}")
    elif build.l4t_release and facts.l4t_release and build.l4t_release != facts.l4t_release:
        problems.append(f"L4T: the engine was built on L4T {build.l4t_release}, this board runs L4T "
                        f"{facts.l4t_release}")
    if build.dla_core is not None and facts.dla_cores is not None and build.dla_core >= facts.dla_cores:
        have = "no DLA" if facts.dla_cores == 0 else f"DLA cores 0..{facts.dla_cores - 1}"
        problems.append(f"DLA: the engine runs on DLA core {build.dla_core}, this system has {have}")
    return problems


def _l4t(release: Optional[str]) -> str:
    return f" (L4T {release})" if release else ""


def rebuild_command(engine_path: Path, manifest: "Manifest") -> str:
    """The command that rebuilds this engine: the one recorded at build time, else one made from the manifest
    (the ONNX model is looked for next to the engine under its recorded or the engine's own name)."""
    build = manifest.build
    if build is not None and build.command:
        return build.command
    source = build.source_model if build is not None and build.source_model else engine_path.stem + ".onnx"
    argv = ["jetvit-daemon", "engine", "build", str(engine_path.parent / source), "--out", str(engine_path),
            "--precision", manifest.precision, "--min-batch", str(manifest.batch.min),
            "--max-batch", str(manifest.batch.max)]
    if build is not None and build.dla_core is not None:
        argv += ["--dla-core", str(build.dla_core)]
    how = manifest.precision_source
    if manifest.precision == "int8" and (how is None or how.method == "implicit-calibration"):
        argv += ["--calib-images", "DIR"]  # TensorRT's calibrator needs the folder again; a Q/DQ model does not
    return " ".join(shlex.quote(a) for a in argv)


def check_engine_manifest(engine_path: Path, manifest: "Manifest", facts: SystemFacts) -> None:
    """Raise EngineError unless `manifest` describes a TensorRT engine built for this system."""
    if manifest.framework != "tensorrt":
        raise EngineError(
            f"{engine_path}: the manifest says framework {manifest.framework!r}; the TensorRT runner loads "
            "engines built by `jetvit-daemon engine build` (framework 'tensorrt'); run ONNX models with runner "
            "onnxruntime"
        )
    if manifest.build is None:
        raise EngineError(
            f"{engine_path}: the manifest has no `build` section (TensorRT version, GPU, JetPack), so whether the "
            f"engine fits this system cannot be checked; rebuild it here with:\n  "
            f"{rebuild_command(engine_path, manifest)}"
        )
    problems = engine_mismatches(manifest.build, facts)
    if problems:
        raise EngineError(
            "{}: this engine was built for another system, and TensorRT engines do not carry over:\n  {}\n"
            "Rebuild it on this board from its ONNX model:\n  {}".format(
                engine_path, "\n  ".join(problems), rebuild_command(engine_path, manifest))
        )
