"""A policy checked against a board: its modes exist, its GPU caps are in the frequency table (or what they
snap to), and no two states of the ladder need a reboot to switch between (the governor may jump from any state
to the lowest, and nvpmodel would stop at its reboot prompt)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import Policy, parse_policy
from jetvit_daemon.hardware.base import PowerMode
from jetvit_daemon.hardware.nvpmodel import reboot_reason
from jetvit_daemon.yamlfile import PathKey, line_map, where


@dataclass(frozen=True)
class BoardFacts:
    """What a policy is checked against: the board's nvpmodel modes and GPU frequency table."""

    name: str
    modes: Sequence[PowerMode]
    gpu_freqs_hz: Sequence[int]


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
        snapped = max((f for f in table if f <= cap_hz), default=table[0])
        if snapped != cap_hz:
            notes.append(f"{at}: ladder.{i}.gpu_cap_mhz: {state.gpu_cap_mhz} MHz is not in {facts.name}'s table "
                         f"({', '.join(str(f // 1_000_000) for f in table)} MHz): it snaps to "
                         f"{snapped // 1_000_000} MHz")
        if mode.gpu_max_freq_hz is not None and snapped > mode.gpu_max_freq_hz:
            notes.append(f"{at}: ladder.{i}.gpu_cap_mhz: above mode {mode.name}'s own maximum "
                         f"{mode.gpu_max_freq_hz // 1_000_000} MHz, which applies instead")
    seen = set()
    for i, a in enumerate(policy.ladder):
        for j, b in enumerate(policy.ladder):
            ma, mb = modes.get(a.mode), modes.get(b.mode)
            if j <= i or ma is None or mb is None or (ma.name, mb.name) in seen:
                continue
            reason = reboot_reason(ma, mb)
            if reason is not None:
                seen.add((ma.name, mb.name))
                problems.append(f"{where(source, lines, ('ladder', j, 'mode'))}: ladder.{i}.mode / ladder.{j}.mode: "
                                f"{reason}; every state must be reachable from every other without a reboot")
    return problems, notes


def load_checked(path: Path, facts: BoardFacts, data: Optional[bytes] = None) -> Tuple[Policy, List[str]]:
    """Parse and check a policy file (its content `data` when the caller read it already); PolicyError lists
    every problem (schema, then board). Returns the policy and the notes."""
    text = Path(path).read_text(encoding="utf-8") if data is None else data.decode("utf-8")
    policy = parse_policy(text, str(path))
    problems, notes = check_against_board(policy, facts, str(path), line_map(text))
    if problems:
        raise PolicyError("\n".join(problems))
    return policy, notes
