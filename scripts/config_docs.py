"""Generate docs/configuration.md from the services' pydantic Settings classes.

    uv run python scripts/config_docs.py           # rewrite the page
    uv run python scripts/config_docs.py --check   # exit 1 when the committed page is stale

Everything comes from pydantic's field metadata (`model_fields`, `FieldInfo.metadata`,
`json_schema_extra`), never from parsing source, so the page cannot drift from what the
services really accept. A field without a description is an error: the page is only as good
as its descriptions.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from central_sim.config import Settings as CentralSimSettings
from store_service.config import Settings as StoreSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = REPO_ROOT / "docs" / "configuration.md"
REGENERATE = "uv run python scripts/config_docs.py"

INTRO = (
    "Both services read their settings with pydantic-settings when they start: first from "
    "environment variables, then from a `.env` file in the working directory for any variable "
    "the environment does not set, then the defaults below. `.env.example` holds the "
    "development values for the local stack (`bin/run_local.py` falls back to it for any "
    "variable set neither in the environment nor in `.env`; copy it to `.env` to change "
    "them); `docker-compose.yml` sets its own through the environment. Secrets are secret "
    "types: they are never logged or echoed, and no default is shown for them here."
)

# (keyword in FieldInfo.metadata, keyword in json_schema_extra, how it reads in the table)
CONSTRAINTS: tuple[tuple[str, str, str], ...] = (
    ("gt", "exclusiveMinimum", "> {}"),
    ("ge", "minimum", "≥ {}"),
    ("lt", "exclusiveMaximum", "< {}"),
    ("le", "maximum", "≤ {}"),
    ("multiple_of", "multipleOf", "multiple of {}"),
    ("min_length", "minLength", "length ≥ {}"),
    ("max_length", "maxLength", "length ≤ {}"),
    ("pattern", "pattern", "pattern `{}`"),
)


@dataclass(frozen=True)
class Service:
    title: str
    settings: type[BaseSettings]

    @property
    def env_prefix(self) -> str:
        return str(self.settings.model_config.get("env_prefix", ""))


SERVICES: tuple[Service, ...] = (
    Service("store_service", StoreSettings),
    Service("central_sim", CentralSimSettings),
)


@dataclass(frozen=True)
class Row:
    variable: str
    type: str
    default: str
    constraints: str
    description: str


def is_secret(annotation: Any) -> bool:
    """A SecretStr anywhere inside the annotation (a set of keys, a mapping of secrets)."""
    if annotation is SecretStr:
        return True
    return any(is_secret(arg) for arg in get_args(annotation))


def type_name(annotation: Any) -> str:
    """How a reader sets the variable, not Python's spelling of it."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        names = " or ".join(_plain_type_name(a) for a in args if a is not type(None))
        return f"{names}, optional" if type(None) in args else names
    return _plain_type_name(annotation)


def _plain_type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (set, frozenset, list, tuple) and args:
        return f"list of {_plain_type_name(args[0])}"
    if origin is dict and len(args) == 2:
        return f"JSON object of {_plain_type_name(args[0])} to {_plain_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    names: dict[Any, str] = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        Path: "path",
        SecretStr: "string",
    }
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo, secret: bool) -> str:
    if field.is_required():
        return "required"
    if secret:
        return "not shown (secret)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"  # as it is written in the environment
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, (set, frozenset, list, tuple, dict)) and not value:
        return "empty"
    if value == "":
        return "empty"
    return f"`{value}`"


def _extra(field: FieldInfo) -> dict[str, Any]:
    # json_schema_extra may also be a callable that edits the schema; only a dict states facts.
    extra = field.json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def constraints_text(field: FieldInfo) -> str:
    found: list[str] = []
    extra = _extra(field)
    for attribute, schema_key, template in CONSTRAINTS:
        for item in field.metadata:
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(template.format(value))
        if schema_key in extra:
            found.append(template.format(extra[schema_key]))
    return ", ".join(found)


def rows(service: Service) -> list[Row]:
    result: list[Row] = []
    for name, field in service.settings.model_fields.items():
        # pydantic-settings applies no prefix to an aliased field.
        variable = field.alias.upper() if field.alias else service.env_prefix + name.upper()
        if not field.description:
            raise ValueError(
                f"{service.settings.__module__}.Settings.{name} has no description: "
                "add description= to its Field"
            )
        secret = is_secret(field.annotation) or bool(_extra(field).get("secret"))
        kind = type_name(field.annotation)
        result.append(
            Row(
                variable=f"`{variable}`",
                type=f"{kind}; **secret**" if secret else kind,
                default=default_text(field, secret),
                constraints=constraints_text(field),
                description=field.description,
            )
        )
    return result


def _cell(text: str) -> str:
    # A pipe would end the cell (patterns and descriptions may hold one).
    return text.replace("|", "\\|").replace("\n", " ")


def table(service: Service) -> list[str]:
    lines = [
        "| variable | type | default | constraints | description |",
        "|---|---|---|---|---|",
    ]
    for row in rows(service):
        cells = (row.variable, row.type, row.default, row.constraints, row.description)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render() -> str:
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from the Settings classes by `{REGENERATE}`; do not edit by hand. -->",
        "",
        INTRO,
    ]
    for service in SERVICES:
        settings = service.settings
        lines += [
            "",
            f"## {service.title} (`{service.env_prefix}*`)",
            "",
            f"From `{settings.__module__}.{settings.__qualname__}`.",
            "",
            *table(service),
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the page differs from the settings"
    )
    args = parser.parse_args(argv)
    expected = render()
    relative = DOC_PATH.relative_to(REPO_ROOT)
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != expected:
            print(f"{relative} is stale: run `{REGENERATE}`", file=sys.stderr)
            return 1
        print(f"{relative} is up to date")
        return 0
    DOC_PATH.write_text(expected, encoding="utf-8")
    print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
