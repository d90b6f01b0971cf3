"""The icon library: built-in SVGs shipped in the package, and admin uploads stored on disk.

Uploads are typed by their bytes, never by the client's content-type or file name, and an SVG is only accepted
when it cannot run script or fetch anything once a browser opens it directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidInput, LaurelError, NotFound
from app.icons.schemas import IconOut, IconUploaded
from app.kit.i18n import preferences
from app.kit.pagination import Page, PageParams
from app.models import Icon

CHUNK_BYTES = 64 * 1024
SVG_TYPE = "image/svg+xml"
UPLOAD_PREFIX = "upload:"
Lang = Literal["en", "zh-CN"]

_NAME_OK = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# "<id>.<ext>" as listed, or the bare id (what a badge's `icon` holds after an upload).
_UPLOAD_FILENAME = re.compile(r"^(?P<id>[0-9a-f]{32})(?:\.(?:png|jpg|webp|svg))?$")


class IconNotFound(NotFound):
    code = "icon_not_found"


class UnsupportedMediaType(LaurelError):
    status = 415
    code = "unsupported_media_type"


class IconTooLarge(LaurelError):
    status = 413
    code = "icon_too_large"


class UnsafeSvg(InvalidInput):
    code = "unsafe_svg"


class Readable(Protocol):
    """What an upload is read through (FastAPI's UploadFile satisfies it)."""

    async def read(self, size: int = -1) -> bytes: ...


# --- built-in library -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltinIcon:
    name: str
    alt: dict[str, str]
    content: bytes
    etag: str


@lru_cache
def catalog() -> dict[str, BuiltinIcon]:
    """The shipped icons in catalog order, read once; only names listed here can ever be served."""
    folder = resources.files("app").joinpath("static", "icons")
    entries = json.loads(folder.joinpath("catalog.json").read_text(encoding="utf-8"))
    icons: dict[str, BuiltinIcon] = {}
    for entry in entries:
        name = entry["name"]
        if not _NAME_OK.match(name) or name in icons:
            raise ValueError(f"bad or duplicate icon name in catalog.json: {name!r}")
        alt = {"en": entry["alt"]["en"], "zh-CN": entry["alt"]["zh-CN"]}
        content = folder.joinpath(f"{name}.svg").read_bytes()
        etag = '"' + hashlib.sha256(content).hexdigest()[:20] + '"'
        icons[name] = BuiltinIcon(name=name, alt=alt, content=content, etag=etag)
    return icons


def builtin(name: str) -> BuiltinIcon:
    icon = catalog().get(name)
    if icon is None:
        raise IconNotFound(f"No built-in icon named {name!r}", details={"name": name})
    return icon


def pick_language(accept_language: str | None) -> Lang:
    """The alt-text language for an Accept-Language header: any Chinese tag → zh-CN, otherwise English."""
    for tag in preferences(accept_language):
        primary = tag.split("-", 1)[0]
        if primary == "zh":
            return "zh-CN"
        if primary in ("en", "*"):
            return "en"
    return "en"


def _absolute(settings: Settings, path: str) -> str:
    return settings.public_base_url.rstrip("/") + path


def builtin_url(settings: Settings, name: str) -> str:
    return _absolute(settings, f"/v1/icons/{name}.svg")


def upload_url(settings: Settings, filename: str) -> str:
    return _absolute(settings, f"/v1/icons/uploads/{filename}")


def _builtin_out(settings: Settings, icon: BuiltinIcon, lang: Lang) -> IconOut:
    return IconOut(
        name=icon.name,
        url=builtin_url(settings, icon.name),
        alt=icon.alt[lang],
        source="builtin",
        content_type=SVG_TYPE,
    )


def _upload_out(settings: Settings, icon: Icon) -> IconOut:
    return IconOut(
        name=UPLOAD_PREFIX + icon.id,
        url=upload_url(settings, icon.filename),
        alt=icon.alt,
        source="upload",
        content_type=icon.content_type,
    )


# --- queries (small enough not to need their own repository module) ----------------------------------------------


async def _count_uploads(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Icon))).scalar_one())


async def _uploads_newest_first(session: AsyncSession, limit: int, offset: int) -> Sequence[Icon]:
    query = select(Icon).order_by(Icon.created_at.desc(), Icon.id.desc()).limit(limit).offset(offset)
    rows = await session.execute(query)
    return rows.scalars().all()


async def _insert(session: AsyncSession, icon: Icon) -> None:
    session.add(icon)
    await session.flush()


# --- listing, lookup, serving ------------------------------------------------------------------------------------


async def list_icons(session: AsyncSession, settings: Settings, lang: Lang, page: PageParams) -> Page[IconOut]:
    """Built-in icons (catalog order) then uploads (newest first), paged as one list."""
    builtins = list(catalog().values())
    items = [_builtin_out(settings, icon, lang) for icon in builtins[page.offset : page.offset + page.limit]]
    room = page.limit - len(items)
    if room > 0:
        uploads = await _uploads_newest_first(session, room, max(0, page.offset - len(builtins)))
        items += [_upload_out(settings, icon) for icon in uploads]
    total = len(builtins) + await _count_uploads(session)
    return Page[IconOut](items=items, total=total, limit=page.limit, offset=page.offset)


async def uploaded_file(session: AsyncSession, settings: Settings, filename: str) -> tuple[Path, str]:
    """The file on disk and its stored content type; only names the server itself generated are looked up."""
    match = _UPLOAD_FILENAME.match(filename)
    icon = await session.get(Icon, match["id"]) if match else None
    if icon is None or filename not in (icon.filename, icon.id):
        raise IconNotFound("No uploaded icon with that file name", details={"filename": filename})
    path = Path(settings.icon_upload_dir) / icon.filename
    if not await asyncio.to_thread(path.is_file):
        raise IconNotFound("The uploaded icon's file is missing", details={"filename": filename})
    return path, icon.content_type


async def upload_content_type(session: AsyncSession, icon_id: str) -> str | None:
    """The content type an uploaded icon was stored with (its bytes' type); None for an unknown id."""
    icon = await session.get(Icon, icon_id)
    return icon.content_type if icon is not None else None


# --- upload --------------------------------------------------------------------------------------------------------


MAX_ALT = 200
FALLBACK_ALT = "Uploaded icon"


def alt_from_filename(filename: str | None) -> str:
    """Alt text for an upload sent without any: its file name in words ("store-explorer.png" → "store explorer")."""
    base = re.split(r"[/\\]", filename or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    words = " ".join(re.sub(r"[-_.+~]+", " ", stem).split())
    return words[:MAX_ALT].strip() or FALLBACK_ALT


async def upload(
    session: AsyncSession, settings: Settings, src: Readable, alt: str | None, filename: str | None = None
) -> IconUploaded:
    """Check, store and register one uploaded image; the file is removed again if the transaction does not commit.

    Every icon has alt text: when none (or only blanks) is sent, it is made from the file name."""
    alt = (alt or "").strip() or alt_from_filename(filename)
    data = await _read_capped(src, settings.icon_max_bytes)
    content_type, ext = sniff(data)
    if content_type == SVG_TYPE:
        check_svg(data)
    icon_id = uuid.uuid4().hex
    filename = f"{icon_id}.{ext}"
    path = Path(settings.icon_upload_dir) / filename
    await asyncio.to_thread(_write_atomically, path, data)
    _remove_unless_committed(session, path)
    icon = Icon(id=icon_id, filename=filename, content_type=content_type, size=len(data), alt=alt)
    try:
        await _insert(session, icon)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return IconUploaded(
        id=icon_id,
        name=UPLOAD_PREFIX + icon_id,
        url=upload_url(settings, filename),
        alt=alt,
        content_type=content_type,
        size=len(data),
    )


async def _read_capped(src: Readable, limit: int) -> bytes:
    """Read in chunks and stop as soon as the limit is passed, so an oversized upload is never held whole."""
    too_large = IconTooLarge(f"Icons may be at most {limit} bytes", details={"max_bytes": limit})
    declared = getattr(src, "size", None)
    if isinstance(declared, int) and declared > limit:
        raise too_large
    buf = bytearray()
    while chunk := await src.read(CHUNK_BYTES):
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _remove_unless_committed(session: AsyncSession, path: Path) -> None:
    """Delete the stored file if this session's transaction rolls back (the request failed after the insert)."""
    state = {"committed": False}

    def on_commit(_: Any) -> None:
        state["committed"] = True

    def on_rollback(_: Any) -> None:
        if not state["committed"]:
            path.unlink(missing_ok=True)

    event.listen(session.sync_session, "after_commit", on_commit)
    event.listen(session.sync_session, "after_rollback", on_rollback)


# --- typing and SVG safety ----------------------------------------------------------------------------------------

_SVG_PROLOG = re.compile(
    r"\A\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)\s*)*<(?:[\w.-]+:)?svg[\s/>]",
    re.DOTALL | re.IGNORECASE,
)
_FORBIDDEN_ELEMENTS = {"script", "foreignobject", "iframe", "embed", "object", "handler", "listener"}
_FORBIDDEN_TAG_TEXT = re.compile(r"<\s*(?:[\w.-]+:)?(?:" + "|".join(_FORBIDDEN_ELEMENTS) + r")\b", re.IGNORECASE)
_EVENT_ATTR_TEXT = re.compile(r"[\s\"'/](?:[\w.-]+:)?on[a-z]+\s*=", re.IGNORECASE)
_SAFE_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpeg|gif|webp);base64,", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
_BAD_SCHEMES = ("javascript:", "vbscript:", "data:text")


def sniff(data: bytes) -> tuple[str, str]:
    """(content type, file extension) from the file's leading bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    text = _utf8(data)
    if text is not None and _SVG_PROLOG.match(text):
        return SVG_TYPE, "svg"
    raise UnsupportedMediaType(
        "Icons must be PNG, JPEG, WebP or SVG images", details={"accepted": ["png", "jpeg", "webp", "svg"]}
    )


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _unsafe(reason: str) -> UnsafeSvg:
    return UnsafeSvg(f"SVG refused: {reason}", details={"reason": reason})


def _flat(value: str) -> str:
    """How a browser reads a URL-ish value: entities decoded, whitespace and control characters ignored."""
    return re.sub(r"[\s\x00-\x1f]+", "", html.unescape(value)).lower()


def check_svg(data: bytes) -> None:
    """Refuse an SVG that could run script or load anything external when opened on its own.

    Two passes: a text scan (also over the entity-decoded text, so `&#106;avascript:` is caught), then a parse of
    the element tree for event attributes, hrefs and CSS urls. A DOCTYPE internal subset is refused outright, so
    entities cannot smuggle markup past either pass and the parser never expands user-defined entities.
    """
    text = _utf8(data)
    if text is None:
        raise UnsupportedMediaType("SVG must be UTF-8 text")
    for candidate in (text, html.unescape(text)):
        if _FORBIDDEN_TAG_TEXT.search(candidate):
            raise _unsafe("script-capable elements (script, foreignObject, iframe, embed, object) are not allowed")
        if _EVENT_ATTR_TEXT.search(candidate):
            raise _unsafe("event handler attributes (on*=) are not allowed")
    flat = _flat(text)
    for scheme in _BAD_SCHEMES:
        if scheme in flat:
            raise _unsafe(f"'{scheme}' URLs are not allowed")
    if re.search(r"<!ENTITY|<!DOCTYPE[^>]*\[", text, re.IGNORECASE):
        raise _unsafe("DOCTYPE internal subsets and entity declarations are not allowed")
    if re.search(r"<\?xml-stylesheet", text, re.IGNORECASE) or "@import" in flat:
        raise _unsafe("external stylesheets are not allowed")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidInput("SVG is not well-formed XML", code="invalid_svg", details={"error": str(exc)}) from exc
    if _local(root.tag) != "svg":
        raise UnsupportedMediaType("The document's root element is not <svg>")
    for element in root.iter():
        _check_element(element)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def _check_element(element: ET.Element) -> None:
    tag = _local(element.tag)
    if tag in _FORBIDDEN_ELEMENTS:
        raise _unsafe(f"<{tag}> elements are not allowed")
    for raw_name, value in element.attrib.items():
        name = _local(raw_name)
        if name.startswith("on"):
            raise _unsafe(f"event handler attribute '{name}' is not allowed")
        if name == "href" and not (value.strip().startswith("#") or _SAFE_DATA_IMAGE.match(value.strip())):
            raise _unsafe("external references are not allowed (only '#fragment' and inline raster data)")
        if name == "attributename" and _local(value.strip()) == "href":
            raise _unsafe("animating href is not allowed")
        _check_css(value)  # style="…" and presentation attributes such as fill="url(…)"
    if tag == "style":
        _check_css("".join(element.itertext()))


_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\r\n\f]?|(.))", re.DOTALL)


def _css_unescape(css: str) -> str:
    """How a browser reads CSS escapes: `u\\72l(` is `url(`, `\\@import` is `@import`."""
    def one(m: re.Match[str]) -> str:
        if m[1] is None:
            return m[2]
        code = int(m[1], 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
    return _CSS_ESCAPE.sub(one, css)


# image-set() (and its -webkit- form) takes bare strings as URLs: image-set("https://…" 1x).
_IMAGE_SET = re.compile(r"image-set\(", re.IGNORECASE)
_CSS_STRING = re.compile(r"\"\s*([^\"]*)\"|'\s*([^']*)'")


def _image_set_arguments(css: str) -> list[str]:
    """The whole argument of each image-set(…), up to its matching bracket (it may hold url(…) entries)."""
    found = []
    for m in _IMAGE_SET.finditer(css):
        depth, end = 1, m.end()
        while end < len(css) and depth:
            depth += {"(": 1, ")": -1}.get(css[end], 0)
            end += 1
        found.append(css[m.end():end])
    return found


def _check_css(css: str) -> None:
    for candidate in {css, _css_unescape(css)}:
        if "@import" in candidate.lower():
            raise _unsafe("external stylesheets are not allowed")
        targets = _CSS_URL.findall(candidate)
        for inside in _image_set_arguments(candidate):
            targets += [double or single for double, single in _CSS_STRING.findall(inside)]
        for target in targets:
            if not (target.startswith("#") or _SAFE_DATA_IMAGE.match(target)):
                raise _unsafe("external url() references in styles are not allowed")
