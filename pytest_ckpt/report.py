"""The failure report: what went wrong, why, what to do, how to reproduce.

Written for a CI log: plain text, fixed-width table, nothing that needs a
terminal.
"""

from __future__ import annotations

from pytest_ckpt.comparison import CHANGED, NOT_LOADED, SWAPPED
from pytest_ckpt.formats import matching
from pytest_ckpt.result import RoundTripResult

MAX_ROWS = 40

_REMEDY_POSITIONAL = (
    "freeze the same layers before load_weights() as at save time, "
    "or build the model with the functional API (no nested model), "
    "or save to '.weights.h5' (format keras-weights), which keys variables by path"
)


def diagnose(result: RoundTripResult) -> tuple[str, str]:
    """(cause, remedy), one line each."""
    if result.ok:
        return "", ""
    counts = result.counts()
    if result.save_error:
        return (
            f"saving in format {result.format} failed ({result.save_error[0]}) with this freeze mask",
            "make the model savable in this format (custom layers need get_config) "
            "or drop the format with --ckpt-formats",
        )
    matches_by = matching(result.format)
    if matches_by == "name" and counts.get(NOT_LOADED):
        return (
            "load_weights(by_name=True) matches layers by name; the loading model's "
            "auto-generated names (dense_3 vs dense_7) differ from the saved ones, "
            "so those layers were skipped without an error",
            "give every layer an explicit name=..., or save to '.weights.h5' (format keras-weights)",
        )
    if matches_by in ("position", "name"):
        moved = result.containers_with_changed_freeze_state()
        where = f" of {', '.join(moved)}" if moved else ""
        return (
            "legacy HDF5 matches weights by position in trainable_weights + "
            f"non_trainable_weights; the freeze state{where} differs between save and load, "
            "so the positions moved",
            _REMEDY_POSITIONAL,
        )
    return (
        f"format {result.format} did not restore every variable under these freeze masks",
        "load with the same freeze state as at save time, or use format keras-weights; "
        "if this format should be order-independent, this is a bug worth reporting upstream",
    )


def _table(result: RoundTripResult) -> list[str]:
    rows = [("variable (saving model's name)", "key", "shape", "verdict", "holds the saved value of")]
    for o in result.outcomes[:MAX_ROWS]:
        if o.verdict == SWAPPED:
            got = f"{o.source_display} ({o.source_key})"
        elif o.verdict == NOT_LOADED:
            got = "- (kept its pre-load value)"
        elif o.verdict == CHANGED:
            got = "- (a value that was never saved)"
        else:
            got = ""
        rows.append((o.display, o.key, str(o.shape), o.verdict, got))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = []
    for r in rows:
        cells = [r[c].ljust(widths[c]) for c in range(4)] + [r[4]]
        lines.append("  " + "  ".join(cells).rstrip())
    if len(result.outcomes) > MAX_ROWS:
        lines.append(f"  ... and {len(result.outcomes) - MAX_ROWS} more")
    return lines


def render(result: RoundTripResult, *, seed=None, reproduce: str | None = None) -> str:
    if result.ok:
        return result.summary()
    total = result.variable_count
    counts = result.counts()
    lines = [
        f"checkpoint round trip failed: {result.factory}",
        f"  format:    {result.format} ({result.framework})",
        f"  save mask: {result.save_mask.describe()}",
        f"  load mask: {result.load_mask.describe()}",
    ]
    if result.save_error:
        lines.append(f"  save raised {result.save_error[0]}: {result.save_error[1]}")
    if result.load_error:
        lines.append(f"  load raised {result.load_error[0]}: {result.load_error[1]}")
    if result.outcomes:
        tally = ", ".join(f"{counts[v]} {v}" for v in (SWAPPED, NOT_LOADED, CHANGED) if counts.get(v))
        of = f" of {total}" if total is not None else ""
        lines.append(f"  {len(result.outcomes)}{of} variables did not survive ({tally}):")
        lines += _table(result)
    cause, remedy = diagnose(result)
    lines.append(f"  cause:  {cause}")
    lines.append(f"  remedy: {remedy}")
    if seed is not None:
        lines.append(f"  seed:   {seed}")
    if reproduce:
        lines.append(f"  reproduce: {reproduce}")
    return "\n".join(lines)
