"""The status page of the local stack in a real browser: headless Chromium loads
``/status/`` while the pipeline runs, at phone and desktop widths. Nothing may be fetched
from anywhere but the stack's own server, and the DOM holds each site's name and state."""

from __future__ import annotations

import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.browser import RecordingProxy, dump_dom, png_size, screenshot
from tests.e2e.conftest import put_sites, wait_rows
from tests.page_helpers import read_page
from webchecker.local.stack import LocalStack

SITES = {"sp-healthy": "/healthy", "sp-failing": "/failing", "sp-wrong": "/wrong-body"}
STATES = {"sp-healthy": "Up", "sp-failing": "Down", "sp-wrong": "Down"}


def test_local_status_page_in_headless_chromium(stack: LocalStack, tmp_path: Path) -> None:
    put_sites(
        stack,
        [
            {"id": site, "url": stack.demo.url(path), "regex": "healthy", "timeout": 5}
            for site, path in SITES.items()
        ],
    )
    for _ in range(2):  # two checks each: the default thresholds move the state
        stack.tick()
    wait_rows(stack, list(SITES), 2 * len(SITES))
    assert stack.status_site.render()
    url = stack.status_site.url

    with urllib.request.urlopen(url, timeout=10) as response:  # the stack serves it itself
        assert response.headers["Content-Type"].startswith("text/html")
    with RecordingProxy() as proxy:
        dom = dump_dom(proxy, url)
        phone = screenshot(proxy, url, tmp_path / "phone.png", width=390, height=844)
        desktop = screenshot(proxy, url, tmp_path / "desktop.png", width=1280, height=1600)

    assert proxy.page_requests == []  # the page asked for nothing beyond loopback
    assert png_size(phone) == (390, 844)
    assert png_size(desktop) == (1280, 1600)
    shown = {article.heading: article.state for article in read_page(dom).articles}
    for site, state in STATES.items():
        assert state in shown[site], (site, shown.get(site))
    assert "<script" not in dom


def test_the_proxy_catches_a_page_that_loads_from_elsewhere(tmp_path: Path) -> None:
    """The check above can fail: a page with an external image, stylesheet and font is caught
    (over http with its Referer, and over https by its host)."""
    (tmp_path / "index.html").write_text(
        "<!doctype html><title>leaky</title>"
        '<link rel="stylesheet" href="https://fonts.example.test/css">'
        '<img src="http://images.example.test/x.png" alt="">'
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with RecordingProxy() as proxy:
            dump_dom(proxy, f"http://127.0.0.1:{server.server_address[1]}/index.html")
    finally:
        server.shutdown()
        server.server_close()

    hosts = " ".join(proxy.page_requests)
    assert "images.example.test" in hosts
    assert "fonts.example.test" in hosts
