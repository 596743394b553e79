"""Bad input, one home: the files an operator's typo or an attacker could put where the daemon reads YAML.
Used by the loader tests, `policy check` tests and the fault matrix (which saves each over the live policy).

Each entry: name → (bytes of the file, a regex the error must match). Add one here and the matrix's
"bad policy edit" cases pick it up.
"""

from typing import Dict, Tuple

# 346 bytes that PyYAML expands to 9^9 references ("billion laughs"; issue 9: ~90 MB/s of memory growth).
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
) + "\n"

GOOD_POLICY = "version: 1\nladder:\n  - {name: low, mode: 15W}\n  - {name: top, mode: 25W}\n"

BAD_POLICIES: Dict[str, Tuple[bytes, str]] = {
    "alias_bomb": (ALIAS_BOMB.encode(), r":2: alias \*a refused"),
    "duplicate_key": (b"version: 1\nladder:\n  - {name: a, mode: 15W}\nversion: 1\n",
                      r":4: duplicate key 'version' \(first at line 1, again at line 4\)"),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, r"nested more than 32 levels deep"),
    "huge_file": (b"# " + b"x" * (2 * 1024 * 1024) + b"\n", r"larger than 256 KiB"),
    "not_utf8": (GOOD_POLICY.encode() + b"# caf\xe9\n", r":5: not UTF-8 text \(byte 0xe9"),
    "binary": (bytes(range(256)) * 16, r"not UTF-8 text"),
    "not_yaml": (b"version: 1\nladder: [\n", r"not valid YAML"),
    "not_a_mapping": (b"- just\n- a list\n", r"the file must be a mapping"),
    "schema": (b"version: 1\nladder:\n  - {name: a, mode: 15W, batch_size: 0}\n",
               r":3: ladder\.0\.batch_size: Input should be greater than or equal to 1"),
    "unknown_mode": (b"version: 1\nladder:\n  - {name: x, mode: TURBO}\n", r"ladder\.0\.mode: no power mode 'TURBO'"),
    "out_of_order": (b"version: 1\nladder:\n  - {name: top, mode: MAXN_SUPER}\n  - {name: low, mode: 15W}\n",
                     r"ladder\.1: 'low' .* is slower than ladder\.0 'top'"),
    "empty_ladder": (b"version: 1\nladder: []\n", r"ladder: List should have at least 1 item"),
    "ladder_too_long": (("version: 1\nladder:\n" + "".join(f"  - {{name: s{i}, mode: 15W}}\n" for i in range(65)))
                        .encode(), r"List should have at most 64 items"),
}
