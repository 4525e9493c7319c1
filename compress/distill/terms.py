"""The loss terms of the two stages, each looked up by name in the `compress.losses` registry.

`stage1_loss` names a registered loss of kind "feature". `stage2_losses` maps names to weights:
any registered loss (its `kind` says what it is given, see `compress.protocols.LOSS_KINDS`), plus
"feature", which means the stage-1 loss applied again in stage 2. Nothing here knows a loss by
name: a loss a third-party package registers is chosen exactly like a first-party one.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress import registry
from compress.errors import CompressError, UnknownPluginError
from compress.protocols import loss_kind

FEATURE_TERM = "feature"  # in stage2_losses: the stage-1 loss, again, in stage 2
KIND_ORDER = ("pair", "feature", "affinity")  # the order terms are summed in, whatever the config's order


@dataclass(frozen=True)
class Term:
    """One weighted loss of a stage."""

    key: str  # the loss module's name in the Objectives (and so in checkpoints)
    loss: str  # the registered loss name
    kind: str
    weight: float | None  # None: the loss's own default (stage 1)
    log: str  # the term's name in the loss log ("infonce"; feature terms: the prefix of "<prefix><tower>")


def loss_class(name: str):
    """The registered class of loss `name` and its kind."""
    cls = registry.get("losses", name)
    return cls, loss_kind(cls, name)


def losses_of_kind(kind: str) -> list[str]:
    """Registered loss names of one kind (a plugin that fails to load is left out of the listing)."""
    found = []
    for name in registry.names("losses"):
        try:
            if loss_class(name)[1] == kind:
                found.append(name)
        except Exception:  # noqa: BLE001 - a broken plugin must not hide the others in an error message
            continue
    return found


def stage1_term(name: str) -> Term:
    kind = None
    if isinstance(name, str):
        try:
            _, kind = loss_class(name)
        except UnknownPluginError:
            pass
    if kind != "feature":
        raise CompressError(
            f"stage1_loss {name!r} is not a registered feature loss; feature losses: "
            f"{', '.join(losses_of_kind('feature')) or 'none installed'}"
        )
    return Term(key="stage1_feature", loss=name, kind="feature", weight=None, log="")


def stage2_terms(weights: dict[str, float], stage1_loss: str) -> list[Term]:
    """The stage-2 terms of {name: weight}, in summing order."""
    terms = []
    for name, weight in weights.items():
        if name == FEATURE_TERM:
            terms.append(Term(key="stage2_feature", loss=stage1_loss, kind="feature", weight=weight, log="feature_"))
            continue
        try:
            _, kind = loss_class(name)
        except UnknownPluginError:
            available = [f"{FEATURE_TERM} (the stage-1 loss)", *registry.names("losses")]
            raise CompressError(
                f"stage2_losses: unknown term {name!r}; terms: {', '.join(available)} "
                "(losses registered under the compress.losses entry-point group)"
            ) from None
        if name == stage1_loss and kind == "feature" and FEATURE_TERM in weights:
            raise CompressError(f"stage2_losses: {name!r} and {FEATURE_TERM!r} name the same loss; give one")
        terms.append(Term(key=name, loss=name, kind=kind, weight=weight, log=f"{name}_" if kind == "feature" else name))
    return sorted(terms, key=lambda term: KIND_ORDER.index(term.kind))
