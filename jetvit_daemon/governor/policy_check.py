"""A policy checked against a board: its modes exist, its GPU caps are in the frequency table (or what they
snap to), the ladder runs from the slowest state to the fastest, and no two states of the ladder need a reboot
to switch between (the governor may jump from any state to the lowest, and nvpmodel would stop at its reboot
prompt).

Every check is linear in the ladder's length (or in the board's few modes): a policy file is input, and a
long one must cost milliseconds, not minutes.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import LadderState, Policy, decode_policy, parse_policy_document, read_policy_text
from jetvit_daemon.hardware.base import PowerMode
from jetvit_daemon.hardware.nvpmodel import reboot_reason
from jetvit_daemon.yamlfile import PathKey, where


@dataclass(frozen=True)
class BoardFacts:
    """What a policy is checked against: the board's nvpmodel modes and GPU frequency table, and (when known)
    the mode it runs in: a ladder mode that needs a reboot from it can never be applied."""

    name: str
    modes: Sequence[PowerMode]
    gpu_freqs_hz: Sequence[int]
    current_mode: Optional[PowerMode] = None


def mhz(freq_hz: float) -> str:
    """A frequency in MHz exactly as the board has it (318.75, 1020, 76.8), not rounded to whole MHz."""
    return f"{freq_hz / 1e6:.6g}"


def check_against_board(policy: Policy, facts: BoardFacts, source: str,
                        lines: Dict[PathKey, int]) -> Tuple[List[str], List[str]]:
    """(problems, notes): problems make the policy unusable on this board; notes say what will happen."""
    problems: List[str] = []
    notes: List[str] = []
    modes = {m.name: m for m in facts.modes}
    table = sorted(facts.gpu_freqs_hz)
    have = ", ".join(m.name for m in facts.modes)
    for i, state in enumerate(policy.ladder):
        mode = modes.get(state.mode)
        loc = ("ladder", i, "mode")
        if mode is None:
            problems.append(f"{where(source, lines, loc)}: ladder.{i}.mode: no power mode {state.mode!r} on "
                            f"{facts.name} (have: {have})")
            continue
        cap_hz = state.gpu_cap_hz
        if cap_hz is None or not table:
            continue
        cap_loc = ("ladder", i, "gpu_cap_mhz")
        at = where(source, lines, cap_loc)
        snapped = _snap_down(table, cap_hz)
        if snapped != cap_hz:
            notes.append(f"{at}: ladder.{i}.gpu_cap_mhz: {state.gpu_cap_mhz} MHz is not in {facts.name}'s table "
                         f"({', '.join(mhz(f) for f in table)} MHz): it snaps to {mhz(snapped)} MHz")
        if mode.gpu_max_freq_hz is not None and snapped > mode.gpu_max_freq_hz:
            notes.append(f"{at}: ladder.{i}.gpu_cap_mhz: above mode {mode.name}'s own maximum "
                         f"{mhz(mode.gpu_max_freq_hz)} MHz, which applies instead")
    problems += _boot_group_problems(policy, modes, facts, source, lines)
    problems += _reboot_problems(policy, modes, source, lines)
    problems += _order_problems(policy, modes, table, source, lines)
    return problems, notes


def _snap_down(table: Sequence[int], cap_hz: int) -> int:
    """The board's devfreq snaps a cap down to its table (the lowest entry when below all)."""
    return max((f for f in table if f <= cap_hz), default=table[0])


def _boot_group_problems(policy: Policy, modes: Dict[str, PowerMode], facts: BoardFacts, source: str,
                         lines: Dict[PathKey, int]) -> List[str]:
    """A problem per distinct ladder mode that needs a reboot from the mode the board runs in: the governor
    would never reach it (nvpmodel stops at its reboot prompt; the daemon refuses the switch)."""
    current = facts.current_mode
    if current is None:
        return []
    group = [m.name for m in facts.modes if reboot_reason(current, m) is None]
    problems = []
    seen = set()
    for i, state in enumerate(policy.ladder):
        mode = modes.get(state.mode)
        if mode is None or state.mode in seen:
            continue
        seen.add(state.mode)
        reason = reboot_reason(current, mode)
        if reason is not None:
            problems.append(f"{where(source, lines, ('ladder', i, 'mode'))}: ladder.{i}.mode: {reason} from the "
                            f"mode {facts.name} runs in, so it can never be applied; without a reboot it can run "
                            f"{', '.join(group)}")
    return problems


def _reboot_problems(policy: Policy, modes: Dict[str, PowerMode], source: str,
                     lines: Dict[PathKey, int]) -> List[str]:
    """A problem per pair of the ladder's distinct modes that needs a reboot: pairs of modes (a board has a
    handful), not of states, so a long ladder costs no more than a short one."""
    first: Dict[str, int] = {}  # mode name → index of the first state using it, in ladder order
    for i, state in enumerate(policy.ladder):
        if state.mode in modes:
            first.setdefault(state.mode, i)
    used = list(first.items())
    problems = []
    for a, (name_a, i) in enumerate(used):
        for name_b, j in used[a + 1:]:
            reason = reboot_reason(modes[name_a], modes[name_b])
            if reason is not None:
                problems.append(f"{where(source, lines, ('ladder', j, 'mode'))}: ladder.{i}.mode / ladder.{j}.mode: "
                                f"{reason}; every state must be reachable from every other without a reboot")
    return problems


def _speed(state: LadderState, mode: PowerMode, table: Sequence[int]) -> Tuple[float, int]:
    """How fast a state lets the board run, for ordering: (the GPU clock it allows, the CPU cores its mode
    keeps online). The GPU clock is the state's cap snapped to the table, lowered to the mode's own GPU
    MAX_FREQ from the nvpmodel conf; `max` with neither a table nor a mode cap counts as unbounded."""
    caps: List[float] = []
    if state.gpu_cap_hz is not None:
        caps.append(_snap_down(table, state.gpu_cap_hz) if table else state.gpu_cap_hz)
    elif table:
        caps.append(table[-1])
    if mode.gpu_max_freq_hz is not None:
        caps.append(mode.gpu_max_freq_hz)
    return (min(caps) if caps else math.inf, mode.online_cores)


def _speed_text(state: LadderState, speed: Tuple[float, int]) -> str:
    gpu = "no GPU cap" if speed[0] == math.inf else f"GPU ≤ {mhz(speed[0])} MHz"
    return f"{state.name!r} (mode {state.mode}, {gpu}, {speed[1]} CPU cores)"


def _order_problems(policy: Policy, modes: Dict[str, PowerMode], table: Sequence[int], source: str,
                    lines: Dict[PathKey, int]) -> List[str]:
    """A problem for every state slower than a state before it: the governor steps "up" the ladder for more
    frames per second and "down" for fewer watts and degrees, so a reversed ladder does the opposite of what
    it decides (issue 9: +32% energy in `simulate`). One pass, keeping the fastest state so far."""
    speeds: List[Tuple[int, Tuple[float, int]]] = [
        (i, _speed(s, modes[s.mode], table)) for i, s in enumerate(policy.ladder) if s.mode in modes]
    problems: List[str] = []
    out_of_place: List[str] = []
    fastest: Optional[Tuple[int, Tuple[float, int]]] = None
    for i, speed in speeds:
        if fastest is not None and speed < fastest[1]:
            k, fast = fastest
            state = policy.ladder[i]
            out_of_place.append(state.name)
            problems.append(f"{where(source, lines, ('ladder', i))}: ladder.{i}: {_speed_text(state, speed)} is "
                            f"slower than ladder.{k} {_speed_text(policy.ladder[k], fast)} above it; the ladder "
                            "runs from the slowest state to the fastest")
        if fastest is None or speed > fastest[1]:
            fastest = (i, speed)
    if problems:
        ordered = sorted(speeds, key=lambda item: item[1])  # stable: equal speeds keep the file's order
        problems.append(f"{where(source, lines, ('ladder',))}: ladder: out of place: {', '.join(out_of_place)}; "
                        "ordered by GPU clock and online cores the ladder would read "
                        + " < ".join(policy.ladder[i].name for i, _ in ordered))
    return problems


def check_policy_text(text: str, source: str, facts: BoardFacts) -> Tuple[Policy, List[str], List[str]]:
    """Parse a policy and check it against the board: (policy, problems, notes). PolicyError when the text
    is not a valid policy at all."""
    policy, lines = parse_policy_document(text, source)
    problems, notes = check_against_board(policy, facts, source, lines)
    return policy, problems, notes


def load_checked(path: Path, facts: BoardFacts, data: Optional[bytes] = None) -> Tuple[Policy, List[str]]:
    """Read (or take the content `data` the caller read already and checked), parse and check a policy file;
    PolicyError (and only that) lists every problem (file, schema, then board). Returns the policy and the
    notes."""
    text = read_policy_text(path) if data is None else decode_policy(data, str(path))
    policy, problems, notes = check_policy_text(text, str(path), facts)
    if problems:
        raise PolicyError("\n".join(problems))
    return policy, notes
