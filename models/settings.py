"""Settings for the sans-IO logic, built from the scenario's frozen config in one place.

Each piece of logic declares what it needs as a frozen dataclass (``CommandSettings``,
``IngestSettings``, ...) whose field names are the config's own field names.  A field is
filled from the config field of the same name, converted to the field's declared container
type (a YAML list becomes the tuple or frozenset the logic wants); what does not come
from that config section (the replicas the topology provides, a switch of another
component) is passed by name, and a config section describing a policy (a retry schedule)
becomes the policy object.  So a new countermeasure switch is a field in the config
and a field in the settings, and nothing in between.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from pydantic import BaseModel

from sim.errors import ModelDefinitionError

__all__ = ["settings_from"]

S = TypeVar("S")


def settings_from(settings_type: type[S], config: BaseModel, **given: Any) -> S:
    """A ``settings_type`` whose fields come from ``config``'s same-named fields, or ``given``."""
    if not dataclasses.is_dataclass(settings_type):
        raise ModelDefinitionError(f"{settings_type.__name__} is not a dataclass")
    hints = typing.get_type_hints(settings_type)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(settings_type):
        name = field.name
        if name in given:
            values[name] = given.pop(name)
            continue
        if name not in type(config).model_fields:
            raise ModelDefinitionError(
                f"{settings_type.__name__}.{name} has no field of that name in {type(config).__name__} "
                "and was not given: name the config field the same, or pass it"
            )
        values[name] = _as(hints[name], getattr(config, name))
    if given:
        raise ModelDefinitionError(f"{settings_type.__name__} has no field(s) {', '.join(sorted(given))}")
    return settings_type(**values)


def _as(hint: Any, value: Any) -> Any:
    """``value`` in the type ``hint`` asks for: a tuple or frozenset from a list, the pure
    policy a config section describes (its ``policy()``), else ``value`` as it is."""
    if isinstance(hint, type) and not isinstance(value, hint) and callable(getattr(value, "policy", None)):
        return value.policy()
    origin = typing.get_origin(hint)
    if origin is tuple and not isinstance(value, tuple):
        return tuple(value)
    if origin is frozenset and not isinstance(value, frozenset):
        return frozenset(value)
    return value
