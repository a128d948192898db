"""Load YAML content files with line marks, duplicate-key rejection and literal scalars.

Every plain scalar is kept as the text the author wrote (``NO`` stays ``'NO'``, ``010`` stays
``'010'``, ``17:30`` stays ``'17:30'``); only ``~``/``null``/empty become ``None``. Typing is left to
the pydantic schema of each file, so a string field never receives a YAML 1.1 boolean or octal
number (shared cases 01 and 02), and a numeric field reads ``07`` as decimal 7, never as octal.

Every YAML file sopcoach reads goes through :func:`load_yaml`, which refuses alias bombs ("billion
laughs"): a document whose aliases repeat more than :data:`MAX_ALIASES` times, or that would expand
to more than :data:`MAX_NODES` nodes, or whose alias refers to itself, is a problem, not a hang;
it is located at the key whose value uses the alias where the limit was passed (every use of an
alias shares the anchor's node, so the anchor's line would blame the wrong place).
A tab in the indentation is reported as a tab (line, column) with the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ContentError, Problem, relpath

_NULLS = {"", "~", "null", "Null", "NULL"}

#: Most alias uses (``*name``) one document may make; content files need a handful at most.
MAX_ALIASES = 100
#: Most nodes one document may expand to (aliases counted at every use); the shipped bank has ~10 000.
MAX_NODES = 200_000

Key = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Loaded:
    """A YAML document as plain Python data plus the 1-based (line, column) of every node.

    ``marks`` maps a key path such as ``("stages", 2, "role")`` to the position of that node.
    """

    path: str
    data: Any
    marks: dict[Key, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: The position of each mapping key (``marks`` holds its value's), keyed like ``marks``.
    key_marks: dict[Key, tuple[int, int]] = field(default_factory=dict)

    def mark(self, loc: Key) -> tuple[int, int]:
        """Return the position of ``loc``, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.marks:
                return self.marks[loc]
            loc = loc[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, loc: Key, message: str) -> Problem:
        """Build a :class:`Problem` located at ``loc`` (a key path into the document)."""
        line, col = self.mark(loc)
        return Problem(self.path, line, col, format_loc(loc), message)


def format_loc(loc: Key) -> str:
    """Format a key path as ``stages[2].role``.

    >>> format_loc(("stages", 2, "role"))
    'stages[2].role'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


@dataclass
class _Budget:
    """Counts nodes and alias uses while a document is built (see :data:`MAX_NODES`)."""

    nodes: int = 0
    aliases: int = 0
    seen: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    #: Where the outermost alias being expanded is used (its key path); ``None`` outside aliases.
    alias_use: Key | None = None

    def where(self, node: yaml.Node, doc: Loaded) -> tuple[int, int]:
        """The position to blame: the use of the alias being expanded (the key it is the value of,
        else its container), not the anchor every use of an alias shares; else the node itself."""
        site = self.alias_use
        if site is None:
            return _pos(node)
        for n in range(len(site), 0, -1):  # the nearest key: built outside the alias, so its own line
            if site[:n] in doc.key_marks:
                return doc.key_marks[site[:n]]
        return doc.mark(())

    def enter(self, node: yaml.Node, loc: Key, doc: Loaded) -> None:
        def refuse(message: str) -> ContentError:
            return ContentError([Problem(doc.path, *self.where(node, doc), format_loc(loc), message)])
        if id(node) in self.open:
            raise refuse("an alias refers to the node that contains it (a loop); write the value out")
        self.nodes += 1
        if id(node) in self.seen:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise refuse(f"more than {MAX_ALIASES} alias uses (*name); refused as a possible alias bomb, "
                             "write the values out instead of repeating aliases")
        self.seen.add(id(node))
        if self.nodes > MAX_NODES:
            raise refuse(f"the document expands to more than {MAX_NODES} values (aliases counted at each "
                         "use); refused as a possible alias bomb, write fewer or split the file")


def _build(node: yaml.Node, loc: Key, doc: Loaded, budget: _Budget | None = None) -> Any:
    budget = budget if budget is not None else _Budget()
    outer_alias = budget.alias_use is None and id(node) in budget.seen  # an alias used outside any alias
    if outer_alias:
        budget.alias_use = loc
    try:
        budget.enter(node, loc, doc)
        if isinstance(node, yaml.ScalarNode):
            return _build_scalar(node, loc, doc)
        budget.open.add(id(node))
        try:
            return _build_collection(node, loc, doc, budget)
        finally:
            budget.open.discard(id(node))
    finally:
        if outer_alias:
            budget.alias_use = None


def _build_scalar(node: yaml.ScalarNode, loc: Key, doc: Loaded) -> Any:
    doc.marks[loc] = _pos(node)
    if node.style is None and node.value in _NULLS and node.tag != "tag:yaml.org,2002:str":
        return None
    return node.value


def _build_collection(node: yaml.Node, loc: Key, doc: Loaded, budget: _Budget) -> Any:
    doc.marks[loc] = _pos(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, loc + (i,), doc, budget) for i, child in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = _build(value_node, loc, doc, budget)
                for k, v in (merged if isinstance(merged, dict) else {}).items():
                    out.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                doc.problems.append(Problem(doc.path, *_pos(key_node), format_loc(loc),
                                            "a mapping key must be plain text"))
                continue
            key = key_node.value
            line, _ = _pos(key_node)
            if key in first_line:
                doc.problems.append(Problem(
                    doc.path, *_pos(key_node), format_loc(loc + (key,)),
                    f"duplicate key '{key}' at line {line} (first defined at line {first_line[key]}); "
                    "keep one definition"))
                continue
            first_line[key] = line
            doc.key_marks[loc + (key,)] = _pos(key_node)
            out[key] = _build(value_node, loc + (key,), doc, budget)
        return out
    raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover - PyYAML has three node kinds


def load_yaml(path: Path | str, text: str | None = None) -> Loaded:
    """Parse one YAML file into plain data with marks, collecting (not raising) content problems.

    Parameters
    ----------
    path : path-like
        The file to read (UTF-8, a BOM is accepted); also the name used in problems.
    text : str, optional
        The content, when already in memory (the file is then not read).

    Returns
    -------
    Loaded
        ``data`` is ``None`` when the file is empty or not parseable; ``problems`` lists syntax errors
        and duplicate keys, each with its line.

    Examples
    --------
    >>> doc = load_yaml("x.yaml", "regions: [DE, NO, SE]\\ncode: 010\\n")
    >>> doc.data
    {'regions': ['DE', 'NO', 'SE'], 'code': '010'}
    >>> doc.marks[("code",)]
    (2, 7)
    """
    name = relpath(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            return Loaded(name, None, problems=[Problem(name, 0, 0, "", f"cannot read the file: {exc}")])
    doc = Loaded(name, None)
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        doc.problems.append(_tab_problem(name, text, line)
                            or Problem(name, line, col, "", f"YAML syntax error: {exc.problem or exc}"))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(name, 0, 0, "", f"YAML error: {exc}"))
        return doc
    if node is not None:
        try:
            doc.data = _build(node, (), doc)
        except ContentError as exc:  # refused by the budget: nothing of the document is kept
            doc.data, doc.marks = None, {}
            doc.problems.extend(exc.problems)
    return doc


def _tab_problem(name: str, text: str, error_line: int) -> Problem | None:
    """Name the tab that broke the parse: on the error line, else the nearest tab-indented line above."""
    lines = text.splitlines()
    for n in range(min(error_line, len(lines)), 0, -1):
        indent = lines[n - 1][: len(lines[n - 1]) - len(lines[n - 1].lstrip(" \t"))]
        if "\t" in indent:
            col = indent.index("\t") + 1
            return Problem(name, n, col, "", "a tab character in the indentation; YAML indents with spaces "
                           "only: replace the tab with spaces (two per level, as in the other lines)")
    return None


def pydantic_problems(doc: Loaded, exc: ValidationError, prefix: Key = ()) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into located problems, one per error."""
    out = []
    for err in exc.errors():
        loc = prefix + _data_loc(doc.data if not prefix else _at(doc.data, prefix), err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "missing":
            msg = f"field '{loc[-1]}' is required" if loc else "a value is required"
        elif err["type"] == "extra_forbidden":
            msg = f"unknown field '{loc[-1]}'; check the spelling or remove it"
            if loc in doc.key_marks:  # point at the misspelt key, not at its value
                out.append(Problem(doc.path, *doc.key_marks[loc], format_loc(loc), msg))
                continue
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {err['input']!r})"
        out.append(doc.problem(loc, msg))
    return out


def _is_tag(part: Any) -> bool:
    # pydantic inserts union/function tags such as 'function-after[...]' into locs
    return isinstance(part, str) and ("[" in part or part in {"list", "dict", "str", "int"})


def _at(data: Any, loc: Key) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _data_loc(data: Any, loc: Key) -> Key:
    """Drop the parts of a pydantic ``loc`` that are not keys of ``data``: union and discriminator tags.

    A discriminated union puts the tag (``single_choice``) between a list index and the field; a
    part that names no key of the mapping it walks through (and is not the last, a missing or
    unknown field) is such a tag.
    """
    out: list[Any] = []
    parts = [p for p in loc if isinstance(p, int) or not _is_tag(p)]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(data, dict) and isinstance(part, str) and part not in data and not last:
            continue
        out.append(part)
        data = _at(data, (part,))
    return tuple(out)


def validate(model: type[M], doc: Loaded, data: Any = None, prefix: Key = ()) -> M | None:
    """Validate ``data`` (default: the whole document) against ``model``; record problems on ``doc``."""
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        doc.problems.extend(pydantic_problems(doc, exc, prefix))
        return None


def raise_problems(problems: list[Problem]) -> None:
    """Raise :class:`ContentError` when ``problems`` is not empty."""
    if problems:
        raise ContentError(problems)
