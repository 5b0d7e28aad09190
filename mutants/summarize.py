#!/usr/bin/env python3
"""Summarise the shards of `scripts/mutants` (mutants.out/<shard>/mutants.out/).

    python3 mutants/summarize.py            # markdown table, then survivors

Score = caught / (caught + missed + timeout); unviable mutants (they do not
compile) are counted apart. A timeout counts against the score: a mutant
that makes a test hang was not caught by an assertion.
"""
import json
import pathlib
import sys

ORDER = ["gate", "semaphore", "pool", "waiters", "store-run1", "store", "flusher", "admission",
         "trace_writer", "oneshot", "notify", "mpsc", "rwlock", "timeout", "task_set"]


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent / "mutants.out"
    shards = sorted((p.name for p in root.iterdir() if (p / "mutants.out/outcomes.json").exists()),
                    key=lambda n: ORDER.index(n) if n in ORDER else 99)
    rows, survivors = [], []
    latest = {}  # mutant name -> (run start time, outcome): the last run decides
    tot = {"caught": 0, "missed": 0, "timeout": 0, "unviable": 0}
    for name in shards:
        d = json.loads((root / name / "mutants.out/outcomes.json").read_text())
        counts = {"caught": 0, "missed": 0, "timeout": 0, "unviable": 0}
        files = set()
        for o in d["outcomes"]:
            m = o["scenario"]
            if m == "Baseline" or "Mutant" not in m:
                continue
            files.add(m["Mutant"]["file"])
            s = o["summary"]
            key = {"CaughtMutant": "caught", "MissedMutant": "missed",
                   "Timeout": "timeout", "Unviable": "unviable"}.get(s)
            if key is None:
                continue
            counts[key] += 1
            mname = m["Mutant"]["name"]
            if key in ("missed", "timeout"):
                survivors.append(f"{key.upper()} {mname}  [{name}]")
            if mname not in latest or latest[mname][0] < d["start_time"]:
                latest[mname] = (d["start_time"], key)
        for k in tot:
            tot[k] += counts[k]
        viable = counts["caught"] + counts["missed"] + counts["timeout"]
        score = f"{100 * counts['caught'] / viable:.0f}%" if viable else "-"
        listed = len(json.loads((root / name / "mutants.out/mutants.json").read_text()))
        tested = sum(counts.values())
        done = "complete" if tested == listed else f"{tested} of {listed} (stopped)"
        rows.append(f"| {name} | {', '.join(sorted(files))} | {counts['caught']} | "
                    f"{counts['missed']} | {counts['timeout']} | {counts['unviable']} | "
                    f"{score} | {done} |")
    print("| shard | file | caught | missed | timeout | unviable | score | run |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    viable = tot["caught"] + tot["missed"] + tot["timeout"]
    if viable:
        print(f"| all runs | | {tot['caught']} | {tot['missed']} | {tot['timeout']} | "
              f"{tot['unviable']} | {100 * tot['caught'] / viable:.1f}% | |")
    last = {k: sum(1 for _, v in latest.values() if v == k) for k in tot}
    viable = last["caught"] + last["missed"] + last["timeout"]
    if viable:
        print(f"| **each mutant, its last run** | | {last['caught']} | {last['missed']} | "
              f"{last['timeout']} | {last['unviable']} | "
              f"**{100 * last['caught'] / viable:.1f}%** | |")
    print()
    print("\n".join(survivors) if survivors else "(no survivors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
