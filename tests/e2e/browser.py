"""Open a page as a person would: headless Chromium (Debian's ``chromium``), a screenshot, and
the DOM after the page's scripts ran, read back with the standard library.

Chromium is required, never optional: ``.ci/run`` installs it, and a test that needs it fails
when it is missing (a skipped browser test would hide a broken report). Its flags keep it off
the network and out of the user's profile (``/work/shared/GUIDE.md``, pitfalls).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
WINDOW = (1400, 2000)


def chromium() -> str:
    """The Chromium binary; the calling test fails when there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium is not installed (`.ci/run` installs it: apt-get install chromium)")


def _run(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="custsync-chromium-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


def screenshot(url: str, png: Path) -> Path:
    """A ``WINDOW``-sized screenshot of ``url`` once its scripts ran."""
    width, height = WINDOW
    _run(url, f"--window-size={width},{height}", "--virtual-time-budget=5000",
         f"--screenshot={png}")  # fmt: skip
    assert png.is_file(), f"chromium wrote no screenshot of {url}"
    return png


def dump_dom(url: str) -> Element:
    """The document of ``url`` after its scripts ran, parsed."""
    done = _run(url, "--virtual-time-budget=5000", "--dump-dom")
    return parse(done.stdout.decode("utf-8"))


# --- PNG -------------------------------------------------------------------------------


def png_distinct_rows(png: Path) -> tuple[int, int]:
    """``(distinct, height)``: how many different scanlines an 8-bit, non-interlaced PNG has,
    of how many. A blank page's rows are all one (the same filtered bytes); a rendered
    report's differ by hundreds. Counted on the filtered rows the PNG stores: decoding every
    pixel in Python would take seconds, and equal filtered rows mean equal pixel rows
    whenever the rows above them are equal too."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0, header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    raw, stride = zlib.decompress(bytes(idat)), width * channels + 1
    assert len(raw) == stride * height, "truncated PNG"
    return len({raw[y * stride : (y + 1) * stride] for y in range(height)}), height


# --- DOM -------------------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}  # fmt: skip


@dataclass
class Element:
    """An element of the parsed document."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        """The text inside, as ``textContent`` gives it."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> list[Element]:
        """This element and every element inside it, in document order."""
        found = [self]
        for child in self.children:
            if isinstance(child, Element):
                found += child.iter()
        return found

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [e for e in self.iter()[1:]
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)]  # fmt: skip

    def by_id(self, element_id: str) -> Element:
        for e in self.iter():
            if e.attrs.get("id") == element_id:
                return e
        raise AssertionError(f"no element #{element_id}")

    def rows(self) -> list[list[str]]:
        """The text of each cell of each row inside (a tbody or table)."""
        return [[td.text() for td in tr.find_all("td")] for tr in self.find_all("tr")]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    """A document parsed into :class:`Element` s (enough for tests, not a full HTML5 tree)."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
