"""Safe YAML reading for manifests: nodes in, plain values with source locations out.

PyYAML's constructors are where YAML gets dangerous or lossy: tags can name Python callables, aliases can
expand exponentially ("billion laughs"), duplicate keys silently keep the last value, and YAML 1.1 turns
``0123456`` (a perfectly good sha prefix) into an octal integer. So this module never constructs anything:
it composes the node graph with ``SafeLoader`` and walks it itself, building only ``str``, ``bool``,
``None``, ``list`` and ``dict`` while recording where every value came from, and reporting what it refuses.

Numbers, dates and the like are kept as their source text: every manifest field is text (a sha, a name, a
major version), and the text the user typed is what they meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .problems import FieldPath as FieldPath  # where paths are written as users see them
from .problems import format_path as format_path

#: The values a manifest document is made of after walking. Numbers never appear: they stay text.
YamlValue: TypeAlias = bool | str | list["YamlValue"] | dict[str, "YamlValue"] | None
#: Where a value sits in the document: mapping keys and list indices, e.g. ``("templates", 1, "sha")``.

# Aliases are legitimate (sharing a repository mapping), but each re-use copies a subtree. Nodes visited
# for the first time are bounded by the file size; re-visits through aliases are not, so they get a budget.
MAX_ALIAS_EXPANSION_NODES = 10_000
# Text produced by alias re-use is bounded separately: one long string aliased 10,000 times is small on
# disk but huge to validate.
MAX_ALIAS_EXPANSION_CHARS = 5 * 1024 * 1024
# A manifest is four levels deep. PyYAML composes recursively, so deep nesting would otherwise end in a
# RecursionError instead of a message.
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL = _CORE + "str", _CORE + "null", _CORE + "bool"
_SEQ, _MAP, _MERGE = _CORE + "seq", _CORE + "map", _CORE + "merge"
# Scalars whose text is kept as is. "timestamp" is here because PyYAML resolves a plain 2024-01-01 to it,
# and a branch or directory may well be called that.
_TEXT_TAGS = {_STR: "string", _CORE + "int": "integer", _CORE + "float": "float", _CORE + "timestamp": "date"}
_BOOL_VALUES: Mapping[str, bool] = yaml.constructor.SafeConstructor.bool_values


@dataclass(frozen=True)
class Location:
    """A 1-based position in the source text."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Location:
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class Issue:
    """Something the reader refuses, before any schema is applied."""

    location: Location | None
    path: FieldPath
    message: str


@dataclass(frozen=True)
class Scalar:
    """What a scalar looked like in the source, for messages: its YAML type and its text."""

    kind: str  # string | integer | float | date | boolean | null
    text: str


@dataclass
class Document:
    """The walked document: the value tree plus, for every path, where it came from."""

    value: YamlValue = None
    empty: bool = False
    complete: bool = True  # False when reading stopped early (syntax error, expansion limit)
    locations: dict[FieldPath, Location] = field(default_factory=dict)
    key_locations: dict[FieldPath, Location] = field(default_factory=dict)
    scalars: dict[FieldPath, Scalar] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    # Paths whose value is unusable because an issue was reported there; later checks stay quiet about
    # them so that one mistake gives one message.
    reported: set[FieldPath] = field(default_factory=set)
    # Paths whose text was interpolated from the environment (filled by the manifest's interpolation): the
    # variables whose values it holds. A message about such a value names them and prints it only when harmless.
    variables: dict[FieldPath, tuple[str, ...]] = field(default_factory=dict)


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/name`` -> ``!!python/name``, as the user wrote it."""
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH while composing.

    Composition is recursive; failing with a marked error here beats a RecursionError from deep inside.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nesting is deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _ExpansionLimitReached(Exception):
    """Raised inside the walk to abandon a document whose aliases expand past the budget."""


def _compose_with_libyaml(text: str) -> tuple[Node | None] | None:
    """Compose a well-formed document with libyaml (about 10x faster: a 10,000-entry manifest in a fraction of a
    second instead of seconds). Returns None whenever anything is off (no libyaml, characters the pure-Python
    reader refuses, nesting past MAX_DEPTH, several documents, any YAML error), so that the pure-Python path
    below reads the file again and words the problem exactly as it always does. libyaml only ever decides
    the valid case; every message comes from one place."""
    if not getattr(yaml, "__with_libyaml__", False) or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    try:
        # Events first: iterating them uses no recursion, so deep nesting is caught before composing.
        depth = documents = 0
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return None
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    return None
        loader = yaml.CSafeLoader(text)
        try:
            return (loader.get_single_node(),)
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


def _compose_with_python(text: str, document: Document) -> tuple[Node | None] | None:
    """The reference path: PyYAML's pure-Python composer with a depth guard. Problems go to ``document``;
    returns None when there is no usable node tree."""
    loader: _DepthLimitedLoader | None = None
    try:
        loader = _DepthLimitedLoader(text)  # the reader already rejects unprintable characters here
        if not loader.check_node():
            return (None,)
        root = loader.get_node()
        if loader.check_node():
            mark = loader.peek_event().start_mark  # type: ignore[no-untyped-call]
            document.issues.append(
                Issue(
                    Location.of(mark),
                    (),
                    "a manifest is a single YAML document, but a second one starts here ('---'); "
                    "put every entry in one document or use several manifest files",
                )
            )
            return None
        return (root,)
    except yaml.MarkedYAMLError as error:
        document.issues.append(_syntax_issue(error))
    except yaml.reader.ReaderError as error:
        document.issues.append(_reader_issue(error, text))
    except yaml.YAMLError as error:  # any other reader/scanner error PyYAML may add: still just a message
        document.issues.append(Issue(None, (), f"invalid YAML: {error}"))
    finally:
        if loader is not None:
            loader.dispose()
    return None


def read_document(text: str) -> Document:
    """Compose ``text`` safely and walk it. Never raises for any input text; problems become issues."""
    document = Document()
    composed = _compose_with_libyaml(text) or _compose_with_python(text, document)
    if composed is None:
        document.complete = False
        return document
    root = composed[0]
    if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL and root.value in ("", "~")):
        document.empty = True
        return document
    walker = _Walker(document)
    try:
        document.value = walker.walk(root, (), depth=0, ancestors=(), via_alias=False)
    except _ExpansionLimitReached:
        document.value = None
        document.complete = False
    return document


def _syntax_issue(error: yaml.MarkedYAMLError) -> Issue:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "syntax error"
    if error.context and error.problem and error.context_mark is not None:
        problem = f"{error.context} at line {error.context_mark.line + 1}, {error.problem}"
    return Issue(Location.of(mark) if mark is not None else None, (), f"invalid YAML: {problem}{_hint(problem)}")


def _hint(problem: str) -> str:
    """PyYAML's wording is exact but terse; the usual causes of its commonest errors, said plainly."""
    if "'\\t'" in problem:
        return "; indent with spaces, not tabs"
    if "block end" in problem or "mapping values are not allowed" in problem or "block mapping" in problem:
        return "; check the indentation here, and quote values that contain ': '"
    return ""


def _reader_issue(error: yaml.reader.ReaderError, text: str) -> Issue:
    # ReaderError carries an offset into the text instead of a mark: turn it into line and column.
    before = text[: error.position]
    line = before.count("\n") + 1
    column = error.position - (before.rfind("\n") + 1) + 1
    character = error.character if isinstance(error.character, str) else chr(error.character)
    return Issue(
        Location(line, column),
        (),
        f"character {character!r} (U+{ord(character):04X}) is not allowed in YAML; "
        "only printable characters, tab and newlines are",
    )


class _Walker:
    """Turns composed nodes into plain values, recording locations and refusing what is not plain data."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.first_visits: set[int] = set()
        self.expanded_nodes = 0
        self.expanded_chars = 0

    def refuse(self, node: Node, path: FieldPath, message: str, *, value_unusable: bool = True) -> None:
        self.document.issues.append(Issue(Location.of(node.start_mark), path, message))
        if value_unusable:
            self.document.reported.add(path)

    def count(self, node: Node, via_alias: bool) -> bool:
        """Charge a node to the alias budget when it is a re-visit; returns whether it is one."""
        if id(node) not in self.first_visits and not via_alias:
            self.first_visits.add(id(node))
            return False
        self.first_visits.add(id(node))
        self.expanded_nodes += 1
        if isinstance(node, ScalarNode):
            self.expanded_chars += len(node.value)
        if self.expanded_nodes > MAX_ALIAS_EXPANSION_NODES or self.expanded_chars > MAX_ALIAS_EXPANSION_CHARS:
            self.document.issues.append(
                Issue(
                    Location.of(node.start_mark),
                    (),
                    f"aliases (*name) expand this document past {MAX_ALIAS_EXPANSION_NODES} values or "
                    f"{MAX_ALIAS_EXPANSION_CHARS // (1024 * 1024)} MiB of text; refusing to read it "
                    "(a guard against 'billion laughs' documents)",
                )
            )
            raise _ExpansionLimitReached
        return True

    def walk(self, node: Node, path: FieldPath, depth: int, ancestors: tuple[int, ...], via_alias: bool) -> YamlValue:
        via_alias = self.count(node, via_alias)
        document = self.document
        document.locations[path] = Location.of(node.start_mark)
        if id(node) in ancestors:
            self.refuse(node, path, "this alias refers to a value that contains it (a recursive alias)")
            return None
        if depth > MAX_DEPTH:  # aliases can stack nested values deeper than the composer saw
            self.refuse(node, path, f"nesting is deeper than {MAX_DEPTH} levels")
            return None

        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self.refuse(node, path, _tag_message(node.tag))
                return None
            inner = (*ancestors, id(node))
            return [
                self.walk(item, (*path, index), depth + 1, inner, via_alias) for index, item in enumerate(node.value)
            ]
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                self.refuse(node, path, _tag_message(node.tag))
                return None
            return self.mapping(node, path, depth, (*ancestors, id(node)), via_alias)
        self.refuse(node, path, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover
        return None  # pragma: no cover

    def scalar(self, node: ScalarNode, path: FieldPath) -> YamlValue:
        tag: str = node.tag
        text: str = node.value
        if tag in _TEXT_TAGS:
            self.document.scalars[path] = Scalar(_TEXT_TAGS[tag], text)
            return text
        if tag == _NULL:
            self.document.scalars[path] = Scalar("null", text)
            return None
        if tag == _BOOL:
            self.document.scalars[path] = Scalar("boolean", text)
            # An explicit `!!bool` on something that is not a boolean word stays text.
            return _BOOL_VALUES.get(text.lower(), text)
        self.refuse(node, path, _tag_message(tag))
        return None

    def mapping(
        self, node: MappingNode, path: FieldPath, depth: int, ancestors: tuple[int, ...], via_alias: bool
    ) -> YamlValue:
        document = self.document
        result: dict[str, YamlValue] = {}
        first_seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            self.count(key_node, via_alias)
            key_location = Location.of(key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                self.refuse(key_node, path, "a key must be plain text, not a list or mapping", value_unusable=False)
                continue
            if key_node.tag == _MERGE:
                # The merged keys are missing from this mapping now: stay quiet about them.
                self.refuse(
                    key_node,
                    path,
                    "merge keys ('<<') are not supported; put shared values under 'defaults' instead",
                )
                continue
            if key_node.tag not in _TEXT_TAGS and key_node.tag not in (_NULL, _BOOL):
                self.refuse(key_node, path, _tag_message(key_node.tag), value_unusable=False)
                continue
            key = key_node.value  # the key as written: `yes:` is the key "yes", not True
            child = (*path, key)
            if key in first_seen:
                # PyYAML would silently keep the last value; a manifest with two `sha:` is a mistake.
                document.issues.append(
                    Issue(
                        key_location,
                        child,
                        f"duplicate key {key!r} (first at line {first_seen[key].line}); "
                        "YAML keeps only one of them, so remove the other",
                    )
                )
                document.reported.add(child)
                continue
            first_seen[key] = key_location
            document.key_locations[child] = key_location
            result[key] = self.walk(value_node, child, depth + 1, ancestors, via_alias)
        return result


def _tag_message(tag: str) -> str:
    return (
        f"YAML tag {short_tag(tag)!r} is not allowed: a manifest holds plain text, lists and mappings "
        "only, and tags are never constructed or executed"
    )
