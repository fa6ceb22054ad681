"""The Chromium peer's page as files (no browser, no root): its ES modules import each other by relative
paths that exist, every module is reachable from the entry point, and the lab's signaling server serves
all of them over HTTP as JavaScript."""

from __future__ import annotations

import re

import httpx

from netsim.peers.browser import PAGE, page_directory
from netsim.services.signaling import create_app
from netsim.services.signaling_server import serve_static
from tests.services.signaling_harness import SECRET, serve

IMPORT = re.compile(r'^import .* from "\./([\w.]+)";$', re.M)


def _imports(name: str) -> list[str]:
    return IMPORT.findall((page_directory() / name).read_text())


def test_every_module_is_reachable_from_the_entry_point_and_every_import_exists() -> None:
    page = page_directory()
    html = (page / PAGE).read_text()
    entry = re.findall(r'<script type="module" src="([\w.]+)"></script>', html)
    assert entry == ["main.js"]
    seen, todo = set(), list(entry)
    while todo:
        name = todo.pop()
        assert (page / name).is_file(), f"{name} is imported but missing"
        if name not in seen:
            seen.add(name)
            todo.extend(_imports(name))
    assert seen == {p.name for p in page.glob("*.js")}  # no module left out


def test_the_signaling_server_serves_the_page_as_modules() -> None:
    app = create_app(SECRET)
    serve_static(app, page_directory())
    with serve(app) as srv:
        for path in page_directory().iterdir():
            got = httpx.get(f"{srv.http}/app/{path.name}", timeout=10)
            assert got.status_code == 200 and got.content == path.read_bytes(), path.name
            if path.suffix == ".js":
                assert "javascript" in got.headers["content-type"], got.headers["content-type"]
