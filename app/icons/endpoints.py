"""The icon library: list, serve built-in and uploaded icons, and upload new ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from app.auth.deps import AdminKey
from app.errors import responses
from app.icons import service as icons_service
from app.icons.schemas import IconOut, IconUploaded
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.pagination import PageParams

router = APIRouter(tags=["icons"])

# Served icons are opened directly by browsers: never sniffed into HTML, never allowed to run or fetch anything.
_SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
_IMAGE = {"description": "The image", "content": {"image/svg+xml": {}}}


def _with_415(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out = responses(*statuses, 415)
    out[415] = {**out[415], "description": "Not a PNG, JPEG, WebP or SVG image"}
    return out


@router.get("/v1/icons", response_model=list[IconOut], responses=responses(422))
async def list_icons(
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    accept_language: Annotated[str | None, Header()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[IconOut]:
    """Built-in icons, then uploaded icons newest first; alt text follows Accept-Language (zh → Chinese)."""
    response.headers["Vary"] = "Accept-Language"
    lang = icons_service.pick_language(accept_language)
    page = PageParams(limit=limit, offset=offset)
    return (await icons_service.list_icons(session, settings, lang, page)).items


@router.get(
    "/v1/icons/uploads/{filename}",
    response_class=FileResponse,
    responses={200: {"description": "The uploaded image", "content": {"image/*": {}}}, **responses(404)},
)
async def get_uploaded_icon(filename: str, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """An uploaded icon, with the content type detected when it was uploaded."""
    path, content_type = await icons_service.uploaded_file(session, settings, filename)
    # File names are random and never reused, so the bytes behind a URL never change.
    headers = {**_SAFE_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
    return FileResponse(path, media_type=content_type, headers=headers)


@router.get("/v1/icons/{name}.svg", response_class=Response, responses={200: _IMAGE, **responses(404)})
async def get_builtin_icon(name: str, request: Request) -> Response:
    """A built-in icon's SVG."""
    icon = icons_service.builtin(name)
    headers = {**_SAFE_HEADERS, "Cache-Control": "public, max-age=86400", "ETag": icon.etag}
    if request.headers.get("if-none-match") == icon.etag:
        return Response(status_code=304, headers=headers)
    return Response(icon.content, media_type=icons_service.SVG_TYPE, headers=headers)


@router.post(
    "/v1/admin/icons",
    status_code=201,
    response_model=IconUploaded,
    tags=["admin"],
    responses=_with_415(401, 403, 413, 422),
)
async def upload_icon(
    file: Annotated[UploadFile, File(description="PNG, JPEG, WebP or SVG; typed by its bytes")],
    session: SessionDep,
    settings: SettingsDep,
    _: AdminKey,
    alt: Annotated[
        str | None,
        Form(max_length=200, description="What a screen reader says for the icon; left out: made from the file name"),
    ] = None,
    alt_text: Annotated[str | None, Form(max_length=200, description="Another name for `alt`")] = None,
) -> IconUploaded:
    """Upload an icon image; it is listed in the library and served back by URL."""
    given = (alt or "").strip() or (alt_text or "").strip() or None
    return await icons_service.upload(session, settings, file, given, file.filename)
