"""The page's files as they are served (no browser needed): small, flat, no inline script
or style (the policy is ``default-src 'self'``), data never inserted as markup, and every
module, import and element the scripts name really there."""

from __future__ import annotations

import re

from tests.conftest import ROOT

STATIC = ROOT / "functions" / "page" / "static"
SERVED = {".html", ".js", ".css", ".svg", ".png"}


def scripts() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(STATIC.glob("*.js"))}


def test_the_page_is_small_and_flat():
    files = list(STATIC.iterdir())
    assert all(path.is_file() and path.suffix in SERVED for path in files), files
    total = sum(path.stat().st_size for path in files)
    assert total < 200 * 1024, f"{total} bytes"


def test_index_loads_only_its_own_files_and_has_nothing_inline():
    html = (STATIC / "index.html").read_text()
    assert '<link rel="stylesheet" href="/assets/style.css">' in html
    assert '<script type="module" src="/assets/app.js"></script>' in html
    assert '<link rel="icon" href="/assets/icon.svg"' in html
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/assets/app.js">']
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    for reference in re.findall(r'(?:src|href)="(/[^"]*)"', html):
        assert reference.startswith("/assets/"), reference
        assert (STATIC / reference.removeprefix("/assets/")).is_file(), reference


def test_scripts_never_insert_markup_or_inline_style():
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"\.style\.|setAttribute\(\s*['\"]style|\.cssText"
    )
    for name, text in scripts().items():
        assert not forbidden.findall(text), (name, forbidden.findall(text))


def test_every_import_and_element_named_exists():
    html = (STATIC / "index.html").read_text()
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    for name, text in scripts().items():
        for module in re.findall(r"from '\./([^']+)'", text):
            assert (STATIC / module).is_file(), (name, module)
        for element in re.findall(r"\$\('#([\w-]+)'", text):
            assert element in ids, (name, element)
