#!/usr/bin/env python3
"""Compare the failures of the third-party SCIM conformance suites with the accepted deviations.

Used by ``.ci/conformance``; runs on the standard library only (python3.11+).

    triage.py DEVIATIONS.json --suite NAME LOG RC [--suite NAME LOG RC ...] [--ms-report REPORT.json]

NAME is ``okta-spec`` or ``ms-collection``; LOG is the suite runner's captured output (stdout+stderr) and
RC its exit status. ``--ms-report`` is the newman JSON report of the Microsoft run (optional): it is read only
to name test-script errors, which newman_summary.py counts but does not list.

A failure is identified by (suite, request/step name, assertion text); volatile details (ids, actual values)
are not part of it. It is *accepted* when an entry of DEVIATIONS.json matches it; in an entry, ``request`` and
``assertion`` may each be a string or a list of strings, and ``*`` in them matches any run of characters (no
other character is special). Every entry needs a non-empty ``reason``.

Prints the unaccepted failures, warnings for stale entries (accepted deviations that did not fail this time),
a score table, and the closing line ``N passed, M failed`` (M = unaccepted failures only).
Exit status: 0 = every failure accepted; 1 = some failure not accepted or a suite could not run;
2 = usage or deviations-file error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SUITES = ("okta-spec", "ms-collection")
FINAL_LINE = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$")
# runscope_run.mjs: "[FAIL] 10. Optional Test: Verify Groups endpoint  GET /Groups -> 404 (2/3)"
OKTA_STEP = re.compile(
    r"^\[(PASS|FAIL)\]\s*(\d+)\.\s(.*?)\s{2}(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s(.*)\s->\s(.*)\s\((\d+)/(\d+)\)\s*$"
)
# runscope_run.mjs: "       FAIL response_status equal_number 200 -- actual=404"
OKTA_CHECK = re.compile(r"^\s+FAIL\s(.*?)(?:\s--\s(.*))?$")
# newman_summary.py: "  - Group tests / Get Groups :: Status code is 200 -- expected ..."
MS_FAILURE = re.compile(r"^  - (.*?) :: (.*?)(?: -- (.*))?$")


def norm(s: str) -> str:
    return " ".join(str(s).split())


@dataclass
class Failure:
    suite: str
    request: str
    assertion: str
    detail: str = ""
    context: str = ""
    accepted_by: "Entry | None" = None


@dataclass
class Entry:
    index: int
    suite: str
    requests: list[str]
    assertions: list[str]
    reason: str
    hits: dict[tuple[str, str], int] = field(default_factory=dict)

    def match(self, f: Failure) -> tuple[str, str] | None:
        if f.suite != self.suite:
            return None
        for r in self.requests:
            if not _glob(r, f.request):
                continue
            for a in self.assertions:
                if _glob(a, f.assertion):
                    return (r, a)
        return None


def _glob(pattern: str, text: str) -> bool:
    rx = ".*".join(re.escape(part) for part in norm(pattern).split("*"))
    return re.fullmatch(rx, norm(text), flags=re.DOTALL) is not None


def _as_list(v: object, what: str, i: int) -> list[str]:
    if isinstance(v, str) and v.strip():
        return [v]
    if isinstance(v, list) and v and all(isinstance(x, str) and x.strip() for x in v):
        return list(v)
    raise ValueError(f"entry #{i}: '{what}' must be a non-empty string or list of strings")


def load_deviations(path: Path) -> list[Entry]:
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data.get("deviations") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("expected an object with a 'deviations' list")
    entries = []
    for i, e in enumerate(items, 1):
        if not isinstance(e, dict):
            raise ValueError(f"entry #{i} is not an object")
        suite = e.get("suite")
        if suite not in SUITES:
            raise ValueError(f"entry #{i}: suite must be one of {', '.join(SUITES)} (got {suite!r})")
        reason = e.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"entry #{i}: a non-empty 'reason' is required")
        if "request" in e and "requests" in e:
            raise ValueError(f"entry #{i}: give 'request' or 'requests', not both")
        reqs = _as_list(e.get("request", e.get("requests")), "request", i)
        asserts = _as_list(e.get("assertion", e.get("assertions")), "assertion", i)
        entries.append(Entry(i, suite, reqs, asserts, norm(reason)))
    return entries


@dataclass
class SuiteResult:
    name: str
    rc: int
    log: str
    passed: int = 0
    failed_total: int = 0
    ran: bool = False
    failures: list[Failure] = field(default_factory=list)
    problem: str = ""


def parse_okta(text: str, res: SuiteResult) -> None:
    step = None
    for line in text.splitlines():
        m = OKTA_STEP.match(line)
        if m:
            step = m if m.group(1) == "FAIL" else None
            continue
        if step is not None:
            c = OKTA_CHECK.match(line)
            if c:
                res.failures.append(
                    Failure(
                        res.name,
                        norm(step.group(3)),
                        norm(c.group(1)),
                        (c.group(2) or "").strip(),
                        f"step {step.group(2)}: {step.group(4)} {step.group(5)} -> {step.group(6)}",
                    )
                )
                continue
            if not line.startswith(" " * 7):
                step = None


def parse_ms(text: str, res: SuiteResult, report: Path | None) -> None:
    in_list = False
    for line in text.splitlines():
        if line.strip() == "Failed assertions:":
            in_list = True
            continue
        if in_list:
            m = MS_FAILURE.match(line)
            if not m:
                in_list = False
                continue
            res.failures.append(Failure(res.name, norm(m.group(1)), norm(m.group(2)), (m.group(3) or "").strip()))
    # Test/pre-request script errors are counted in the final line but not listed by newman_summary.py.
    if report and report.is_file():
        try:
            run = json.loads(report.read_text(encoding="utf-8")).get("run", {})
        except (OSError, ValueError):
            return
        for fl in run.get("failures", []) or []:
            at = str(fl.get("at", ""))
            if at.startswith("assertion") or at == "request":
                continue
            err = fl.get("error") or {}
            name = (fl.get("source") or {}).get("name", "?")
            kind = at.split(" in ")[-1] or "script"
            res.failures.append(
                Failure(res.name, norm(name), f"{kind}: {err.get('name', 'Error')}", str(err.get("message", "")))
            )


def analyse(name: str, log: Path, rc: int, ms_report: Path | None) -> SuiteResult:
    res = SuiteResult(name, rc, str(log))
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        res.problem = f"no log ({exc})"
        return res
    finals = [FINAL_LINE.match(ln) for ln in text.splitlines()]
    finals = [m for m in finals if m]
    if not finals:
        res.problem = f"no final 'N passed, M failed' line (exit status {rc})"
        return res
    last = finals[-1]
    res.passed, res.failed_total = int(last.group(1)), int(last.group(2))
    if rc == 2:
        res.problem = "the suite could not run (exit status 2)"
        return res
    if rc not in (0, 1):
        res.problem = f"unexpected exit status {rc}"
    if rc == 1 and res.failed_total == 0:
        res.problem = "exit status 1 although the final line reports no failure"
    res.ran = True
    if name == "okta-spec":
        parse_okta(text, res)
    else:
        parse_ms(text, res, ms_report)
    missing = res.failed_total - len(res.failures)
    if missing > 0:
        res.failures.append(
            Failure(name, "(unlisted)", f"{missing} failure(s) counted but not listed by the runner", "", "see the log")
        )
    return res


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("deviations", type=Path)
    ap.add_argument("--suite", nargs=3, action="append", metavar=("NAME", "LOG", "RC"), required=True)
    ap.add_argument("--ms-report", type=Path)
    args = ap.parse_args(argv)

    try:
        entries = load_deviations(args.deviations)
    except (OSError, ValueError) as exc:
        print(f"error: bad deviations file {args.deviations}: {exc}", file=sys.stderr)
        return 2

    results: list[SuiteResult] = []
    for name, log, rc in args.suite:
        if name not in SUITES:
            print(f"error: unknown suite {name!r}", file=sys.stderr)
            return 2
        results.append(analyse(name, Path(log), int(rc), args.ms_report if name == "ms-collection" else None))

    for r in results:
        for f in r.failures:
            for e in entries:
                key = e.match(f)
                if key:
                    f.accepted_by = e
                    e.hits[key] = e.hits.get(key, 0) + 1
                    break

    bad = 0
    print("\n==================== conformance triage ====================")
    print(f"accepted deviations: {args.deviations}")
    for r in results:
        if r.problem:
            print(f"\n[{r.name}] SUITE PROBLEM: {r.problem}   (log: {r.log})")
        unacc = [f for f in r.failures if f.accepted_by is None]
        acc = [f for f in r.failures if f.accepted_by is not None]
        if acc:
            print(f"\n[{r.name}] {len(acc)} accepted failure(s):")
            for f in acc:
                print(f"  accepted  {f.request} :: {f.assertion}   (entry #{f.accepted_by.index})")  # type: ignore[union-attr]
        if unacc:
            print(f"\n[{r.name}] {len(unacc)} failure(s) NOT in the accepted deviations:")
            for f in unacc:
                ctx = f"  [{f.context}]" if f.context else ""
                print(f"  FAIL  {f.request} :: {f.assertion}{ctx}")
                if f.detail:
                    print(f"          {f.detail[:300]}")
        bad += len(unacc)

    ran = {r.name for r in results if r.ran}
    stale = []
    for e in entries:
        if e.suite not in ran:
            continue
        for rq in e.requests:
            for a in e.assertions:
                if (rq, a) not in e.hits:
                    stale.append((e, rq, a))
    if stale:
        print("\nWARNING: accepted deviations that did not fail in this run (stale? remove them if fixed for good):")
        for e, rq, a in stale:
            print(f"  entry #{e.index} [{e.suite}] {rq} :: {a}")

    print(f"\n{'suite':<16}{'passed':>8}{'failed':>8}{'accepted':>10}  status")
    tot_p = tot_f = tot_a = 0
    any_problem = False
    for r in results:
        acc = sum(1 for f in r.failures if f.accepted_by is not None)
        unacc = sum(1 for f in r.failures if f.accepted_by is None)
        if r.problem:
            any_problem = True
            status = "ERROR: " + r.problem
            unacc = max(unacc, 1)
        else:
            status = "ok" if unacc == 0 else "FAILED"
        print(f"{r.name:<16}{r.passed:>8}{unacc:>8}{acc:>10}  {status}")
        tot_p, tot_f, tot_a = tot_p + r.passed, tot_f + unacc, tot_a + acc
    print(f"{'total':<16}{tot_p:>8}{tot_f:>8}{tot_a:>10}")
    print("(failed = failures not listed in the accepted deviations; accepted = listed ones)")
    print()
    print(f"{tot_p} passed, {tot_f} failed")
    return 1 if (tot_f or any_problem or bad) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
