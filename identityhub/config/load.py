"""Reading a config file: YAML with positions, `${VAR}` interpolation, `*_file` secrets, the schema.

YAML is composed (not constructed) with a resolver that knows no implicit types, so every scalar
stays a string: `no`, `0123`, `1:30` are what they look like. The node tree is walked into plain
data plus a map from each value's path (`("clients", 0, "client_id")`) to its 1-based line and
column, which is how every later problem finds its `FILE:LINE:COL`.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from .errors import ConfigError, Problem
from .schema import HubConfig

PathKey = tuple[str | int, ...]
Position = tuple[int, int]

MAX_FILE_BYTES = 1_000_000
MAX_SECRET_FILE_BYTES = 64 * 1024
SECRET_KEYS = ("client_secret", "password")  # each also has a `<key>_file` form
STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
VAR_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
REFERENCE = re.compile(r"\$\$|\$\{([^{}]*)\}|\$\{")
# `${VAR}` inside a flow collection (`{password: ${X}}`, as in the contract's example) is not valid
# YAML: braces are flow indicators. Before parsing, the braces of each reference are swapped for two
# private-use characters of the same length (columns stay true) and swapped back in every scalar.
TEXT_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?::-[^{}\n,\[\]]*)?)\}")
OPEN, CLOSE = "\ue000", "\ue001"


@dataclass
class Document:
    """Plain data from a config file and where each piece of it came from."""

    file: str  # as the user typed it
    base_dir: Path
    data: Any = None
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    plain: set[PathKey] = field(default_factory=set)  # unquoted scalars (for `const` typing)
    # (variable, value) of each environment variable interpolated into the value at a path
    from_env: dict[PathKey, list[tuple[str, str]]] = field(default_factory=dict)

    def problem(self, path: PathKey, message: str, *, at_key: bool = False) -> Problem:
        """A problem at the value of `path` (or its key), falling back to the nearest parent."""
        message = self.redact(path, message)
        if at_key and path in self.key_positions:
            line, column = self.key_positions[path]
            return Problem(self.file, message, line, column)
        for end in range(len(path), -1, -1):
            position = self.positions.get(tuple(path[:end]))
            if position is not None:
                return Problem(self.file, message, *position)
        return Problem(self.file, message)

    def redact(self, path: PathKey, message: str) -> str:
        """`message` with every environment value interpolated at `path` shown as `${VAR}`.

        Any variable may hold a secret, also one placed under the wrong key
        (`service_account: ${SYNO_PASSWORD}`): messages quote values, and must never quote those.
        """
        for name, value in sorted(self.from_env.get(path, ()), key=lambda item: -len(item[1])):
            if not value:
                continue
            message = message.replace(repr(value), repr(f"${{{name}}}"))
            if len(value) >= 4:  # shorter values would garble the words around them
                message = message.replace(value, f"${{{name}}}")
        return message


@dataclass
class LoadedConfig:
    document: Document
    config: HubConfig

    @property
    def file(self) -> str:
        return self.document.file

    def problem(self, path: PathKey, message: str, *, at_key: bool = False) -> Problem:
        return self.document.problem(path, message, at_key=at_key)


# --- YAML -----------------------------------------------------------------------------------
class _YAMLProblem(Exception):
    def __init__(self, mark, message: str):
        self.mark = mark
        self.message = message


class _Loader(Reader, Scanner, Parser, Composer, BaseResolver):
    """Composes nodes only; no implicit types (BaseResolver), no aliases, no anchors."""

    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _YAMLProblem(event.start_mark, "YAML aliases (*name) are not allowed")
        if getattr(event, "anchor", None):
            raise _YAMLProblem(event.start_mark, "YAML anchors (&name) are not allowed")
        return super().compose_node(parent, index)


def _mark(mark) -> Position:
    return (mark.line + 1, mark.column + 1)


def _offset_position(text: str, offset: int) -> Position:
    before = text[:offset]
    return (before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def parse_yaml(text: str, file: str, base_dir: Path) -> Document:
    """YAML text -> Document (plain data + positions). Raises ConfigError."""
    document = Document(file=file, base_dir=base_dir)
    if OPEN not in text and CLOSE not in text:
        text = TEXT_REFERENCE.sub(lambda m: f"${OPEN}{m.group(1)}{CLOSE}", text)
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except _YAMLProblem as error:
        raise ConfigError([Problem(file, error.message, *_mark(error.mark))]) from None
    except yaml.reader.ReaderError as error:
        position = _offset_position(text, error.position) if isinstance(error.position, int) else (None, None)
        code = error.character if isinstance(error.character, int) else ord(error.character)
        raise ConfigError([Problem(file, f"invalid character #x{code:04x}", *position)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
        if mark is None:
            raise ConfigError([Problem(file, f"invalid YAML: {message}")]) from None
        raise ConfigError([Problem(file, f"invalid YAML: {message}", *_mark(mark))]) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem(file, f"invalid YAML: {error}")]) from None
    except RecursionError:
        raise ConfigError([Problem(file, "the YAML is nested too deeply")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise ConfigError([Problem(file, "the file is empty")])
    problems: list[Problem] = []
    try:
        document.data = _walk(node, (), document, problems)
    except RecursionError:
        raise ConfigError([Problem(file, "the YAML is nested too deeply")]) from None
    if problems:
        raise ConfigError(problems)
    return document


def _restore(value: str) -> str:
    return value.replace(OPEN, "{").replace(CLOSE, "}")


def _walk(node, path: PathKey, document: Document, problems: list[Problem]) -> Any:
    document.positions[path] = _mark(node.start_mark)
    if isinstance(node, ScalarNode):
        if node.tag != STR_TAG:
            problems.append(document.problem(path, f"YAML tags ({node.tag}) are not allowed"))
        if node.style is None:
            document.plain.add(path)
            if node.value == "":
                return None
        return _restore(node.value)
    if isinstance(node, SequenceNode):
        if node.tag != SEQ_TAG:
            problems.append(document.problem(path, f"YAML tags ({node.tag}) are not allowed"))
        return [_walk(item, (*path, index), document, problems) for index, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        if node.tag != MAP_TAG:
            problems.append(document.problem(path, f"YAML tags ({node.tag}) are not allowed"))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != STR_TAG:
                problems.append(Problem(document.file, "keys must be plain strings", *_mark(key_node.start_mark)))
                continue
            key = _restore(key_node.value)
            if key in result:
                first = document.key_positions[(*path, key)]
                problems.append(
                    Problem(document.file, f"duplicate key {key!r} (first at line {first[0]})",
                            *_mark(key_node.start_mark))
                )
                continue
            document.key_positions[(*path, key)] = _mark(key_node.start_mark)
            result[key] = _walk(value_node, (*path, key), document, problems)
        return result
    problems.append(document.problem(path, "unsupported YAML node"))  # pragma: no cover
    return None


# --- ${VAR} interpolation ---------------------------------------------------------------------
def interpolate(
    value: str, environ: Mapping[str, str], used: list[tuple[str, str]] | None = None
) -> tuple[str, list[str]]:
    """Expand `${VAR}`, `${VAR:-default}` and `$$`; returns (result, problems).

    Each (variable, value) taken from `environ` is appended to `used` when given.
    """
    problems: list[str] = []

    def replace(match: re.Match) -> str:
        text = match.group(0)
        if text == "$$":
            return "$"
        if match.group(1) is None:
            problems.append("unterminated ${ (write $$ for a literal $)")
            return ""
        reference = VAR_NAME.match(match.group(1))
        if reference is None:
            problems.append(f"invalid variable reference {text!r} (write $$ for a literal $)")
            return ""
        name, default = reference.group(1), reference.group(2)
        current = environ.get(name)
        if default is not None and not current:
            return default
        if current is None:
            problems.append(f"environment variable {name} is not set")
            return ""
        if used is not None:
            used.append((name, current))
        return current

    return REFERENCE.sub(replace, value), problems


def _interpolate_all(data: Any, path: PathKey, document: Document, environ: Mapping[str, str],
                     problems: list[Problem]) -> Any:
    if isinstance(data, str):
        if "$" not in data:
            return data
        used: list[tuple[str, str]] = []
        result, messages = interpolate(data, environ, used)
        if used:
            document.from_env[path] = used
        problems.extend(document.problem(path, message) for message in messages)
        return result
    if isinstance(data, list):
        return [_interpolate_all(item, (*path, i), document, environ, problems) for i, item in enumerate(data)]
    if isinstance(data, dict):
        return {key: _interpolate_all(value, (*path, key), document, environ, problems) for key, value in data.items()}
    return data


# --- *_file secrets ----------------------------------------------------------------------------
def _read_secret_files(data: Any, path: PathKey, document: Document, problems: list[Problem]) -> Any:
    if isinstance(data, list):
        return [_read_secret_files(item, (*path, i), document, problems) for i, item in enumerate(data)]
    if not isinstance(data, dict):
        return data
    result = {key: _read_secret_files(value, (*path, key), document, problems) for key, value in data.items()}
    for key in SECRET_KEYS:
        file_key = f"{key}_file"
        if file_key not in result:
            continue
        file_path = (*path, file_key)
        if key in result:
            problems.append(document.problem(file_path, f"give either {key} or {file_key}, not both", at_key=True))
            continue
        value = result.pop(file_key)
        if not isinstance(value, str) or not value.strip():
            problems.append(document.problem(file_path, f"{file_key} must be a file path"))
            continue
        secret_path = Path(value)
        if not secret_path.is_absolute():
            secret_path = document.base_dir / secret_path
        try:
            with open(secret_path, "rb") as handle:  # bounded: `/dev/zero` must not exhaust memory
                raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
            if len(raw) > MAX_SECRET_FILE_BYTES:
                problems.append(document.problem(file_path, f"{file_key} {value} is larger than a secret can be"))
                continue
            secret = raw.decode("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError, ValueError) as error:  # ValueError: a NUL in the path
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a readable UTF-8 file"
            problems.append(document.problem(file_path, f"cannot read {file_key} {value}: {reason}"))
            continue
        if not secret:
            problems.append(document.problem(file_path, f"{file_key} {value} is empty"))
            continue
        result[key] = secret
        # Problems with the secret itself point at the file reference.
        document.positions[(*path, key)] = document.positions[file_path]
        document.key_positions[(*path, key)] = document.key_positions[file_path]
    return result


# --- `const` claims: YAML 1.2 core types for unquoted scalars ------------------------------------
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]+)?$")


def core_scalar(value: str | None) -> Any:
    """An unquoted scalar as YAML 1.2's core schema reads it (decimal numbers, true/false, null)."""
    if value is None or value in {"null", "Null", "NULL", "~"}:
        return None
    if value in {"true", "True", "TRUE"}:
        return True
    if value in {"false", "False", "FALSE"}:
        return False
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value) and any(c.isdigit() for c in value) and ("." in value or "e" in value.lower()):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _type_consts(data: Any, document: Document) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
        return
    for i, client in enumerate(data["clients"]):
        claims = client.get("claims") if isinstance(client, dict) else None
        if not isinstance(claims, dict):
            continue
        for name, rule in claims.items():
            if isinstance(rule, dict) and "const" in rule:
                rule["const"] = _typed(rule["const"], ("clients", i, "claims", name, "const"), document)


def _typed(value: Any, path: PathKey, document: Document) -> Any:
    if isinstance(value, list):
        return [_typed(item, (*path, i), document) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _typed(item, (*path, key), document) for key, item in value.items()}
    if path in document.plain and (value is None or isinstance(value, str)):
        return core_scalar(value)
    return value


# --- schema -------------------------------------------------------------------------------------
def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional down to a model, list or dict type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            candidates = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(candidates) == 1:
                annotation = candidates[0]
                continue
        return annotation


def _model_at(loc: tuple) -> type[BaseModel] | None:
    annotation: Any = HubConfig
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(part, int) and origin is list:
            annotation = typing.get_args(annotation)[0]
        elif isinstance(part, str) and origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"{value!r}"
    return type(value).__name__


def _data_path(loc: tuple, data: Any) -> PathKey:
    """pydantic's loc minus union/validator tags: the longest prefix that exists in the data."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str):
            path.append(part)  # a missing or unknown key
            break
        else:
            break
    return tuple(path)


def schema_problems(error: ValidationError, document: Document) -> list[Problem]:
    problems = []
    reported: set[PathKey] = set()
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = _data_path(loc, document.data)
        kind = item["type"]
        value = item.get("input")
        if kind not in {"missing", "extra_forbidden"}:
            if path in reported:  # a union reports each branch: one line per value is enough
                continue
            reported.add(path)
        if kind == "extra_forbidden":
            key = path[-1] if path else loc[-1]
            model = _model_at(path[:-1])
            message = f"unknown key {key!r}"
            if model is not None:
                close = difflib.get_close_matches(str(key), list(model.model_fields), n=1, cutoff=0.6)
                if close:
                    message += f"; did you mean {close[0]!r}?"
            problems.append(document.problem(path, message, at_key=True))
        elif kind == "missing":
            problems.append(document.problem(path[:-1], f"missing key {path[-1]!r}" if path else "missing key"))
        elif kind in {"value_error", "assertion_error"}:
            problems.append(document.problem(path, str(item["ctx"]["error"])))
        elif kind in {"literal_error", "enum"}:
            expected = item.get("ctx", {}).get("expected", "")
            problems.append(document.problem(path, f"expected one of {expected}, got {_kind(value)}"))
        elif kind in {"model_type", "dict_type", "model_attributes_type"}:
            problems.append(document.problem(path, f"expected a mapping, got {_kind(value)}"))
        elif kind == "list_type":
            problems.append(document.problem(path, f"expected a list, got {_kind(value)}"))
        elif kind in {"string_type", "str_type"}:
            problems.append(document.problem(path, f"expected a string, got {_kind(value)}"))
        elif kind == "bool_type":
            problems.append(document.problem(path, f"expected true or false, got {_kind(value)}"))
        else:
            problems.append(document.problem(path, item["msg"]))
    # One line per problem, in file order, without repeats (unions can report twice).
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0))


# --- entry points --------------------------------------------------------------------------------
def read_document(file: str | os.PathLike, *, environ: Mapping[str, str] | None = None) -> Document:
    """Read, parse and interpolate a config file (no schema yet)."""
    shown = str(file)
    path = Path(file)
    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as error:
        raise ConfigError([Problem(shown, f"cannot read the file: {error.strerror or error}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([Problem(shown, f"the file is larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError([Problem(shown, f"the file is not UTF-8 (byte {error.start})")]) from None
    return parse_text(text, shown, path.resolve().parent, environ=environ)


def parse_text(text: str, file: str, base_dir: Path, *, environ: Mapping[str, str] | None = None) -> Document:
    document = parse_yaml(text, file, base_dir)
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    document.data = _interpolate_all(document.data, (), document, environ, problems)
    document.data = _read_secret_files(document.data, (), document, problems)
    if problems:
        raise ConfigError(problems)
    _type_consts(document.data, document)
    return document


def validate_document(document: Document) -> LoadedConfig:
    """Schema then cross-reference checks. Raises ConfigError listing every problem found."""
    from .validate import check_semantics

    if not isinstance(document.data, dict):
        raise ConfigError([document.problem((), f"expected a mapping at the top level, got {_kind(document.data)}")])
    try:
        config = HubConfig.model_validate(document.data)
    except ValidationError as error:
        raise ConfigError(schema_problems(error, document)) from None
    loaded = LoadedConfig(document=document, config=config)
    problems = check_semantics(loaded)
    if problems:
        raise ConfigError(problems)
    return loaded


def load_config(file: str | os.PathLike, *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """The whole check: read, parse, interpolate, validate. Raises ConfigError only."""
    return validate_document(read_document(file, environ=environ))


def load_text(text: str, file: str = "<text>", *, base_dir: Path | None = None,
              environ: Mapping[str, str] | None = None) -> LoadedConfig:
    return validate_document(parse_text(text, file, base_dir or Path.cwd(), environ=environ))
