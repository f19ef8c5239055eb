"""Check a built docs site: every internal link leads to a page (and to its anchor), and
every image exists.

    python docs/check_site.py site

Walks every HTML file under SITE_DIR and reads its ``<a href>``, ``<img src>`` and
``<source src>``. An internal link (no scheme, not ``mailto:``) must resolve to a file of
the site (a directory stands for its ``index.html``); a ``#fragment`` must be an ``id``
(or ``<a name>``) of the page it points to. Prints one line per problem and exits with
status 1 if there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    """The links, images and anchors of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if "id" in values:
            self.anchors.add(values["id"])
        if tag == "a":
            if "name" in values:
                self.anchors.add(values["name"])
            if "href" in values:
                self.links.append(values["href"])
        elif tag in ("img", "source") and "src" in values:
            self.images.append(values["src"])


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) or url.startswith(("mailto:", "javascript:", "data:"))


def _resolve(site: Path, page: Path, url: str) -> Path | None:
    """The file ``url`` (relative to ``page``) names, or None if it does not exist."""
    path = unquote(urlsplit(url).path)
    if not path:
        return page
    target = (site / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    target = target.resolve()
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


def check_site(site: str | Path) -> list[str]:
    """The problems of the site built in ``site``, one line each (empty: none)."""
    site = Path(site).resolve()
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site} holds no index.html; build the site first (mkdocs build)")
    parsed: dict[Path, _Page] = {}

    def parse(path: Path) -> _Page:
        if path not in parsed:
            page = _Page()
            page.feed(path.read_text(encoding="utf-8", errors="replace"))
            parsed[path] = page
        return parsed[path]

    problems = []
    for html in sorted(site.rglob("*.html")):
        page = parse(html)
        where = html.relative_to(site)
        for src in page.images:
            if not _is_external(src) and _resolve(site, html, src) is None:
                problems.append(f"{where}: image {src!r} does not exist")
        for href in page.links:
            if _is_external(href):
                continue
            target = _resolve(site, html, href)
            if target is None:
                problems.append(f"{where}: link {href!r} leads to no page")
                continue
            fragment = unquote(urlsplit(href).fragment)
            if fragment and target.suffix == ".html" and fragment not in parse(target).anchors:
                problems.append(f"{where}: link {href!r}: no anchor #{fragment} in {target.relative_to(site)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site_dir", help="the directory mkdocs built the site into")
    args = parser.parse_args(argv)
    try:
        problems = check_site(args.site_dir)
    except FileNotFoundError as error:
        print(f"check_site: error: {error}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    pages = sum(1 for _ in Path(args.site_dir).rglob("*.html"))
    print(f"{pages} pages, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
