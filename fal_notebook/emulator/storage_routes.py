"""Storage: CDN token, raw and multipart CDN uploads, signed-URL uploads, and serving bytes back without auth."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from fal_notebook.emulator.responses import base_url, fal_json
from fal_notebook.emulator.state import EmulatorState

__all__ = ["storage_token", "initiate_upload", "cdn_upload", "multipart_create", "multipart_part",
           "multipart_complete", "signed_put", "serve_blob"]

_SMALL = 64 * 1024  # blobs up to this size are answered from one read; larger ones (and ranges) stream from disk


async def storage_token(request: Request, state: EmulatorState) -> Response:
    token = secrets.token_urlsafe(24)
    state.cdn_tokens.add(token)
    expires = datetime.now(UTC) + timedelta(hours=1)
    return fal_json(200, {"token": token, "token_type": "Bearer", "base_url": base_url(request),
                          "expires_at": expires.isoformat()})


async def _json_body(request: Request) -> dict:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def initiate_upload(request: Request, state: EmulatorState) -> Response:
    """``{upload_url, file_url}``: the upload URL is "signed" (a token in its query) and takes no auth."""
    storage_type = request.query_params.get("storage_type", "gcs")
    if storage_type not in {"gcs", "fal-cdn", "fal-cdn-v3"}:
        return fal_json(400, {"detail": f"Unsupported storage type: {storage_type}"})
    body = await _json_body(request)
    key = state.store.new_key(body.get("file_name"), body.get("content_type"))
    signature = secrets.token_hex(16)
    state.signed_uploads[key] = signature
    base = base_url(request)
    return fal_json(200, {"upload_url": f"{base}/uploads/{key}?X-Goog-Signature={signature}",
                          "file_url": f"{base}/files/{key}"})


async def signed_put(request: Request, state: EmulatorState, key: str) -> Response:
    expected = state.signed_uploads.get(key)
    if expected is None or request.query_params.get("X-Goog-Signature") != expected:
        return Response("<Error><Code>SignatureDoesNotMatch</Code></Error>", 403, media_type="application/xml")
    await state.store.put_stream(key, request.stream())
    state.signed_uploads.pop(key, None)
    return Response(b"", 200)


async def cdn_upload(request: Request, state: EmulatorState) -> Response:
    """``POST /files/upload``: raw bytes streamed to disk → ``{access_url}``."""
    key = state.store.new_key(request.headers.get("x-fal-file-name"), request.headers.get("content-type"))
    blob = await state.store.put_stream(key, request.stream())
    return JSONResponse({"access_url": f"{base_url(request)}/files/{blob.key}", "content_type": blob.content_type,
                         "file_name": key.split("/", 1)[1], "file_size": blob.size})


async def multipart_create(request: Request, state: EmulatorState) -> Response:
    key = state.store.new_key(request.headers.get("x-fal-file-name"), request.headers.get("content-type"))
    upload_id = uuid.uuid4().hex
    state.multipart[upload_id] = key
    return JSONResponse({"access_url": f"{base_url(request)}/files/{key}", "uploadId": upload_id})


async def multipart_part(request: Request, state: EmulatorState, key: str, upload_id: str, part: str) -> Response:
    if state.multipart.get(upload_id) != key or not part.isdigit() or int(part) < 1:
        return JSONResponse({"detail": "Upload not found"}, status_code=404)
    etag = await state.store.put_part(key, upload_id, int(part), request.stream())
    return Response(b"", 200, headers={"ETag": etag})


async def multipart_complete(request: Request, state: EmulatorState, key: str, upload_id: str) -> Response:
    if state.multipart.get(upload_id) != key:
        return JSONResponse({"detail": "Upload not found"}, status_code=404)
    parts = (await _json_body(request)).get("parts") or []
    numbers = [int(p["partNumber"]) for p in parts if isinstance(p, dict) and "partNumber" in p]
    missing = [n for n in numbers if not state.store.has_part(upload_id, n)]
    if not numbers or missing:
        return JSONResponse({"detail": f"Missing or unknown parts: {missing or 'none given'}"}, status_code=400)
    state.store.complete_multipart(key, upload_id, numbers)
    state.multipart.pop(upload_id, None)
    return JSONResponse({"access_url": f"{base_url(request)}/files/{key}"})


async def serve_blob(request: Request, state: EmulatorState, key: str) -> Response:
    blob = state.store.get(key)
    if blob is None:
        return JSONResponse({"detail": "File not found"}, status_code=404)
    if blob.size <= _SMALL and "range" not in request.headers:  # no worker-thread round trips for a thumbnail
        disposition = f'inline; filename="{key.split("/", 1)[1]}"'  # keys are [A-Za-z0-9._-]: nothing to quote
        return Response(blob.path.read_bytes(), media_type=blob.content_type,
                        headers={"content-disposition": disposition})
    return FileResponse(blob.path, media_type=blob.content_type, filename=key.split("/", 1)[1],
                        content_disposition_type="inline")
