"""``bravesteps lint`` and ``bravesteps test-flows``: the checks admins run on their edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.calendar import load_calendar
from flows.conversation import SYSTEM_KEYS
from flows.loader import FlowSet, FlowSetError, load_flow_dir
from flows.scripts import coverage, find_scripts, load_script, run_script
from flows.yamlload import SourceError
from messages.catalog import Catalogue, CatalogueError, load_catalogue
from messages.textcheck import check_catalogue
from service.wiring import SHELL_KEYS


def lint_content(flows_dir: Path, messages_dir: Path) -> tuple[list[str], list[str], str]:
    """(errors, warnings, summary line) for a folder of flows and one of catalogues."""
    errors: list[str] = []
    warnings: list[str] = []
    try:
        catalogue = load_catalogue(messages_dir)
    except CatalogueError as exc:
        return [str(e) for e in exc.errors], [], f"lint: {len(exc.errors)} error(s)"
    for key in (*SYSTEM_KEYS, *SHELL_KEYS):
        if key not in catalogue.keys:
            errors.append(
                f"{messages_dir / 'en.yaml'}:1: the service needs the message '{key}'; add it"
            )
    flow_count = 0
    try:
        flowset = load_flow_dir(flows_dir, catalogue.keys)
        flow_count = len(flowset.flows)
        load_calendar(flows_dir, set(flowset.flows))
    except FlowSetError as exc:
        errors.extend(str(e) for e in exc.errors)
    except SourceError as exc:
        errors.append(str(exc))
    for finding in check_catalogue(catalogue, messages_dir / "audio"):
        (errors if finding.level == "error" else warnings).append(str(finding))
    for lang, keys in catalogue.missing().items():
        if keys:
            warnings.append(
                f"{messages_dir / (lang + '.yaml')}:1: warning: {len(keys)} message(s) not "
                f"translated yet (English is used): {', '.join(keys)}"
            )
    summary = (
        f"lint: {flow_count} flow(s), {len(catalogue.keys)} message(s); "
        f"{len(errors)} error(s), {len(warnings)} warning(s)"
    )
    return errors, warnings, summary


def run_flow_scripts(
    flowset: FlowSet, catalogue: Catalogue, paths: list[Path]
) -> tuple[bool, list[str]]:
    """Run every script under ``paths``; (all passed, lines to print)."""
    lines: list[str] = []
    try:
        files = find_scripts(paths)
    except SourceError as exc:
        return False, [str(exc)]
    if not files:
        return False, [f"{', '.join(map(str, paths))}: no scripts (*.yaml) found"]

    def render(key: str, variables: dict[str, Any], language: str) -> str:
        return catalogue.render(key, variables, language)

    results = []
    for file in files:
        try:
            located = load_script(file)
        except SourceError as exc:
            lines.append(f"FAIL {file}")
            lines.append(f"  {exc}")
            continue
        result = run_script(flowset, render, located)
        results.append(result)
        lines.append(f"{'ok  ' if result.ok else 'FAIL'} {result.name}  ({file})")
        lines.extend(f"  {failure}" for failure in result.failures)
    reached, total, missing = coverage(flowset, results)
    failed = sum(1 for r in results if not r.ok) + (len(files) - len(results))
    percent = 100.0 * reached / total if total else 100.0
    lines.append(f"flow steps reached: {reached}/{total} ({percent:.0f} %)")
    if missing:
        lines.append("not reached: " + ", ".join(missing))
    lines.append(f"{len(files) - failed} passed, {failed} failed")
    return failed == 0, lines
