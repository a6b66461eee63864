"""The report of a killed-save check (see :mod:`pytest_ckpt.checks.crash`)."""

from __future__ import annotations

from pytest_ckpt.checks.crash import CrashOutcome, CrashState, KillPoint
from pytest_ckpt.report.diagnosis import tail

_REMEDY = ("write each checkpoint under a temporary name in the same folder and os.replace() it over "
           "the old one once it is complete (atomic on one filesystem), writing any metadata the "
           "same way, last; or save under a new, step-numbered name (ModelCheckpoint's "
           "filepath='ckpt-{epoch:02d}.weights.h5') and delete the oldest only after the newest is "
           "complete. Orbax checkpoints (format orbax) commit a step by renaming its folder")


def verdict(outcome: CrashOutcome) -> str:
    """"pass", or "FAIL: " and what the kills left, for the matrix."""
    states = sorted({p.state for p in outcome.failures})
    if outcome.in_place and not states:
        states = ["in place"]
    return "pass" if not states else "FAIL: " + ", ".join(states)


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def _point_line(point: KillPoint, total: int) -> str:
    files = ", ".join(f"{name} ({size} bytes)" for name, size in point.files.items()) or "nothing"
    where = f"killed {point.event}"
    if point.state == CrashState.LOST:
        found = f"the load raised {point.error}"
    else:
        found = (f"{len(point.neither)} variables hold neither the old value nor the new "
                 f"({_some(point.neither)})" if point.neither
                 else f"some variables hold the old values, others the new (the fewer: {_some(point.stale)})"
                 if point.stale else "some variables hold the old values, others the new")
    return f"    point {point.index + 1} of {total + 1}, {where}; the folder held {files}; {found}"


def _cause(outcome: CrashOutcome) -> str:
    last = outcome.points[-1]
    if last.index >= len(outcome.events) and not last.ok:
        return (f"even the save that was not killed does not load back whole in format {outcome.format}: "
                "the round trip itself fails, whatever the kills do; run --ckpt-roundtrip for this "
                "factory and format to see why")
    if outcome.in_place and not outcome.failures:
        return (f"format {outcome.format} rewrites the checkpoint's file in place, over the previous "
                "one: a save killed part-way leaves it part old, part new (no kill point here could "
                "land between its writes, but the file itself is the evidence)")
    lost = [p for p in outcome.failures if p.state == CrashState.LOST]
    if lost:
        return (f"format {outcome.format} writes the checkpoint in place, over the previous one: a "
                "save killed part-way leaves a file that no longer loads, so the last good "
                "checkpoint is gone")
    return (f"format {outcome.format} replaces the checkpoint's values or files one after the "
            "other with nothing that commits them together: a save killed part-way leaves a "
            "checkpoint that loads but mixes the old state with the new")


def render_crash(outcome: CrashOutcome, *, reproduce: str | None = None) -> str:
    total = len(outcome.events)
    failed = outcome.failures
    lines = [f"killed save left no whole checkpoint: {outcome.factory}",
             f"  format:    {outcome.format}",
             f"  checkpoint A saved, then B saved over it and killed (SIGKILL) at {len(outcome.points)} "
             f"points of its {total} file operations; a fresh process loaded each folder",
             f"  {len(failed)} of {len(outcome.points)} kill points left neither A nor B:"]
    lines += [_point_line(p, total) for p in failed]
    if outcome.in_place:
        lines.append(f"  the save rewrote {_some(outcome.in_place)} in place (the same file changed, not a "
                     "new one renamed over it): killed part-way, it holds part old, part new bytes, "
                     "also where no kill point could split the writes (a memory map, positioned "
                     "writes, C code)")
    kept = [s for s in (CrashState.OLD, CrashState.NEW) if any(p.state == s for p in outcome.points)]
    if kept:
        lines.append(f"  the other points left {' or '.join(kept)} (A = old, B = new), as they must")
    return "\n".join(lines + tail(_cause(outcome), _REMEDY, None, reproduce))
