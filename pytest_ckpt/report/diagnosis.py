"""The failure report: what went wrong, why, what to do, how to reproduce.

Written for a CI log: plain text, fixed-width table, nothing that needs a
terminal.  The cause is decided from typed facts of the result (masks,
dtypes, verdicts, the format's matching rule, what the loading side found),
never from error strings: what Keras says only in words is turned into
facts in :mod:`pytest_ckpt.framework.messages`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pytest_ckpt.checks.comparison import VariableKind, VariableOutcome, Verdict
from pytest_ckpt.checks.outcomes import AdapterLoss, RoundTripResult
from pytest_ckpt.framework.formats import MatchesBy, adapters_only, matching, restores_on_creation, ships_model
from pytest_ckpt.framework.messages import duplicate_path, optimizer_skipped, unknown_class
from pytest_ckpt.search.masks import frozen_by

MAX_ROWS = 40
Diagnosis = tuple[str, str]
# What h5py stores natively; anything else (bfloat16, float8, int4) cannot
# go through the legacy HDF5 path.
_HDF5_DTYPES = {"bool", "float16", "float32", "float64", "complex64", "complex128",
                "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_POSITIONAL = (MatchesBy.POSITION, MatchesBy.NAME)

_REMEDY_POSITIONAL = (
    "freeze the same layers before load_weights() as at save time, "
    "or build the model with the functional API (no nested model), "
    "or save to '.weights.h5' (format keras-weights), which keys variables by path")
_REMEDY_OPTIMIZER = (
    "freeze the same layers before loading as at save time, or load with keras.saving.load_model "
    "(format keras-model), which restores the trainable flags first; after changing what is "
    "trainable on purpose, reset the optimizer deliberately (compile again) instead of loading "
    "its stale state")
_UNBUILT = ("the loading model's optimizer was not built when the checkpoint was loaded (compile() "
            "builds it only at the first training step), so Keras skipped the optimizer's saved "
            "state: iterations restart at 0 and every slot starts empty")
_REMEDY_UNBUILT = ("build the optimizer before load_weights(): "
                   "model.optimizer.build(model.trainable_variables) after compile(), with the same "
                   "layers frozen as at save time; or load with keras.saving.load_model (format "
                   "keras-model); have the factory do the same, since it stands for your loading code")


def _is_model(tree: Any, display: str) -> bool:
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


def _same_freeze_state(result: RoundTripResult) -> bool:
    return result.save_mask.frozen == result.load_mask.frozen or result.new_model


def _rows(result: RoundTripResult, kind: VariableKind) -> list[VariableOutcome]:
    return [o for o in result.outcomes if o.kind is kind]


def _unstorable(result: RoundTripResult) -> Diagnosis | None:
    unstorable = _unstorable_dtypes(result) if matching(result.format) in _POSITIONAL else {}
    if not (unstorable and (result.save_error or result.load_error)):
        return None
    kinds = ", ".join(f"{dtype} ({len(names)} variables, e.g. {names[0]})" for dtype, names in unstorable.items())
    return (f"legacy HDF5 cannot store or restore variables of dtype {kinds}; this fails whatever is frozen",
            "save to '.weights.h5' or '.keras' (formats keras-weights, keras), which handle "
            "these dtypes, or cast those variables to float32 before saving")


def _save_failed(result: RoundTripResult) -> Diagnosis | None:
    if not result.save_error:
        return None
    twice = duplicate_path(result.save_error[1])
    if twice is not None:
        return (f"saving in format {result.format} failed: two variables of the model have the same "
                f"path ({twice}), and this format keys variables by path",
                "give the layers unique names (name=...), above all layers created in a subclassed "
                "model or layer, which are named by their class alone")
    return (f"saving in format {result.format} failed ({result.save_error[0]})",
            "make the model savable in this format (custom layers need get_config) "
            "or drop the format with --ckpt-formats")


def _unregistered(result: RoundTripResult) -> Diagnosis | None:
    name = unknown_class(result.load_error[1]) if result.load_error and result.new_model else None
    if name is None:
        return None
    return (f"keras.saving.load_model could not rebuild the model from the file: {name!r} "
            "is registered nowhere, so Keras cannot find the class the config names",
            f"decorate {name} with @keras.saving.register_keras_serializable(), or pass "
            f"custom_objects= to load_model; drop format {result.format} with --ckpt-formats if the "
            "model is only ever loaded with load_weights")


def _process_dependent(result: RoundTripResult) -> Diagnosis | None:
    if not result.facts.layout_moved or result.save_error or result.load_error:
        return None
    return (f"the process that loads builds the model differently from the one that saved "
            f"({result.facts.layout_difference}): the build depends on the process (iterating a "
            "set, whose order follows the hash seed; random draws; module state), so format "
            f"{result.format} restores the weights into other layers than they were trained in",
            "build the layers in a fixed order (sorted(set(...)), a list), and give every layer an "
            "explicit name; keras.saving.load_model (format keras-model) rebuilds the saved "
            "architecture instead of the factory's")


def _outputs_only(result: RoundTripResult) -> Diagnosis | None:
    if set(result.counts()) != {Verdict.OUTPUTS_DIFFER}:
        return None
    if result.new_model:
        return ("every variable survived, but the model keras.saving.load_model rebuilt from the "
                "file computes different outputs: its config does not rebuild the same model (a "
                "custom layer whose get_config() leaves out a constructor argument, or state set "
                "outside the constructor)",
                "make every custom layer's get_config() return all of its constructor arguments "
                "(and from_config() use them); compare model.get_config() with the loaded model's")
    config = (f" (the loading process built it with another config: {result.facts.layout_difference})"
              if result.facts.layout_difference else "")
    return ("every variable survived, but the loaded model computes different outputs: state "
            "outside the variables (statistics a preprocessing layer cached when adapted, a "
            "lookup vocabulary, a constant computed from data) differs between two builds "
            f"of the factory{config}, or format {result.format} does not bring it up to date on load",
            "restore that state after loading (adapt() or set_vocabulary() with the training "
            "data, or finalize_state() after a tf.train.Checkpoint restore), or save the whole "
            "model and load it with keras.saving.load_model (format keras-model), which restores "
            "vocabularies and calls the layers' load hooks")


def diagnose(result: RoundTripResult, *, not_reproducible: bool = False) -> Diagnosis:
    """(cause, remedy), one line each."""
    if result.ok:
        return "", ""
    if not_reproducible:
        return ("the same save and load, run again, passed: saving or loading is not deterministic "
                "(a custom save_own_variables/load_own_variables, a race, or state that changes "
                "between saves)",
                "make saving and loading deterministic; until then this checkpoint cannot be trusted")
    steps: list[Callable[[RoundTripResult], Diagnosis | None]] = [
        _adapters_only, _unstorable, _save_failed, _unregistered, _process_dependent, _outputs_only,
        _lora_merged,
        _state_tree, _optimizer_only, _by_name, _same_state, _positional]
    for step in steps:
        found = step(result)
        if found is not None:
            return found
    return (f"format {result.format} did not restore every variable under these freeze masks",
            "load with the same freeze state as at save time, or use format keras-weights; "
            "if this format should be order-independent, this is a bug worth reporting upstream")


# Why a variable an adapter file did not bring back was its to hold, and what to do about it.
_ADAPTER_LOSSES: dict[AdapterLoss, tuple[str, str]] = {
    AdapterLoss.BIAS: ("the adapted layers' biases ({}): keras-hub's enable_lora leaves them "
                       "trainable, so fine-tuning changes them",
                       "after enable_lora, set layer.bias.trainable = False for each adapted layer"),
    AdapterLoss.ADAPTER: ("adapters of layers backbone.enable_lora did not adapt ({}): "
                          "save_lora_weights saves only the layers it lists",
                          "adapt layers through backbone.enable_lora(rank, target_layer_names=[...]), "
                          "not on the layer itself"),
    AdapterLoss.STATE: ("state a training step updates although it is not trainable ({}), such as "
                        "batch statistics, a cache or a step count",
                        "freeze the layers that hold it (layer.trainable = False), so training "
                        "leaves it as the base has it"),
    AdapterLoss.TRAINED: ("other trainable variables of the backbone ({})",
                          "freeze them before fine-tuning"),
    AdapterLoss.OUTSIDE_BASE: ("variables outside the backbone ({}; a task's head): neither the "
                               "backbone's preset nor the adapter file holds them, and fine-tuning "
                               "changes them or a fresh process's build draws them anew",
                               "save them too (task.save_to_preset, or save_weights)"),
}


def _adapters_only(result: RoundTripResult) -> Diagnosis | None:
    """An adapter file (keras-hub's .lora.h5): adapters it cannot save, adapters in other
    layers, or trained state it does not hold."""
    if not adapters_only(result.format):
        return None
    if result.save_error and result.facts.unsavable_adapters:
        names = ", ".join(result.facts.unsavable_adapters[:3])
        return (f"save_lora_weights cannot save the adapters of {names}: it reads lora_kernel_a and "
                "lora_kernel_b, which only Dense and EinsumDense adapters have (an Embedding's are "
                "lora_embeddings_a and lora_embeddings_b)",
                "adapt only Dense and EinsumDense layers (enable_lora's target_layer_names), or save "
                "the whole model (save_weights) to keep an Embedding's adapter")
    if result.save_error or result.load_error or result.facts.layout_moved:
        return None  # a build that depends on the process has its own cause
    if any(o.verdict is Verdict.SWAPPED for o in _rows(result, VariableKind.MODEL)):
        return (f"adapters restored into other layers: format {result.format} keys each adapter by "
                "its layer's index among the layers that hold weights, and the loading model numbers "
                "its layers otherwise (a layer that gets its weights later, another architecture, or "
                "other enable_lora target layers)",
                "build the loading model exactly as the saving one and call it once before "
                "load_lora_weights, with the same enable_lora(rank, target_layer_names); or keep the "
                "adapters with the model's weights (save_weights, keyed by path)")
    losses = result.facts.adapter_losses
    if not losses:
        return None
    count = sum(len(names) for names in losses.values())
    parts = [(_ADAPTER_LOSSES[why][0].format(", ".join(names[:3]) + (" ..." if len(names) > 3 else "")),
              _ADAPTER_LOSSES[why][1]) for why, names in losses.items()]
    return (f"{count} variable{'s' if count > 1 else ''} of the fine-tuned model {'are' if count > 1 else 'is'} "
            f"not in the adapter file, and a model built from the base keeps other values there: "
            f"format {result.format} holds the adapters of the layers backbone.enable_lora adapted "
            f"(lora_kernel_a, lora_kernel_b) and nothing else. Lost: " + "; ".join(p[0] for p in parts),
            "; ".join(p[1] for p in parts) + "; or save the whole model (save_weights, format "
            "keras-weights) beside the adapters")


def _lora_merged(result: RoundTripResult) -> Diagnosis | None:
    lora = result.facts.lora
    changed = {o.verdict for o in _rows(result, VariableKind.MODEL)}
    if not lora or Verdict.SWAPPED in changed:
        return None  # an adapter in another layer's place is the positional cause's
    hub = callable(getattr(getattr(result.tree, "model", None), "save_lora_weights", None))
    remedy_hub = ("; a keras-hub model keeps them with backbone.save_lora_weights('x.lora.h5') and "
                  "load_lora_weights after building the model (keyed by layer index: build the same "
                  "architecture)") if hub else ""
    if result.load_error:
        if not result.new_model:
            return None
        return (f"layer{'s' if len(lora) > 1 else ''} {', '.join(lora[:3])} carr{'ies' if len(lora) == 1 else 'y'} "
                "a LoRA adapter, which the saved config does not record: the load rebuilt the model "
                "without adapters (Keras merged each adapter into its kernel when it saved), so the "
                "adapter's training state is gone",
                "save and restore the adapters apart from the model's config" + remedy_hub)
    return (f"layer{'s' if len(lora) > 1 else ''} {', '.join(lora[:3])} carr{'ies' if len(lora) == 1 else 'y'} "
            "a LoRA adapter, and Keras merges "
            "the adapter into the kernel when it saves (kernel + A·B·scale is written, the adapter "
            "is not) and zeroes the adapter on load: the loaded model computes the same outputs, but "
            "the adapter's training state is gone, so fine-tuning resumed from this checkpoint "
            "trains a new adapter on a changed kernel",
            "to resume LoRA fine-tuning, save the base kernel and the adapter yourself (the layer's "
            "kernel, lora_kernel_a and lora_kernel_b, e.g. with np.save) and assign them after "
            "loading; to ship a merged model, call enable_lora() only in the training code, not in "
            "the factory this check builds" + remedy_hub)


_STATE_TREE = ("the state tree (Model.set_state_tree, which Orbax checkpoints load through) matches "
               "variables by path inside the group they were saved in (trainable, non-trainable, "
               "optimizer) and silently ignores every value it cannot match")


def _regrouped(result: RoundTripResult) -> list[str]:
    """Layers whose variables were not loaded and whose trainable flag differs between save and load."""
    if result.tree is None:
        return []
    nodes = {n.key: n for n in result.tree.nodes}
    names: list[str] = []
    for o in _rows(result, VariableKind.MODEL):
        node = nodes.get(o.key.rsplit("/", 1)[0] if "/" in o.key else "")
        if (o.verdict is Verdict.NOT_LOADED and node is not None and node.display not in names
                and frozen_by(result.save_mask, node.index_path) != frozen_by(result.load_mask, node.index_path)):
            names.append(node.display)
    return names


def _state_tree(result: RoundTripResult) -> Diagnosis | None:
    if matching(result.format) is not MatchesBy.GROUP or result.load_error:
        return None
    unmatched = result.facts.unmatched_paths
    if result.new_model and unmatched:
        return (f"keras.saving.load_model rebuilt the model from the config in the directory, and "
                f"{len(unmatched)} of the saved variable paths do not exist in it (e.g. "
                f"{', '.join(unmatched[:3])}: a Sequential rebuilt from its config loses its name "
                f"prefix); {_STATE_TREE}, so those variables keep the values they were built with",
                "load with model.load_weights(directory) into the model your code builds (format "
                "orbax), or build it with the functional API, whose paths survive the rebuild")
    moved = _regrouped(result)
    if not moved:
        return None
    return (f"the trainable flag of {', '.join(moved[:3])}{' ...' if len(moved) > 3 else ''} differs "
            "between save and load, so its variables changed group; " + _STATE_TREE +
            ": they keep their pre-load values, without a warning",
            "freeze the same layers before loading as at save time (change the flags after "
            "loading), or save with model.save_weights to '.weights.h5' (format keras-weights), "
            "which matches by path whatever is trainable")


def _by_name(result: RoundTripResult) -> Diagnosis | None:
    if matching(result.format) is not MatchesBy.NAME or not result.counts().get(Verdict.NOT_LOADED):
        return None
    layers = sorted({o.display.rsplit("/", 1)[0] for o in result.outcomes if o.verdict is Verdict.NOT_LOADED})
    return ("load_weights(by_name=True) matches top-level layers by name, then their weights "
            f"by position; nothing was loaded into {', '.join(layers[:4])}"
            f"{' ...' if len(layers) > 4 else ''}: names that differ between the saved "
            "model and the loading one, or a nested model whose freeze state changed",
            "give every layer an explicit name=... and freeze the same layers as at save "
            "time, or save to '.weights.h5' (format keras-weights)")


def _same_state(result: RoundTripResult) -> Diagnosis | None:
    if not _same_freeze_state(result):
        return None
    state = "nothing frozen on either side" if not result.save_mask.frozen else \
        "the same freeze state at save and load"
    facts = result.facts
    if any("self._layers" in held for held in facts.untracked):
        return (f"format {result.format} did not restore the variables of {', '.join(facts.untracked[:3])} "
                "even with the same freeze state: self._layers is the list Keras keeps a layer's tracked "
                "sublayers in, and a list assigned there by the layer's own code hides its sublayers "
                "from the saving that walks layers by attribute (.keras, .weights.h5, the state tree; "
                "Keras issue #20260)",
                "keep the sublayers under an attribute of your own (self.blocks = [...] or "
                "self.block_0 = ...), which Keras tracks and saves; never assign self._layers")
    if facts.untracked:
        return (f"format {result.format} did not restore the variables of {', '.join(facts.untracked[:3])} "
                "even with the same freeze state: a format saves what its object graph reaches, and "
                "a layer kept only in a list or dict attribute, or under an attribute Keras uses "
                "itself (self._layers), is not reached by every graph (tf.train.Checkpoint does not "
                "see a Keras 3 model's lists)",
                "assign each sublayer to an attribute of its own (self.block_0 = ...), never reuse "
                "self._layers; or save with a Keras format (keras-weights, keras), which walks lists")
    if facts.custom_saving:
        return (f"format {result.format} does not restore every variable even with {state}, and "
                f"{', '.join(facts.custom_saving[:3])} save or load their variables with their own "
                "save_own_variables/load_own_variables",
                "make load_own_variables read back every variable save_own_variables writes")
    return (f"format {result.format} does not restore every variable even with {state}",
            "this is a bug in the format (or in Keras); a format that fails here cannot be used")


def _positional(result: RoundTripResult) -> Diagnosis | None:
    if matching(result.format) not in _POSITIONAL:
        return None
    moved = result.containers_with_changed_freeze_state()
    where = f" of {', '.join(moved)}" if moved else ""
    remedy = _REMEDY_POSITIONAL
    if moved and not any(_is_model(result.tree, name) for name in moved):
        # A wrapper layer (Bidirectional, TimeDistributed) is in the functional API too.
        remedy = remedy.replace("or build the model with the functional API (no nested model), ", "")
    return ("legacy HDF5 matches weights by position in trainable_weights + "
            f"non_trainable_weights; the freeze state{where} differs between save and load, "
            f"so the positions moved{_quantized_note(result)}", remedy)


def _quantized_note(result: RoundTripResult) -> str:
    """Quantized layers keep their integer kernels and scales as non-trainable variables, so
    a freeze moves only their float ones: worth saying, since the layer looks intact."""
    layers = result.facts.quantized
    if not layers:
        return ""
    return (f". Among them quantized layers ({', '.join(layers[:3])}): model.quantize() makes their "
            "kernels and scales non-trainable variables, so a freeze moves the float variables "
            "(biases) among positions their integer kernels do not share, and outputs are computed "
            "from a kernel and a bias that were never saved together")


def _optimizer_only(result: RoundTripResult) -> Diagnosis | None:
    rows = _rows(result, VariableKind.OPTIMIZER)
    if not rows or _rows(result, VariableKind.MODEL):
        return None
    if result.facts.unrecorded_flags:
        flags = ", ".join(result.facts.unrecorded_flags[:3])
        return (f"the file does not record the trainable flag of {flags}: keras.saving.load_model "
                "rebuilt it from its parent's config with another flag, so the optimizer it builds "
                "serves another set of variables than the one saved, and Keras restores optimizer "
                "variables by position",
                "freeze the parent layer instead of its sublayer (an RNN and its cell, a wrapper and "
                "the layer it wraps), or load with load_weights() after freezing as at save time")
    return optimizer_cause(result.format, result.warnings, _same_freeze_state(result),
                           all(o.verdict is Verdict.NOT_LOADED for o in rows),
                           unbuilt=result.facts.optimizer_unbuilt_at_load,
                           moved=any(o.verdict is Verdict.SWAPPED for o in rows))


def optimizer_cause(format_name: str, warnings: Sequence[str], same_freeze_state: bool,
                    nothing_loaded: bool, *, unbuilt: bool = False, moved: bool = True) -> Diagnosis:
    """Why optimizer state did not come back: never stored, skipped, or transplanted."""
    if matching(format_name) in _POSITIONAL and nothing_loaded:
        return ("load_weights() of a legacy HDF5 file restores the model's weights only, never the "
                "optimizer's state: training resumed from it starts the optimizer from scratch "
                "(iterations 0, empty slots)",
                "save to '.weights.h5' or '.keras' (formats keras-weights, keras) to keep the "
                "optimizer's state, or reset the optimizer deliberately (compile again) after loading")
    skipped = optimizer_skipped(list(warnings))
    if ships_model(format_name):
        return (f"format {format_name} ships a model, it does not resume training: its loader builds a "
                "new model and compiles it afresh without building the optimizer, so Keras skips the "
                "optimizer state the file holds (iterations, the learning rate and every slot start "
                "from scratch)",
                "resume training from a checkpoint that restores the optimizer (formats keras, "
                "keras-weights, orbax); to resume from a preset, build the optimizer "
                "(model.optimizer.build(model.trainable_variables)) and load the preset's weights "
                "with load_weights; to test what a preset ships, have the factory build the model "
                "uncompiled (a Backbone, or a Task made with compile=False)")
    if unbuilt and nothing_loaded and not restores_on_creation(format_name):
        if matching(format_name) is MatchesBy.GROUP:
            return ("the loading model's optimizer was not built when the checkpoint was loaded "
                    "(compile() builds it only at the first training step), so it had no slots yet, "
                    "and the state tree restores only variables that exist, silently: every slot's "
                    "saved value was dropped (iterations and the learning rate, which compile() "
                    "creates, came back)",
                    "build the optimizer before loading: model.optimizer.build(model.trainable_variables) "
                    "after compile(), with the same layers frozen as at save time; have the factory do "
                    "the same, since it stands for your loading code")
        return _UNBUILT, _REMEDY_UNBUILT
    if skipped is not None and same_freeze_state:
        return ("the optimizer's saved state was skipped although the same layers are frozen at "
                f"save and load: the loading optimizer has {skipped.loading} variables, the file "
                f"{skipped.saved}. Either the saving optimizer was built for another set of variables "
                "(a factory that built or trained its optimizer before freezing layers; load_model "
                "builds one for what is trainable in the file), or it is another optimizer (class, "
                "options, or a mixed-precision LossScaleOptimizer the loading code does not create)",
                "build or train the optimizer only once the freeze state is final (compile again "
                "after freezing), and build the same optimizer on both sides: same class and "
                "options, the mixed-precision policy set before building or loading the model")
    if skipped is not None:
        return ("the optimizer's saved state was skipped: Keras restores optimizer variables by "
                f"position and found {skipped.loading} where the file has {skipped.saved}, because a "
                "different set of variables is trainable at load than at save", _REMEDY_OPTIMIZER)
    if same_freeze_state:
        return ("optimizer variables did not come back even with the same freeze state at save "
                "and load", "this is a bug in the format or in a custom optimizer's saving code")
    if not moved:
        return ("optimizer variables did not come back after a different set of variables was "
                "trainable at load than at save (the optimizer the loading side builds is not "
                "the one saved: other variables, or an optimizer that wraps others)", _REMEDY_OPTIMIZER)
    return ("Keras restores optimizer variables by position in the list of trainable variables; "
            "a different set of trainable variables at load moved each slot to another variable",
            _REMEDY_OPTIMIZER)


def _table(result: RoundTripResult) -> list[str]:
    rows = [("variable (saving model's name)", "key", "shape", "verdict", "holds the saved value of")]
    for o in result.outcomes[:MAX_ROWS]:
        if o.verdict is Verdict.SWAPPED and o.source_key:
            got = f"{o.source_display} ({o.source_key})"
        elif o.verdict is Verdict.SWAPPED:
            got = f"- (one of {o.candidates} variables with that value)"
        elif o.verdict is Verdict.NOT_LOADED:
            got = "- (kept its pre-load value)"
        else:
            got = "- (a value that was never saved)" if not result.new_model else \
                "- (a value that was never saved: its initial value, never loaded?)"
        name = f"optimizer: {o.display}" if o.kind is VariableKind.OPTIMIZER else o.display
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
_FACTORY_FLAGS = ("none drawn: the flags the factory set (enable_lora), which decide what trains "
                  "and so what the adapter file must hold")


def _head(title: str, result: Any, notes: Sequence[str], save_note: str = "", load_note: str = "") -> list[str]:
    """Title, format, masks and notes: the first lines of every report."""
    load = _NEW_MODEL if result.new_model else result.load_mask.describe() + load_note
    save = result.save_mask.describe() + save_note
    if getattr(result, "factory_flags", False):
        save = load = _FACTORY_FLAGS
    return ([title, f"  format:    {result.format} ({result.framework})",
             f"  save mask: {save}", f"  load mask: {load}"]
            + [f"  note:      {n}" for n in notes])


def _raised(errors: Sequence[tuple[str, tuple[str, str] | None]], warnings: Sequence[str]) -> list[str]:
    lines = [f"  {what} raised {error[0]}: {error[1]}" for what, error in errors if error]
    return lines + [f"  Keras warned: {w[:300]}" for w in warnings[:3]]


def tail(cause: str | None, remedy: str, seed: object = None, reproduce: str | None = None) -> list[str]:
    """Cause, remedy, seed and the reproduce line: the last lines of every report."""
    lines = [f"  cause:  {cause}"] if cause else []
    lines.append(f"  remedy: {remedy}")
    if seed is not None:
        lines.append(f"  seed:   {seed}")
    if reproduce:
        lines.append(f"  reproduce: {reproduce}")
    return lines


def others_line(shown: Any, others: Sequence[Any]) -> list[str]:
    """How many other mask pairs failed, and how: the report shows one of them."""
    if not others:
        return []
    kinds = Counter(f"raised {(o.save_error or o.load_error)[0]}" if (o.save_error or o.load_error)
                    else "failed silently" for o in others)
    detail = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    which = "it failed silently, the most dangerous way" if shown.silent else "none failed silently"
    return [f"  also:      {len(others)} other mask pair(s) failed ({detail}); this one is shown: {which}"]


def _variables_lines(result: RoundTripResult) -> list[str]:
    counts = result.counts()
    model_rows = _rows(result, VariableKind.MODEL)
    optimizer_rows = _rows(result, VariableKind.OPTIMIZER)
    tally = ", ".join(f"{counts[v]} {v}" for v in (Verdict.SWAPPED, Verdict.NOT_LOADED, Verdict.CHANGED)
                      if counts.get(v))
    parts = []
    if model_rows or not optimizer_rows:
        of = f" of {result.variable_count}" if result.variable_count is not None else ""
        parts.append(f"{len(model_rows)}{of} variables")
    if optimizer_rows:
        parts.append(f"{len(optimizer_rows)} optimizer variables")
    return [f"  {' and '.join(parts)} did not survive ({tally}):"] + _table(result)


def render(result: RoundTripResult, *, seed: object = None, reproduce: str | None = None,
           not_reproducible: bool = False, notes: Sequence[str] = (), others: Sequence[Any] = ()) -> str:
    if result.ok:
        return result.summary()
    lines = _head(f"checkpoint round trip failed: {result.factory}", result, notes)
    if not_reproducible:
        lines.append("  failed once, passed on replay: the save or load is not deterministic; "
                     "what the first run saw:")
    lines += _raised((("save", result.save_error), ("load", result.load_error)), result.warnings)
    if result.outcomes:
        lines += _variables_lines(result)
    if result.output_differences:
        lines.append(f"  all {result.variable_count} variables survived, but the outputs on a probe "
                     "input differ (outputs_differ):")
        lines += [f"    {d.name}: {d.detail}" for d in result.output_differences[:10]]
    lines += others_line(result, others)
    return "\n".join(lines + tail(*diagnose(result, not_reproducible=not_reproducible), seed, reproduce))


def _resume_cause(result: Any) -> Diagnosis:
    same = result.save_mask.frozen == result.load_mask.frozen or result.new_model
    if result.train_error:
        return ("training after the load raised (your code's frames above), where the run that "
                "never stopped trained the same steps", "fix the error above; it is raised by fit() "
                "exactly as in your training script")
    if result.nondeterministic:
        return ("training is not deterministic: two runs resumed from the same checkpoint differ "
                "from each other, so no checkpoint can make resuming equal not stopping (random "
                "numbers drawn without a seed generator the layer owns, or an unseeded global state)",
                "draw random numbers through keras.random with a keras.random.SeedGenerator held by "
                "the layer, or call keras.utils.set_random_seed(...) before building and training")
    if getattr(result, "load_lost_state", False):
        return ("two loads of the same checkpoint gave models that differ before any training: the "
                "load leaves some variables at the fresh values their build gave them (a rebuilt "
                "model whose variables the file's keys do not reach), so the resumed run starts "
                "from another state than the one saved",
                f"run the round-trip check of format {result.format} for this factory: it names the "
                "variables that were not restored and why")
    unbuilt = result.optimizer_unbuilt_at_load and not restores_on_creation(result.format)
    if unbuilt or optimizer_skipped(result.warnings) is not None:
        return optimizer_cause(result.format, result.warnings, same, True, unbuilt=unbuilt)
    if matching(result.format) in _POSITIONAL and not same:
        return ("legacy HDF5 restored the weights by position and the freeze state changed, so "
                "weights landed in the wrong places", _REMEDY_POSITIONAL)
    if matching(result.format) in _POSITIONAL:
        return optimizer_cause(result.format, result.warnings, same, True)
    if not same:
        # The weights are keyed by path here; what a changed trainable set moves
        # is the optimizer's slots, which then steer the next steps' updates.
        return optimizer_cause(result.format, result.warnings, same, False)
    return ("the checkpoint does not carry all the state training depends on (an optimizer "
            "variable, a weight, or state outside the variables)",
            "load with the same freeze state as at save time, or use format keras-model; "
            "if that fails too, report it upstream")


def render_resume(result: Any, *, seed: object = None, reproduce: str | None = None,
                  not_reproducible: bool = False, notes: Sequence[str] = (), others: Sequence[Any] = ()) -> str:
    """The report of a resume check (see :mod:`pytest_ckpt.checks.resume`)."""
    if result.ok:
        return str(result.summary())
    d = result.divergence
    lines = _head(f"resumed training differs from training that never stopped: {result.factory}",
                  result, notes, save_note=f" (trained {result.steps} steps, then saved)",
                  load_note=f" (the uninterrupted run switched to it; the resumed run loaded under it; "
                            f"both trained {result.steps} more steps)")
    if not_reproducible:
        lines.append("  failed once, passed on replay: training or saving is not deterministic")
    lines += _raised((("save", result.save_error), ("load", result.load_error)), result.warnings)
    if result.train_error:
        lines.append(f"  training after the load raised {result.train_error[0]}:")
        lines += ["    " + line for line in result.train_error[1].splitlines()[-50:]]
    if d:
        lines.append(f"  first difference: after resumed step {d.step} of {result.steps}, "
                     f"{d.display} ({d.key}): {d.detail}")
        lines.append(f"  {result.diverged} variables differ after that step")
    lines += others_line(result, others)
    if d or result.train_error:
        cause, remedy = _resume_cause(result)
    elif result.blew_up:
        b = result.blew_up
        lines.append(f"  the run that never stopped reached NaN or inf at step {b.step} of {result.steps} "
                     f"after the save, in {b.display} ({b.key}): nothing after that can be compared")
        cause, remedy = ("these batches make this model's training blow up (learning rate, loss or data "
                         "scale), so resuming cannot be compared with not stopping",
                         "pass batches on the scale of your data (ckpt_resume.check(model, data=...)) "
                         "or lower the learning rate")
    elif result.epoch_mismatch or result.steps_run is not None:
        cause, remedy = _resume_position(result)
    else:
        cause, remedy = ("the round trip itself failed (see the error above)",
                         "run the round-trip check of this factory and format for details")
    return "\n".join(lines + tail(cause, remedy, seed, reproduce))


def _resume_position(result: Any) -> Diagnosis:
    """Where training stands did not come back: the resumed fit trains other epochs."""
    if result.epoch_mismatch:
        got, saved = result.epoch_mismatch
        where = "its initial_epoch" if got is None else f"epoch {got}"
        return (f"the checkpoint was saved at the end of epoch {saved - 1}, so fit should go on from "
                f"epoch {saved}; after the load it goes on from {where}: the resumed run trains other "
                "epochs than the run that never stopped (the epoch counter is a separate file that was "
                "not restored with the weights)",
                "restore the training metadata with the weights (keep both files of one save together), "
                "or pass initial_epoch to fit yourself from what you saved")
    return (f"the resumed fit trained {result.steps_run} of the {result.steps} steps the run that never "
            "stopped trained: fit believed those epochs were done (an epoch counter restored ahead of "
            "the weights)", "restore the epoch counter and the weights from the same save")
