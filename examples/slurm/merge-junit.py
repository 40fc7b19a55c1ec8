#!/usr/bin/env python3
"""Merges JUnit XML reports (CTest's --output-junit, cargo-nextest's, go-junit-report's: a
<testsuite> or a <testsuites> of them) into one <testsuites> report: every shard's test
suites, their counts summed at the top. Fails on a test case that two shards both ran
(the shards were not disjoint).

usage: merge-junit.py OUT.xml SHARD.xml...
"""
import sys
import xml.etree.ElementTree as ET

COUNTS = ("tests", "failures", "errors", "disabled", "skipped")


def suites(path):
    root = ET.parse(path).getroot()
    if root.tag == "testsuite":
        return [root]
    if root.tag == "testsuites":
        return list(root.iter("testsuite"))
    sys.exit(f"merge-junit: {path}: not a JUnit report (root <{root.tag}>)")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__.strip())
    out, shards = argv[1], argv[2:]
    merged = ET.Element("testsuites")
    totals = {c: 0 for c in COUNTS}
    time = 0.0
    seen = {}
    for path in shards:
        for suite in suites(path):
            for case in suite.iter("testcase"):
                key = (case.get("classname", ""), case.get("name", ""))
                if key in seen:
                    sys.exit(f"merge-junit: test case {key[1]} is in {seen[key]} and in {path}")
                seen[key] = path
            for c in COUNTS:
                totals[c] += int(suite.get(c, "0") or 0)
            time += float(suite.get("time", "0") or 0)
            merged.append(suite)
    for c in COUNTS:
        merged.set(c, str(totals[c]))
    merged.set("time", f"{time:.3f}")
    ET.ElementTree(merged).write(out, encoding="UTF-8", xml_declaration=True)
    print(f"merge-junit: {len(seen)} test cases from {len(shards)} report(s) in {out}")


if __name__ == "__main__":
    main(sys.argv)
