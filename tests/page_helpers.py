"""Reading the rendered status page back: per site article, its heading, state, uptime
figures and bar tooltips; and every tag and attribute (to prove nothing external loads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Article:
    heading: str = ""
    state: str = ""
    uptime: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class PageReader(HTMLParser):
    """Collects the site articles, every start tag with its attributes, and all text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.articles: list[Article] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self._classes: list[str] = []
        self._article: Article | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._stack.append(tag)
        self._classes.append(attributes.get("class") or "")
        if tag == "article":
            self._article = Article()
            self.articles.append(self._article)
        if self._article is not None and "aria-label" in attributes:
            self._article.labels.append(attributes["aria-label"] or "")

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            self._classes.pop()
            if self._stack.pop() == tag:
                break
        if tag == "article":
            self._article = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        article = self._article
        if article is None or not self._stack:
            return
        article.text.append(data)
        current = self._stack[-1]
        if current == "h3":
            article.heading += data
        elif current == "dd":
            article.uptime.append(data)
        elif current == "title":
            article.titles.append(data)
        elif any(c.startswith("state ") for c in self._classes):
            article.state += data


def read_page(document: str) -> PageReader:
    reader = PageReader()
    reader.feed(document)
    reader.close()
    return reader


def percent(value: float | None) -> str:
    """The page's way of showing an uptime (the test's own copy of the rule)."""
    if value is None:
        return "no data"
    if value >= 100.0:
        return "100%"
    return f"{min(value, 99.99):.2f}%"
