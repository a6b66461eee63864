"""The failure report: what went wrong, why, what to do, how to reproduce.

Written for a CI log: plain text, fixed-width table, nothing that needs a
terminal.  The cause is decided from typed facts of the result (masks,
dtypes, verdicts, the format's matching rule), never from error strings.
"""

from __future__ import annotations

import re

from pytest_ckpt.comparison import CHANGED, NOT_LOADED, OUTPUTS_DIFFER, SWAPPED
from pytest_ckpt.formats import matching
from pytest_ckpt.result import RoundTripResult

MAX_ROWS = 40
# What h5py stores natively; anything else (bfloat16, float8, int4) cannot
# go through the legacy HDF5 path.
_HDF5_DTYPES = {"bool", "float16", "float32", "float64", "complex64", "complex128",
                "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}

_REMEDY_POSITIONAL = (
    "freeze the same layers before load_weights() as at save time, "
    "or build the model with the functional API (no nested model), "
    "or save to '.weights.h5' (format keras-weights), which keys variables by path")


def _is_model(tree, display: str) -> bool:
    node = next((n for n in tree.nodes if n.display == display), None) if tree is not None else None
    return node is not None and any(c.__name__ in ("Model", "Functional", "Sequential")
                                    for c in type(node.layer).__mro__)


def _unstorable_dtypes(result: RoundTripResult) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if result.tree is None:
        return found
    for e in result.tree.variables():
        if e.dtype not in _HDF5_DTYPES:
            found.setdefault(e.dtype, []).append(e.display)
    return found


def diagnose(result: RoundTripResult, *, not_reproducible: bool = False) -> tuple[str, str]:
    """(cause, remedy), one line each."""
    if result.ok:
        return "", ""
    counts = result.counts()
    matches_by = matching(result.format)
    if not_reproducible:
        return ("the same save and load, run again, passed: saving or loading is not deterministic "
                "(a custom save_own_variables/load_own_variables, a race, or state that changes "
                "between saves)",
                "make saving and loading deterministic; until then this checkpoint cannot be trusted")
    unstorable = _unstorable_dtypes(result) if matches_by in ("position", "name") else {}
    if unstorable and (result.save_error or result.load_error):
        kinds = ", ".join(f"{dtype} ({len(names)} variables, e.g. {names[0]})"
                          for dtype, names in unstorable.items())
        return (f"legacy HDF5 cannot store or restore variables of dtype {kinds}; this fails "
                "whatever is frozen",
                "save to '.weights.h5' or '.keras' (formats keras-weights, keras), which handle "
                "these dtypes, or cast those variables to float32 before saving")
    if result.save_error:
        return (f"saving in format {result.format} failed ({result.save_error[0]})",
                "make the model savable in this format (custom layers need get_config) "
                "or drop the format with --ckpt-formats")
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", (result.load_error or ("", ""))[1])
    if unknown and result.new_model:
        return (f"keras.saving.load_model could not rebuild the model from the file: {unknown.group(1)!r} "
                "is registered nowhere, so Keras cannot find the class the config names",
                f"decorate {unknown.group(1)} with @keras.saving.register_keras_serializable(), or pass "
                "custom_objects= to load_model; drop format keras-model with --ckpt-formats if the "
                "model is only ever loaded with load_weights")
    if set(counts) == {OUTPUTS_DIFFER} and result.new_model:
        return ("every variable survived, but the model keras.saving.load_model rebuilt from the "
                "file computes different outputs: its config does not rebuild the same model (a "
                "custom layer whose get_config() leaves out a constructor argument, or state set "
                "outside the constructor)",
                "make every custom layer's get_config() return all of its constructor arguments "
                "(and from_config() use them); compare model.get_config() with the loaded model's")
    if set(counts) == {OUTPUTS_DIFFER}:
        return ("every variable survived, but the loaded model computes different outputs: state "
                "outside the variables (statistics a preprocessing layer cached when adapted, a "
                "lookup vocabulary, a cache computed from variables) differs between two builds "
                f"of the factory and format {result.format} does not restore it",
                "restore that state after loading (adapt() or set_vocabulary() with the training "
                "data), or save the whole model and load it with keras.saving.load_model "
                "(format keras-model), which restores vocabularies and calls the layers' load hooks")
    same_freeze_state = result.save_mask.frozen == result.load_mask.frozen or result.new_model
    if optimizer_rows := [o for o in result.outcomes if o.kind == "optimizer"]:
        if not [o for o in result.outcomes if o.kind == "model"]:
            return _optimizer_cause(result, optimizer_rows, same_freeze_state)
    if matches_by == "name" and counts.get(NOT_LOADED):
        layers = sorted({o.display.rsplit("/", 1)[0] for o in result.outcomes
                         if o.verdict == NOT_LOADED})
        return ("load_weights(by_name=True) matches top-level layers by name, then their weights "
                f"by position; nothing was loaded into {', '.join(layers[:4])}"
                f"{' ...' if len(layers) > 4 else ''}: names that differ between the saved "
                "model and the loading one, or a nested model whose freeze state changed",
                "give every layer an explicit name=... and freeze the same layers as at save "
                "time, or save to '.weights.h5' (format keras-weights)")
    if same_freeze_state:
        state = "nothing frozen on either side" if not result.save_mask.frozen else \
            "the same freeze state at save and load"
        return (f"format {result.format} does not restore every variable even with {state}",
                "this is a bug in the model's saving code (custom save_own_variables/"
                "load_own_variables) or in the format; a format that fails here cannot be used")
    if matches_by in ("position", "name"):
        moved = result.containers_with_changed_freeze_state()
        where = f" of {', '.join(moved)}" if moved else ""
        remedy = _REMEDY_POSITIONAL
        if moved and not any(_is_model(result.tree, name) for name in moved):
            # A wrapper layer (Bidirectional, TimeDistributed) is in the functional API too.
            remedy = remedy.replace("or build the model with the functional API (no nested model), ", "")
        return ("legacy HDF5 matches weights by position in trainable_weights + "
                f"non_trainable_weights; the freeze state{where} differs between save and load, "
                "so the positions moved", remedy)
    return (f"format {result.format} did not restore every variable under these freeze masks",
            "load with the same freeze state as at save time, or use format keras-weights; "
            "if this format should be order-independent, this is a bug worth reporting upstream")


_REMEDY_OPTIMIZER = (
    "freeze the same layers before loading as at save time, or load with keras.saving.load_model "
    "(format keras-model), which restores the trainable flags first; after changing what is "
    "trainable on purpose, reset the optimizer deliberately (compile again) instead of loading "
    "its stale state")


def _optimizer_cause(result, rows, same_freeze_state) -> tuple[str, str]:
    return optimizer_cause(result.format, result.warnings, same_freeze_state,
                           all(o.verdict == NOT_LOADED for o in rows))


def optimizer_cause(format_name: str, warnings, same_freeze_state: bool,
                    nothing_loaded: bool) -> tuple[str, str]:
    """Why optimizer state did not come back: skipped, transplanted, or never stored."""
    if matching(format_name) in ("position", "name") and nothing_loaded:
        return ("load_weights() of a legacy HDF5 file restores the model's weights only, never the "
                "optimizer's state: training resumed from it starts the optimizer from scratch "
                "(iterations 0, empty slots)",
                "save to '.weights.h5' or '.keras' (formats keras-weights, keras) to keep the "
                "optimizer's state, or reset the optimizer deliberately (compile again) after loading")
    if any("Skipping variable loading for optimizer" in w for w in warnings) and same_freeze_state:
        return ("the optimizer's saved state was skipped although the same layers are frozen at "
                "save and load: the loading optimizer has a different number of variables. Either "
                "the saving optimizer was built for another set of variables (a factory that built "
                "or trained its optimizer before freezing layers; load_model builds one for what is "
                "trainable in the file), or it is another optimizer (class, options, or a "
                "mixed-precision LossScaleOptimizer the loading code does not create)",
                "build or train the optimizer only once the freeze state is final (compile again "
                "after freezing), and build the same optimizer on both sides: same class and "
                "options, the mixed-precision policy set before building or loading the model")
    if any("Skipping variable loading for optimizer" in w for w in warnings):
        return ("the optimizer's saved state was skipped: Keras restores optimizer variables by "
                "position and found a different number of them, because a different set of "
                "variables is trainable at load than at save", _REMEDY_OPTIMIZER)
    if same_freeze_state:
        return ("optimizer variables did not come back even with the same freeze state at save "
                "and load", "this is a bug in the format or in a custom optimizer's saving code")
    return ("Keras restores optimizer variables by position in the list of trainable variables; "
            "a different set of trainable variables at load moved each slot to another variable",
            _REMEDY_OPTIMIZER)


def _table(result: RoundTripResult) -> list[str]:
    rows = [("variable (saving model's name)", "key", "shape", "verdict", "holds the saved value of")]
    for o in result.outcomes[:MAX_ROWS]:
        if o.verdict == SWAPPED and o.source_key:
            got = f"{o.source_display} ({o.source_key})"
        elif o.verdict == SWAPPED:
            got = f"- (one of {o.candidates} variables with that value)"
        elif o.verdict == NOT_LOADED:
            got = "- (kept its pre-load value)"
        else:
            got = "- (a value that was never saved)" if not result.new_model else \
                "- (a value that was never saved: its initial value, never loaded?)"
        name = f"optimizer: {o.display}" if o.kind == "optimizer" else o.display
        rows.append((name, o.key, str(o.shape), o.verdict, got))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = []
    for r in rows:
        cells = [r[c].ljust(widths[c]) for c in range(4)] + [r[4]]
        lines.append("  " + "  ".join(cells).rstrip())
    if len(result.outcomes) > MAX_ROWS:
        lines.append(f"  ... and {len(result.outcomes) - MAX_ROWS} more")
    return lines


_NEW_MODEL = "none: load_model builds a new model, with the trainable flags saved in the file"


def _head(title: str, result, notes, save_note: str = "", load_note: str = "") -> list[str]:
    """Title, format, masks and notes: the first lines of every report."""
    load = _NEW_MODEL if result.new_model else result.load_mask.describe() + load_note
    return ([title, f"  format:    {result.format} ({result.framework})",
             f"  save mask: {result.save_mask.describe()}{save_note}", f"  load mask: {load}"]
            + [f"  note:      {n}" for n in notes])


def _raised(errors, warnings) -> list[str]:
    lines = [f"  {what} raised {error[0]}: {error[1]}" for what, error in errors if error]
    return lines + [f"  Keras warned: {w[:300]}" for w in warnings[:3]]


def tail(cause: str | None, remedy: str, seed=None, reproduce: str | None = None) -> list[str]:
    """Cause, remedy, seed and the reproduce line: the last lines of every report."""
    lines = [f"  cause:  {cause}"] if cause else []
    lines.append(f"  remedy: {remedy}")
    if seed is not None:
        lines.append(f"  seed:   {seed}")
    if reproduce:
        lines.append(f"  reproduce: {reproduce}")
    return lines


def render(result: RoundTripResult, *, seed=None, reproduce: str | None = None,
           not_reproducible: bool = False, notes: tuple[str, ...] = ()) -> str:
    if result.ok:
        return result.summary()
    counts = result.counts()
    lines = _head(f"checkpoint round trip failed: {result.factory}", result, notes)
    if not_reproducible:
        lines.append("  failed once, passed on replay: the save or load is not deterministic; "
                     "what the first run saw:")
    lines += _raised((("save", result.save_error), ("load", result.load_error)), result.warnings)
    if result.outcomes:
        model_rows = [o for o in result.outcomes if o.kind == "model"]
        optimizer_rows = [o for o in result.outcomes if o.kind == "optimizer"]
        tally = ", ".join(f"{counts[v]} {v}" for v in (SWAPPED, NOT_LOADED, CHANGED) if counts.get(v))
        parts = []
        if model_rows or not optimizer_rows:
            of = f" of {result.variable_count}" if result.variable_count is not None else ""
            parts.append(f"{len(model_rows)}{of} variables")
        if optimizer_rows:
            parts.append(f"{len(optimizer_rows)} optimizer variables")
        lines.append(f"  {' and '.join(parts)} did not survive ({tally}):")
        lines += _table(result)
    if result.output_differences:
        lines.append(f"  all {result.variable_count} variables survived, but the outputs on a probe "
                     "input differ (outputs_differ):")
        for d in result.output_differences[:10]:
            lines.append(f"    {d.name}: {d.detail}")
    return "\n".join(lines + tail(*diagnose(result, not_reproducible=not_reproducible), seed, reproduce))


def render_resume(result, *, seed=None, reproduce: str | None = None,
                  not_reproducible: bool = False, notes: tuple[str, ...] = ()) -> str:
    """The report of a resume check (see :mod:`pytest_ckpt.resume`)."""
    if result.ok:
        return result.summary()
    lines = _head(f"resumed training differs from training that never stopped: {result.factory}",
                  result, notes, save_note=f" (trained {result.steps} steps, then saved)",
                  load_note=f" (the uninterrupted run switched to it; the resumed run loaded under it; "
                            f"both trained {result.steps} more steps)")
    if not_reproducible:
        lines.append("  failed once, passed on replay: training or saving is not deterministic")
    lines += _raised((("save", result.save_error), ("load", result.load_error),
                      ("training after the load", result.train_error)), result.warnings)
    d = result.divergence
    if d:
        lines.append(f"  first difference: after resumed step {d.step} of {result.steps}, "
                     f"{d.display} ({d.key}): {d.detail}")
        lines.append(f"  {result.diverged} variables differ after that step")
        same = result.save_mask.frozen == result.load_mask.frozen or result.new_model
        if d.key.startswith("optimizer:") or any("optimizer" in w for w in result.warnings):
            cause, remedy = optimizer_cause(result.format, result.warnings, same, True)
        elif matching(result.format) in ("position", "name") and not same:
            cause, remedy = ("legacy HDF5 restored the weights by position and the freeze state "
                             "changed, so weights landed in the wrong places", _REMEDY_POSITIONAL)
        elif matching(result.format) in ("position", "name"):
            cause, remedy = optimizer_cause(result.format, result.warnings, same, True)
        elif not same:
            # The weights are keyed by path here; what a changed trainable set moves
            # is the optimizer's slots, which then steer the next steps' updates.
            cause, remedy = optimizer_cause(result.format, result.warnings, same, False)
        else:
            cause, remedy = ("the checkpoint does not carry all the state training depends on "
                             "(an optimizer variable, a weight, or state outside the variables)",
                             "load with the same freeze state as at save time, or use format "
                             "keras-model; if that fails too, report it upstream")
    elif result.blew_up:
        b = result.blew_up
        lines.append(f"  the run that never stopped reached NaN or inf at step {b.step} of {result.steps} "
                     f"after the save, in {b.display} ({b.key}): nothing after that can be compared")
        cause, remedy = ("these batches make this model's training blow up (learning rate, loss or data "
                         "scale), so resuming cannot be compared with not stopping",
                         "pass batches on the scale of your data (ckpt_resume.check(model, data=...)) "
                         "or lower the learning rate")
    else:
        cause, remedy = ("the round trip itself failed (see the error above)",
                         "run the round-trip check of this factory and format for details")
    return "\n".join(lines + tail(cause, remedy, seed, reproduce))
