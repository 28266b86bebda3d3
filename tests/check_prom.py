#!/usr/bin/env python3
"""Checks a node_exporter textfile-collector file as Prometheus would read
it: every sample line is `name{labels} value`, every metric has a # TYPE line
before its samples, names are trainer_retrain_*, and the outcome and exit
code are the expected ones.

usage: check_prom.py FILE OUTCOME EXIT_CODE"""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')
TYPE = re.compile(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$')


def main(path, outcome, code):
    typed, values, errors = {}, {}, []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text.endswith("\n"):
        errors.append("the file does not end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            continue
        m = TYPE.match(line)
        if m:
            typed[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append(f"line {n}: not a sample: {line!r}")
            continue
        name = m.group(1)
        if not name.startswith("trainer_retrain_"):
            errors.append(f"line {n}: {name} is not a trainer_retrain_ metric")
        if name not in typed:
            errors.append(f"line {n}: {name} has no # TYPE line before it")
        values[(name, m.group(2) or "")] = float(m.group(4))
    for name in ("trainer_retrain_last_run_timestamp_seconds", "trainer_retrain_exit_code",
                 "trainer_retrain_duration_seconds"):
        if (name, "") not in values:
            errors.append(f"{name} is missing")
    if values.get(("trainer_retrain_exit_code", "")) != float(code):
        errors.append(f"exit code {values.get(('trainer_retrain_exit_code', ''))}, want {code}")
    ones = [k[1] for k, v in values.items() if k[0] == "trainer_retrain_outcome" and v == 1]
    if ones != [f'{{outcome="{outcome}"}}']:
        errors.append(f"outcome {ones}, want {outcome}")
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
