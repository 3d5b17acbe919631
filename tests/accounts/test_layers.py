"""accounts sits below every app but core and jobs: it never imports one above it."""

import ast
from pathlib import Path

from django.urls import resolve, reverse

import accounts

ABOVE = {"corpora", "generation", "annotation", "critic", "distillation"}


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_accounts_imports_no_app_above_it():
    root = Path(accounts.__file__).parent
    found = {
        str(path.relative_to(root)): sorted(_imported(path) & ABOVE)
        for path in root.rglob("*.py")
        if _imported(path) & ABOVE
    }
    assert found == {}


def test_the_home_page_keeps_its_path_and_name():
    assert reverse("home") == "/"
    assert resolve("/").url_name == "home"
    assert (reverse("login"), reverse("logout")) == ("/login/", "/logout/")
