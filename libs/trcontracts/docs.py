"""docs/internal-api.md, generated from the contracts: `python -m trcontracts.docs > docs/internal-api.md`
(`make contracts-doc`). The prose the models cannot carry is in docs_template.md; each `<!-- name -->` line there
is replaced by the generated tables of that part."""
from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, BeforeValidator
from pydantic.types import Strict

from . import base, events, inventory, orders, users
from .base import EVERY_ROUTE_ERRORS, HEALTH, CommonError, ErrorCode, Route

TEMPLATE = Path(__file__).with_name("docs_template.md")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _codes(codes) -> str:
    return ", ".join(f"{c.status} `{c}`" for c in codes)


# --- models ------------------------------------------------------------------------------------------------------

def _schema_type(prop: dict) -> str:
    if "$ref" in prop:
        return f"`{prop['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in prop:
        kinds = [p for p in prop["anyOf"] if p.get("type") != "null"]
        text = " or ".join(_schema_type(p) for p in kinds)
        return text + (" or null" if len(kinds) < len(prop["anyOf"]) else "")
    kind = prop.get("type", "any")
    if kind == "array":
        items = f"[{_schema_type(prop.get('items', {}))}]"
        if "minItems" in prop or "maxItems" in prop:
            items += f" ({prop.get('minItems', 0)}–{prop['maxItems']} items)" if "maxItems" in prop \
                else f" (≥ {prop['minItems']} items)"
        return items
    if kind == "object":
        return "object"
    text = {"date-time": "timestamp", "uuid": "uuid", "email": "email"}.get(prop.get("format", ""), kind)
    limits = []
    if "minLength" in prop or "maxLength" in prop:
        limits.append(f"{prop.get('minLength', 0)}–{prop['maxLength']} chars" if "maxLength" in prop
                      else f"≥ {prop['minLength']} chars")
    if "exclusiveMinimum" in prop:
        limits.append(f"> {prop['exclusiveMinimum']}")
    if "minimum" in prop:
        limits.append(f"≥ {prop['minimum']}")
    if "maximum" in prop:
        limits.append(f"≤ {prop['maximum']}")
    if "pattern" in prop:
        limits.append(f"`{prop['pattern']}`")
    return text + (f" ({', '.join(limits)})" if limits else "")


def _field(model: type[BaseModel], name: str, prop: dict, required: bool) -> str:
    text = f"`{name}` {_schema_type(prop)}"
    info = model.model_fields[name]
    notes = []
    if any(isinstance(m, Strict) and m.strict for m in info.metadata):
        notes.append("strict: no conversion from strings or floats")
    if any(isinstance(m, BeforeValidator) and m.func is base._timestamp_string for m in info.metadata):
        notes.append("a string with a time zone")
    if not required:
        notes.append("optional" if info.default is None else f"default {info.default}")
    return text + (f" — {'; '.join(notes)}" if notes else "")


def _model_line(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    fields = "; ".join(_field(model, name, prop, name in required) for name, prop in schema["properties"].items())
    # A docstring wrapped over lines is one line of the list.
    doc = f" {' '.join(model.__doc__.split())}" if model.__doc__ else ""
    return f"- `{model.__name__}`: {fields}.{doc}"


def _models_of(routes: tuple[Route, ...]) -> list[type[BaseModel]]:
    """The models the routes take and answer, nested ones after their parent, each once."""
    found: list[type[BaseModel]] = []

    def nested(annotation):
        # `Model`, `Model | None`, `list[Model] | None`, ...
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield annotation
        for arg in getattr(annotation, "__args__", ()):
            yield from nested(arg)

    def add(model):
        if model is None or model in found:
            return
        found.append(model)
        for info in model.model_fields.values():
            for inner in nested(info.annotation):
                add(inner)

    for route in routes:
        for model in (route.body, route.query, route.response):
            add(model)
    return found


# --- sections ----------------------------------------------------------------------------------------------------

def _route_table(module: ModuleType) -> list[str]:
    names = {id(v): k for k, v in vars(module).items() if isinstance(v, Route)}
    lines = ["| contract | route | request | answer | errors | retried | notes |", "|---|---|---|---|---|---|---|"]
    for route in module.ROUTES:
        request = (f"`{route.body.__name__}`" if route.body else f"query `{route.query.__name__}`"
                   if route.query else "raw body" if route.raw_body else "")
        lines.append(f"| `{module.__name__.rsplit('.', 1)[-1]}.{names[id(route)]}` | "
                     f"`{route.method} {route.path}` | {request} | {route.status} `{route.response.__name__}` | "
                     f"{_codes(route.all_errors)} | {'yes' if route.idempotent else 'no'} | {_cell(route.doc)} |")
    return lines


def _enums(module: ModuleType) -> list[str]:
    lines = []
    for name, value in vars(module).items():
        if (isinstance(value, type) and issubclass(value, StrEnum) and not issubclass(value, ErrorCode)
                and value.__module__ == module.__name__):
            lines.append(f"- `{name}`: {', '.join(f'`{m}`' for m in value)}")
    return lines


def _error_codes(enum: type[ErrorCode]) -> list[str]:
    lines = [f"`{enum.__name__}`:", "", "| code | status |", "|---|---|"]
    lines += [f"| `{code}` | {code.status} |" for code in enum]
    return lines


def _http_section(module: ModuleType, errors: type[ErrorCode]) -> str:
    lines = _route_table(module) + ["", "Bodies, queries and answers (unknown fields are ignored):", ""]
    lines += [_model_line(m) for m in _models_of(module.ROUTES)]
    enums = _enums(module)
    if enums:
        lines += ["", "States:", "", *enums]
    lines += ["", *_error_codes(errors)]
    return "\n".join(lines)


def _common_section() -> str:
    lines = [f"Every route may also answer {_codes(EVERY_ROUTE_ERRORS)}; a route that takes a body or a query "
             f"answers {_codes([CommonError.INVALID_INPUT])} with `details` naming each field. "
             f"`{HEALTH.method} {HEALTH.path}` answers `{HEALTH.response.__name__}` "
             f"(`{{status, checks: {{name: \"up\" | \"down: …\"}}}}`). {HEALTH.doc}", "",
             *_error_codes(CommonError)]
    return "\n".join(lines)


def _inventory_section() -> str:
    lines = ["| RPC | outcome codes | retried | notes |", "|---|---|---|---|"]
    for rpc in inventory.RPCS:
        lines.append(f"| {rpc.name} | {_codes(rpc.errors)} | {'yes' if rpc.idempotent else 'no'} | "
                     f"{_cell(rpc.doc)} |")
    states = ", ".join(f"`{state}` = {number}" for number, state in inventory.SEAT_STATUS_BY_NUMBER.items())
    lines += ["", f"`SeatStatus` (the proto enum's numbers): {states}.", "", *_error_codes(inventory.InventoryError)]
    return "\n".join(lines)


def render() -> str:
    sections = {"common": _common_section(), "users": _http_section(users, users.UserError),
                "orders": _http_section(orders, orders.OrderError),
                "events": _http_section(events, events.EventError), "inventory": _inventory_section()}
    out = []
    for line in TEMPLATE.read_text().splitlines():
        key = line.strip()[5:-4].strip() if line.startswith("<!-- ") and line.endswith(" -->") else None
        out.append(sections.pop(key) if key in sections else line)
    if sections:
        raise ValueError(f"docs_template.md has no place for {sorted(sections)}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
