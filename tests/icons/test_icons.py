"""The icon library: built-in SVGs, uploads typed by their bytes, SVG safety, serving."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.icons import service as icons_service

ICONS_DIR = Path(icons_service.__file__).resolve().parent.parent / "static" / "icons"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xb7\x00\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = _png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
WEBP = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8L" + struct.pack("<I", 18) + b"\x2f" + b"\x00" * 17
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 64 64">'
    b'<defs><linearGradient id="g"><stop offset="0" stop-color="#fc0"/></linearGradient>'
    b'<circle id="c" cx="32" cy="32" r="20"/></defs>'
    b'<use xlink:href="#c" fill="url(#g)"/><style>circle { fill: url(#g); }'
    b' rect { fill: image-set("data:image/png;base64,AAAA" 1x, \'#g\' 2x); }</style></svg>'
)
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00;"


@pytest.fixture
def upload_dir(app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(app.state.settings, "icon_upload_dir", str(tmp_path / "icons"))
    return tmp_path / "icons"


def _stored(folder: Path) -> list[str]:
    """File names in the upload folder (including partial writes), or [] if it was never created."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def _upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    filename: str = "icon.png",
    content_type: str = "image/png",
    alt: str | None = "A gold star",
) -> httpx.Response:
    data = {"alt": alt} if alt is not None else {}
    files = {"file": (filename, content, content_type)}
    return await client.post("/v1/admin/icons", data=data, files=files, headers=headers)


async def test_catalog_lists_at_least_36_builtin_icons_each_with_alt_and_a_served_svg(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/icons", params={"limit": 200})
    assert r.status_code == 200, r.text
    builtins = [i for i in r.json() if i["source"] == "builtin"]
    names = {i["name"] for i in builtins}
    assert len(builtins) >= 36
    assert {f"level-{n}" for n in range(1, 10)} <= names
    for item in builtins:
        assert item["alt"].strip() and item["content_type"] == "image/svg+xml"
        assert item["url"] == f"/v1/icons/{item['name']}.svg"
        svg = await client.get(item["url"])
        assert svg.status_code == 200, item["name"]
        assert svg.headers["content-type"] == "image/svg+xml"
        assert svg.headers["cache-control"] == "public, max-age=86400"
        assert svg.headers["x-content-type-options"] == "nosniff"
        assert svg.content == (ICONS_DIR / f"{item['name']}.svg").read_bytes()


def test_every_shipped_svg_is_catalogued_small_and_passes_the_upload_safety_check() -> None:
    catalog = icons_service.catalog()
    assert {p.stem for p in ICONS_DIR.glob("*.svg")} == set(catalog)
    for icon in catalog.values():
        assert icon.alt["en"].strip() and icon.alt["zh-CN"].strip(), icon.name
        assert b'viewBox="0 0 64 64"' in icon.content, icon.name
        assert len(icon.content) < 4096, icon.name
        icons_service.check_svg(icon.content)


async def test_alt_text_is_chinese_when_accept_language_prefers_chinese(client: httpx.AsyncClient) -> None:
    zh = await client.get("/v1/icons", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    en = await client.get("/v1/icons", headers={"Accept-Language": "en-US,en;q=0.9,zh-CN;q=0.8"})
    assert zh.headers["vary"] == "Accept-Language"
    trophy_zh = next(i for i in zh.json() if i["name"] == "trophy")
    trophy_en = next(i for i in en.json() if i["name"] == "trophy")
    assert trophy_zh["alt"] == icons_service.catalog()["trophy"].alt["zh-CN"]
    assert trophy_en["alt"] == icons_service.catalog()["trophy"].alt["en"]
    assert trophy_zh["alt"] != trophy_en["alt"]


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("", "en"),
        ("zh", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("ZH-hans-CN", "zh-CN"),
        ("fr-FR, zh;q=0.5", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN;q=0.2, en;q=0.7", "en"),
        ("zh-CN;q=0, fr", "en"),
        ("de", "en"),
    ],
)
def test_pick_language(header: str | None, lang: str) -> None:
    assert icons_service.pick_language(header) == lang


@pytest.mark.sqlite_too
@pytest.mark.parametrize(
    ("content", "filename", "claimed", "content_type", "ext"),
    [
        (PNG, "star.png", "image/png", "image/png", "png"),
        (JPEG, "photo.jpeg", "image/jpeg", "image/jpeg", "jpg"),
        (WEBP, "pic.webp", "image/webp", "image/webp", "webp"),
        (SVG, "logo.svg", "image/svg+xml", "image/svg+xml", "svg"),
        (PNG, "mislabelled.gif", "application/octet-stream", "image/png", "png"),  # typed by bytes, not the label
    ],
)
async def test_upload_is_stored_listed_and_served_back_byte_identical(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    upload_dir: Path,
    content: bytes,
    filename: str,
    claimed: str,
    content_type: str,
    ext: str,
) -> None:
    r = await _upload(client, admin_headers, content, filename, claimed, alt="  Store logo  ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["content_type"] == content_type
    assert body["size"] == len(content)
    assert body["alt"] == "Store logo"
    assert body["name"] == f"upload:{body['id']}"
    assert body["url"] == f"/v1/icons/uploads/{body['id']}.{ext}"
    assert (upload_dir / f"{body['id']}.{ext}").read_bytes() == content

    served = await client.get(body["url"])
    assert served.status_code == 200
    assert served.content == content
    assert served.headers["content-type"] == content_type
    assert served.headers["x-content-type-options"] == "nosniff"
    if ext == "svg":
        assert served.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"

    listed = (await client.get("/v1/icons", params={"limit": 200})).json()
    assert listed[-1] == {
        "name": body["name"],
        "url": body["url"],
        "alt": "Store logo",
        "source": "upload",
        "content_type": content_type,
    }


async def test_uploads_are_listed_after_builtins_newest_first_and_paged_as_one_list(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path
) -> None:
    ids = [(await _upload(client, admin_headers, PNG, alt=f"icon {n}")).json()["id"] for n in range(3)]
    n_builtin = len(icons_service.catalog())
    everything = (await client.get("/v1/icons", params={"limit": 200})).json()
    assert len(everything) == n_builtin + 3
    assert [i["source"] for i in everything] == ["builtin"] * n_builtin + ["upload"] * 3
    assert [i["name"] for i in everything[n_builtin:]] == [f"upload:{i}" for i in reversed(ids)]

    page = (await client.get("/v1/icons", params={"limit": 2, "offset": n_builtin - 1})).json()
    assert [i["name"] for i in page] == [everything[n_builtin - 1]["name"], f"upload:{ids[2]}"]
    page = (await client.get("/v1/icons", params={"limit": 5, "offset": n_builtin + 1})).json()
    assert [i["name"] for i in page] == [f"upload:{ids[1]}", f"upload:{ids[0]}"]


async def test_urls_use_the_public_base_url_when_set(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    upload_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app.state.settings, "public_base_url", "https://cdn.example.com/")
    body = (await _upload(client, admin_headers, PNG)).json()
    assert body["url"] == f"https://cdn.example.com/v1/icons/uploads/{body['id']}.png"
    items = (await client.get("/v1/icons", params={"limit": 200})).json()
    assert items[0]["url"] == f"https://cdn.example.com/v1/icons/{items[0]['name']}.svg"


@pytest.mark.parametrize(
    ("content", "filename", "claimed"),
    [
        (GIF, "anim.gif", "image/gif"),
        (b"just some text, honestly\n", "notes.png", "image/png"),
        (b"<html><body>hi</body></html>", "page.svg", "image/svg+xml"),
        (b"\x00\x01\x02\x03" * 10, "blob.webp", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "sound.webp", "image/webp"),
    ],
)
async def test_other_types_are_refused_with_415(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    upload_dir: Path,
    content: bytes,
    filename: str,
    claimed: str,
) -> None:
    r = await _upload(client, admin_headers, content, filename, claimed)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert _stored(upload_dir) == []


_SVG_OPEN = b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 64 64">'


@pytest.mark.parametrize(
    "inner",
    [
        b"<script>alert(1)</script>",
        b'<SCRIPT type="text/javascript">alert(1)</SCRIPT>',
        b'<s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script>',
        b'<circle r="5" onload="alert(1)"/>',
        b'<circle r="5" ONCLICK = "alert(1)"/>',
        b'<a href="javascript:alert(1)"><circle r="5"/></a>',
        b'<a xlink:href="&#106;avascript:alert(1)"><circle r="5"/></a>',
        b'<a href="java\tscript:alert(1)"><circle r="5"/></a>',
        b'<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>',
        b'<image href="https://tracker.example.com/pixel.png" width="1" height="1"/>',
        b'<image xlink:href="http://evil.example.com/x.svg"/>',
        b'<use href="data:text/html;base64,PHNjcmlwdD4="/>',
        b'<use href="other.svg#icon"/>',
        b"<style>@import url(https://evil.example.com/x.css);</style>",
        b'<rect width="5" height="5" style="fill: url(https://evil.example.com/p.svg#g)"/>',
        b"<style>rect{fill:u\\72l(https://evil.example.com/x)}</style>",  # a CSS escape spelling url(
        b'<rect width="5" height="5" style="fill: \\75 rl(https://evil.example.com/p.svg#g)"/>',
        b"<style>@\\69mport 'https://evil.example.com/x.css';</style>",
        b'<style>rect{fill:image-set("https://evil.example.com/x.png" 1x)}</style>',  # a bare string is a URL here
        b'<rect width="5" style="mask-image: image-set(url(#m) 1x, \'https://evil.example.com/x.png\' 2x)"/>',
        b"<rect width=\"5\" style=\"fill: -webkit-image-set('//evil.example.com/x.png' 1x)\"/>",
        b'<set attributeName="href" to="https://evil.example.com"/>',
        b'<iframe src="https://evil.example.com"/>',
    ],
)
async def test_unsafe_svg_is_refused_with_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path, inner: bytes
) -> None:
    r = await _upload(client, admin_headers, _SVG_OPEN + inner + b"</svg>", "x.svg", "image/svg+xml")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unsafe_svg"
    assert _stored(upload_dir) == []


async def test_svg_with_entity_declarations_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path
) -> None:
    doc = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "&#60;script&#62;alert(1)&#60;/script&#62;">]>'
        + _SVG_OPEN
        + b"<text>&x;</text></svg>"
    )
    r = await _upload(client, admin_headers, doc, "x.svg", "image/svg+xml")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unsafe_svg"


async def test_svg_with_a_plain_doctype_is_accepted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path
) -> None:
    doc = (
        b'<?xml version="1.0" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n' + _SVG_OPEN + b'<circle r="5"/></svg>'
    )
    r = await _upload(client, admin_headers, doc, "x.svg", "image/svg+xml")
    assert r.status_code == 201, r.text


async def test_malformed_svg_is_422(client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path) -> None:
    r = await _upload(client, admin_headers, _SVG_OPEN + b"<circle r='5'>", "x.svg", "image/svg+xml")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_svg"


async def test_oversize_upload_is_413_and_nothing_is_stored(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path, app: FastAPI
) -> None:
    limit = app.state.settings.icon_max_bytes
    r = await _upload(client, admin_headers, PNG + b"\x00" * limit)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "icon_too_large"
    assert _stored(upload_dir) == []
    exactly = PNG + b"\x00" * (limit - len(PNG))
    assert (await _upload(client, admin_headers, exactly)).status_code == 201


async def test_upload_needs_an_admin_key(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path, login: Any, make_key: Any
) -> None:
    r = await _upload(client, {}, PNG)
    assert r.status_code == 401
    r = await _upload(client, {"Authorization": "Bearer not-a-key"}, PNG)
    assert r.status_code == 401
    member = await login()
    r = await _upload(client, member, PNG)
    assert r.status_code in (401, 403)
    assert r.status_code == 403 and r.json()["error"]["code"] == "api_key_required"
    events_key = await make_key("events:write")
    assert (await _upload(client, events_key, PNG)).status_code == 403
    assert _stored(upload_dir) == []


@pytest.mark.parametrize("alt", [None, "", "   "])
async def test_upload_without_alt_text_takes_it_from_the_file_name(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path, alt: str | None
) -> None:
    r = await _upload(client, admin_headers, PNG, filename="store-explorer.png", alt=alt)
    assert r.status_code == 201, r.text
    assert r.json()["alt"] == "store explorer"
    listed = (await client.get("/v1/icons", params={"limit": 200})).json()
    assert listed[-1]["name"] == r.json()["name"] and listed[-1]["alt"] == "store explorer"


async def test_upload_alt_text_is_never_empty(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path
) -> None:
    r = await _upload(client, admin_headers, PNG, filename="__.png", alt=None)
    assert r.status_code == 201, r.text
    assert r.json()["alt"] == "Uploaded icon"
    r = await client.post("/v1/admin/icons", data={"alt_text": "Gold star"}, headers=admin_headers,
                          files={"file": ("x.png", PNG, "image/png")})
    assert r.status_code == 201 and r.json()["alt"] == "Gold star"
    r = await client.post("/v1/admin/icons", data={"alt": "  ", "alt_text": "Silver star"}, headers=admin_headers,
                          files={"file": ("x.png", PNG, "image/png")})
    assert r.status_code == 201 and r.json()["alt"] == "Silver star"  # a blank alt does not hide alt_text


@pytest.mark.parametrize("filename", ["gold_star.PNG", "C:\\icons\\gold-star.png", "gold  star"])
def test_alt_from_filename_uses_the_words_of_the_name(filename: str) -> None:
    assert icons_service.alt_from_filename(filename) == "gold star"


async def test_upload_with_alt_text_over_200_characters_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path
) -> None:
    r = await _upload(client, admin_headers, PNG, alt="x" * 201)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert _stored(upload_dir) == []


async def test_upload_without_file_is_422(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    r = await client.post("/v1/admin/icons", data={"alt": "x"}, headers=admin_headers)
    assert r.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/v1/icons/..%2Fconfig.svg",
        "/v1/icons/..%2F..%2Fapp%2Fconfig.svg",
        "/v1/icons/%2e%2e.svg",
        "/v1/icons/catalog.svg",
        "/v1/icons/no-such-icon.svg",
        "/v1/icons/uploads/..%2F..%2Fpyproject.toml",
        "/v1/icons/uploads/" + "0" * 32 + ".png",
        "/v1/icons/uploads/.." + "0" * 30 + ".png",
    ],
)
async def test_unknown_or_traversing_paths_are_404_json(client: httpx.AsyncClient, upload_dir: Path, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] in ("not_found", "icon_not_found")


async def test_builtin_icon_supports_conditional_get(client: httpx.AsyncClient) -> None:
    first = await client.get("/v1/icons/trophy.svg")
    again = await client.get("/v1/icons/trophy.svg", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_failed_insert_leaves_no_file_behind(
    app: FastAPI, admin_headers: dict[str, str], upload_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_insert(*_: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(icons_service, "_insert", broken_insert)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://laurel.test") as c:
        r = await _upload(c, admin_headers, PNG)
    assert r.status_code == 500
    assert _stored(upload_dir) == []


async def test_rolled_back_upload_removes_its_file(app: FastAPI, upload_dir: Path) -> None:
    class Source:
        def __init__(self, data: bytes) -> None:
            self.data = data

        async def read(self, size: int = -1) -> bytes:
            out, self.data = self.data[:size], self.data[size:]
            return out

    settings = app.state.settings
    async with app.state.db.sessionmaker() as session:
        icon = await icons_service.upload(session, settings, Source(PNG), "kept until rollback")
        assert (upload_dir / f"{icon.id}.png").exists()
        await session.rollback()
    assert not (upload_dir / f"{icon.id}.png").exists()

    async with app.state.db.sessionmaker() as session:
        icon = await icons_service.upload(session, settings, Source(SVG), "committed")
        await session.commit()
    assert (upload_dir / f"{icon.id}.svg").read_bytes() == SVG


async def test_a_badge_with_an_uploaded_icon_id_links_to_the_served_image(
    client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path, login: Any
) -> None:
    uploaded = (await _upload(client, admin_headers, PNG)).json()
    body = {"key": "star", "name": "Star", "icon": uploaded["id"], "status": "active",
            "criteria": [{"event": "visit", "threshold": 1}]}
    badge = (await client.post("/v1/admin/badges", json=body, headers=admin_headers)).json()
    served = await client.get(badge["icon_url"])
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
