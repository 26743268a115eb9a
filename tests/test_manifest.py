"""Reading manifests as kubectl does: separators, empty documents, lists, and bad input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mikro.cli import manifest

CORPUS = Path(__file__).resolve().parent / "corpus"  # a copy of shared/corpus, see its SOURCES.md
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: hello-ip:1
"""
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


def write(tmp_path: Path, text: str, name: str = "stack.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_separator_variants_as_kubectl(tmp_path: Path) -> None:
    text = "# leading comment\n---\n" + DEPLOY + "--- \u00a0\n" + SERVICE + "---   # trailing comment\n\n---\n"
    docs = manifest.load([write(tmp_path, text)])
    assert [d.obj["kind"] for d in docs] == ["Deployment", "Service"]
    assert [d.index for d in docs] == [1, 2]


def test_block_scalar_keeps_dashes() -> None:
    docs = manifest.parse_text("a: |\n  ---x\n  kept\n", "x")
    assert docs[0].obj["a"] == "---x\nkept\n"


def test_list_kind_is_expanded(tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"
    )
    docs = manifest.load([write(tmp_path, text)])
    assert [d.obj["metadata"]["name"] for d in docs] == ["a", "b"]


def test_empty_file_has_no_documents(tmp_path: Path) -> None:
    assert manifest.load([write(tmp_path, "\n# nothing\n---\n")]) == []


def test_yaml_error_names_file_document_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, SERVICE + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n")
    with pytest.raises(manifest.ManifestError) as err:
        manifest.load([path])
    message = str(err.value)
    assert path in message and "document 2" in message and "line 15" in message


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(manifest.ManifestError, match="document 1.*expected a mapping"):
        manifest.load([write(tmp_path, "- just\n- a list\n")])


def test_unknown_kind_and_api_version(tmp_path: Path) -> None:
    with pytest.raises(manifest.ManifestError, match='no matches for kind "Deploymnt"'):
        manifest.load([write(tmp_path, DEPLOY.replace("kind: Deployment", "kind: Deploymnt"))])
    with pytest.raises(manifest.ManifestError, match="use apiVersion: apps/v1"):
        manifest.load([write(tmp_path, DEPLOY.replace("apps/v1", "extensions/v1beta1"))])


def test_invalid_and_missing_names(tmp_path: Path) -> None:
    with pytest.raises(manifest.ManifestError, match=r'metadata.name: Invalid value: "Web_1"'):
        manifest.load([write(tmp_path, DEPLOY.replace("name: web\nspec", "name: Web_1\nspec"))])
    with pytest.raises(manifest.ManifestError, match="metadata.name: Required value"):
        manifest.load([write(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")])


def test_one_bad_document_refuses_the_whole_file(tmp_path: Path) -> None:
    bad = DEPLOY.replace("replicas: 2", "replicas: -1")
    with pytest.raises(manifest.ManifestError, match=r'document 2 \(Deployment "web"\): spec.replicas'):
        manifest.load([write(tmp_path, SERVICE + "---\n" + bad)])


def test_duplicate_objects_in_one_apply(tmp_path: Path) -> None:
    with pytest.raises(manifest.ManifestError, match="also document 1"):
        manifest.load([write(tmp_path, SERVICE + "---\n" + SERVICE)])


def test_missing_file() -> None:
    with pytest.raises(manifest.ManifestError, match='the path "/nope.yml" does not exist'):
        manifest.load(["/nope.yml"])


def test_huge_file_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    with path.open("w") as fh:
        fh.write("a: " + "x" * (50 * 1024 * 1024) + "\n")
    started = time.monotonic()
    with pytest.raises(manifest.ManifestError, match="refused"):
        manifest.load([str(path)])
    assert time.monotonic() - started < 1.0


def test_alias_bomb_refused(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" + "\n".join("  " + x for x in lines)
    with pytest.raises(manifest.ManifestError, match="expands to more than"):
        manifest.load([write(tmp_path, text)])


def test_directory_recursive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, SERVICE, "svc.yaml")
    write(tmp_path / "sub", DEPLOY, "deploy.yml")
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert len(manifest.load([str(tmp_path)])) == 1
    assert len(manifest.load([str(tmp_path)], recursive=True)) == 2


# Files of the corpus that a real API server refuses too (pathType written `exact`).
REFUSED = {"cs__fanout.yaml": "pathType", "cs__tls.yaml": "pathType"}


def test_corpus_is_there() -> None:
    assert len(list(CORPUS.glob("*.yaml"))) == 39


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    if path.name in REFUSED:
        with pytest.raises(manifest.ManifestError, match=r'Unsupported value: "exact": supported values'):
            manifest.load([str(path)])
    else:
        docs = manifest.load([str(path)])
        assert docs, path.name


def test_a_separator_glued_to_a_line_is_refused() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse_text(text, "two.yml")
    assert str(err.value) == "two.yml: document 2: line 5: invalid Yaml document separator: apiVersion: v1"


def test_a_key_given_twice_is_refused() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\n" + (
        "metadata:\n  name: b\ndata:\n  x: '1'\n  x: '2'\n"
    )
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse_text(text, "dup.yml")
    assert str(err.value) == 'dup.yml: document 2: line 12: mapping key "x" already defined at line 11'


def test_merge_keys_and_comment_separators_still_work() -> None:
    docs = manifest.parse_text("--- # first\na: &base {p: 1}\nb:\n  <<: *base\n  q: 2\n---\n", "ok.yml")
    assert docs[0].obj == {"a": {"p": 1}, "b": {"p": 1, "q": 2}}
