#!/usr/bin/env python3
"""Regenerates docs/config.md from `jslds config defaults` (the field lists in core/config.cpp
are the single source of every key, default, meaning and range).

    build/cli/jslds config defaults | python3 scripts/gen_config_doc.py > docs/config.md
"""
import re
import sys

lines = sys.stdin.read().splitlines()
order, rows = [], {}
sec = doc = secdoc = None
for i, line in enumerate(lines):
    m = re.match(r"^\[(\w+)\]$", line)
    if m:
        sec = m.group(1)
        order.append((sec, secdoc))
        rows[sec] = []
        continue
    if line.startswith("# ") and i + 1 < len(lines) and lines[i + 1].startswith("["):
        secdoc = line[2:]
        continue
    if line.startswith("# "):
        doc = line[2:]
        continue
    m = re.match(r"^(\w+) = (.*)$", line)
    if m and sec:
        meaning, allowed = doc, ""
        mm = re.match(r"^(.*) \[(.*)\]$", doc)
        if mm:
            meaning, allowed = mm.group(1), mm.group(2)
        rows[sec].append((m.group(1), m.group(2), meaning, allowed))

print("""# Run configuration reference

<!-- generated: build/cli/jslds config defaults | python3 scripts/gen_config_doc.py -->

A run configuration is a TOML file with the sections below (DESIGN §4). Every key is optional;
omitted keys take the default shown. Unknown sections or keys, wrong types and out-of-range
values are errors that name the file, line and column (`jslds config check FILE.toml`, exit 2).
`jslds config defaults` prints this whole configuration as commented TOML. Any key can be
overridden on the command line with `--set section.key=value` (value in TOML syntax; a bare
word such as `gru` is taken as a string). `data.path` and `data.simulate` exclude each
other: a `--set` of one clears the other, so `--set data.path=F` points a simulated
configuration at the recording F.

A relative `data.path` in a run configuration file is taken from that file's directory, so a
configuration and its recording can move together and `jslds train` finds it from any current
directory; a relative path given with `--set data.path=…` is taken from the current directory.
The run directory's `config.toml` stores the absolute path, so `jslds train RUN_DIR/config.toml`
reproduces the run from anywhere. Sweep specs follow the same rule: a relative path is taken
from the directory of the file holding it (the spec, or its `base = "…"` file), one given with
`--set base.data.path=…` from the current directory (docs/sweeps.md).

A configuration written straight into its run directory (`jslds train ring1/config.toml
--run-dir ring1`) is replaced there by the canonical form below; its own text, with its
comments, is kept as `ring1/config.toml~`.

The canonical form (`jslds config check` output, and `config.toml` in every run directory)
writes every key in this order; its sha256 identifies a run configuration in the database, so
key order and explicitly written defaults do not change it.
""")
for sec, sd in order:
    print(f"## [{sec}]\n\n{sd[0].upper() + sd[1:]}.\n")
    print("| key | default | meaning (units) | allowed |\n|---|---|---|---|")
    for key, value, meaning, allowed in rows[sec]:
        esc = lambda s: s.replace("|", "\\|")
        print(f"| `{key}` | `{value}` | {esc(meaning)} | {esc(allowed)} |")
    print()
