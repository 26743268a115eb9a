"""Reading manifests the way kubectl reads them.

Pure: text in, documents (or one `ManifestError` naming file, document and field) out.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mikro.api import bodies, resources, validation
from mikro.errors import ManifestError

# A manifest larger than this is refused before it is parsed: etcd itself caps an object
# at 1.5 MiB, so a file of many megabytes is a mistake, and parsing it would cost memory.
MAX_FILE_BYTES = 8 * 1024 * 1024
# Aliases make a small text expand into a huge tree ("billion laughs"); count the expanded
# nodes and give up past this many (the API server's bound for YAML bodies).
MAX_EXPANDED_NODES = bodies.MAX_EXPANDED_NODES
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


_STR = "tag:yaml.org,2002:str"


class _NoDuplicates:
    """Refuses a key given twice in one mapping, as kubectl's YAML reader does (the second would
    silently replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # The common case, decided without building any key twice: every key a string scalar
        # (its text is the key) and no text given twice.
        texts = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.tag == _STR]
        if len(texts) == len(node.value) and len(set(texts)) == len(texts):
            return super().construct_mapping(node, deep=deep)  # type: ignore[misc]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class words that error
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKey(key, line, first)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _Loader(_NoDuplicates, yaml.SafeLoader):
    """SafeLoader without the timestamp resolver (Kubernetes keeps dates as strings), refusing
    duplicate keys. Its error messages are the ones a user is shown."""


# The same loader on libyaml's parser when PyYAML was built with it: a file of 1000 documents
# took 10.5 s of the 22 s `mikro apply` spent (pyinstrument: yaml's pure-Python scanner and
# parser), about 1 s with it. A document it refuses is parsed again by `_Loader`, whose
# wording (and line) the user then sees.
_FastLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(_NoDuplicates, yaml.CSafeLoader):  # type: ignore[name-defined,misc]
        pass

    _FastLoader = _CLoader


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"mapping key {json.dumps(key) if isinstance(key, str) else key} already defined")
        self.key, self.line, self.first = key, line, first


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
if _FastLoader is not None:
    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def _load(chunk: str) -> Any:
    """One document, by libyaml when it is there; a refused one again by the pure-Python
    loader, for its error."""
    if _FastLoader is not None:
        try:
            return yaml.load(chunk, Loader=_FastLoader)  # noqa: S506 - a SafeLoader on libyaml
        except yaml.YAMLError:
            pass
    return yaml.load(chunk, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


@dataclass
class Document:
    source: str  # file name, or "-" for standard input
    index: int  # 1-based position in its file, counting non-empty documents
    line: int  # 1-based line where the document starts
    obj: dict[str, Any]

    @property
    def where(self) -> str:
        kind = self.obj.get("kind", "?")
        name = (self.obj.get("metadata") or {}).get("name") or "?"
        return f'{self.source}: document {self.index} ({kind} "{name}")'


def split_documents(text: str) -> list[tuple[int, str]]:
    """Split on kubectl's separator: a line starting with `---` followed by nothing but
    white space (any kind, non-breaking spaces included) or a comment.

    Returns (first line number, text) pairs, empty documents included.
    """
    chunks: list[tuple[int, str]] = []
    current: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.startswith("---"):
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                # kubectl refuses it too: `---apiVersion: v1` would otherwise glue two
                # documents into one and lose the first.
                before = sum(1 for _, chunk in chunks if _has_content(chunk)) + _has_content("".join(current))
                documents = before + 1  # the document the glued line meant to start
                raise ManifestError(f"document {documents}: line {number}: invalid Yaml document separator: {rest}")
            chunks.append((start, "".join(current)))
            current = []
            start = number + 1
            continue
        current.append(line)
    chunks.append((start, "".join(current)))
    return chunks


def _has_content(chunk: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in chunk.splitlines())


def _expanded_size(obj: Any, limit: int) -> int:
    """Count nodes as if aliases were copied, stopping once past `limit`."""
    count = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def parse_text(text: str, source: str) -> list[Document]:
    documents: list[Document] = []
    index = 0
    try:
        chunks = split_documents(text)
    except ManifestError as exc:
        raise ManifestError(f"{source}: {exc}") from None
    for start, chunk in chunks:
        try:
            obj = _load(chunk)
        except DuplicateKey as exc:
            raise ManifestError(
                f"{source}: document {index + 1}: line {start + exc.line - 1}: {exc} at line {start + exc.first - 1}"
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = start + mark.line if mark is not None else start
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ManifestError(
                f"{source}: document {index + 1}: YAML syntax error at line {line}: {problem}"
            ) from None
        if obj is None:
            continue
        index += 1
        if _expanded_size(obj, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
            raise ManifestError(
                f"{source}: document {index}: refused: expands to more than {MAX_EXPANDED_NODES} nodes (YAML aliases?)"
            )
        if not isinstance(obj, dict):
            raise ManifestError(
                f"{source}: document {index} (line {start}): expected a mapping with "
                f"apiVersion and kind, got a {type(obj).__name__}"
            )
        if obj.get("kind") == "List" and obj.get("apiVersion") == "v1":
            items = obj.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(f"{source}: document {index} (List): items: must be a list")
            for item in items:
                if not isinstance(item, dict):
                    raise ManifestError(f"{source}: document {index} (List): every item must be a mapping")
                documents.append(Document(source, index, start, item))
            continue
        documents.append(Document(source, index, start, obj))
    return documents


def read_source(path: str) -> str:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        p = Path(path)
        if not p.exists():
            raise ManifestError(f'the path "{path}" does not exist')
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ManifestError(f"{path}: refused: {size} bytes is more than the {MAX_FILE_BYTES} a manifest may have")
        with p.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(f"{path}: refused: more than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def expand_paths(paths: Iterable[str], recursive: bool) -> list[str]:
    """Files named by -f: a file, `-`, or a directory's manifests (recursively with -R)."""
    out: list[str] = []
    for path in paths:
        if path == "-":
            out.append(path)
            continue
        p = Path(path)
        if not p.exists():
            raise ManifestError(f'the path "{path}" does not exist')
        if p.is_dir():
            walker = sorted(p.rglob("*") if recursive else p.iterdir())
            out.extend(str(f) for f in walker if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
        else:
            out.append(path)
    return out


def load(
    paths: Iterable[str],
    recursive: bool = False,
    default_namespace: str = "default",
    learn: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[Document]:
    """Read, parse and validate every document; raise on the first problem, before anything
    is sent anywhere, so that one bad document means nothing is applied. `learn` is shown the
    objects first, to make custom kinds known (mikro.cli.discovery)."""
    documents: list[Document] = []
    for path in expand_paths(paths, recursive):
        documents.extend(parse_text(read_source(path), path))
    if learn is not None:
        learn([d.obj for d in documents])
    seen: dict[tuple[str, str, str], Document] = {}
    for doc in documents:
        check_document(doc)
        res = resources.kind_of(doc.obj["kind"])
        assert res is not None
        meta = doc.obj["metadata"]
        ns = meta.get("namespace") or (default_namespace if res.namespaced else "")
        key = (doc.obj["kind"], ns, meta.get("name", ""))
        if key[2] and key in seen:
            raise ManifestError(
                f'{doc.where}: the same {doc.obj["kind"]} "{key[2]}" is also '
                f"document {seen[key].index} of {seen[key].source}"
            )
        seen[key] = doc
    return documents


def check_document(doc: Document) -> None:
    obj = doc.obj
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    head = f"{doc.source}: document {doc.index}"
    if not api_version or not isinstance(api_version, str):
        raise ManifestError(f"{head}: apiVersion: Required value")
    if not kind or not isinstance(kind, str):
        raise ManifestError(f"{head}: kind: Required value")
    res = resources.kind_of(kind)
    if res is None:
        raise ManifestError(
            f'{head}: no matches for kind "{kind}" in version "{api_version}" '
            "(mikro knows: " + ", ".join(sorted(resources.BY_KIND)) + ")"
        )
    if resources.for_api_version(api_version, kind) is None:
        expected = res.api_version
        raise ManifestError(
            f'{head}: no matches for kind "{kind}" in version "{api_version}" (use apiVersion: {expected})'
        )
    errors = validation.validate(obj)
    custom = resources.for_api_version(api_version, kind)
    if custom is not None and custom.custom is not None and custom.custom.schema:
        from mikro.api import crds

        errors += crds.validate(crds.admit(copy.deepcopy(obj), custom), custom)
    if errors:
        raise ManifestError(f"{doc.where}: " + "; ".join(str(e) for e in errors))
