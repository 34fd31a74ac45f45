"""What every API view shares: the base view, the validated body, a page of a list, a 404 for what a selector
did not find, and the idempotency wrapper around a service call; and what the PSP's webhook endpoints share:
POST only, and the answer once an event is stored and processed."""
import codecs
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from django.db.models import QuerySet
from django.http import JsonResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Empty, Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import json_error_response
from core.exceptions import DomainError
from core.models import WebhookInbox
from core.pagination import CreatedCursorPagination
from core.parsers import JSONParser
from core.services import NOT_PARSED, Answer, idempotent_call

T = TypeVar("T")


class ApiView(APIView):
    # Here rather than in DEFAULT_PARSER_CLASSES: deeply nested JSON, NUL and lone surrogates are 400s.
    parser_classes = [JSONParser]


def validated(serializer_class, request: Request) -> dict:
    """The request's body as ``serializer_class`` validates it (a 422 otherwise)."""
    request._request.body  # noqa: B018  (read the raw body first: the idempotency fingerprint needs it)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def paginated_response(request: Request, view: APIView, queryset: QuerySet, output_class,
                       pagination=CreatedCursorPagination) -> Response:
    """One page of ``queryset`` (newest first), each row as ``output_class`` renders it."""
    paginator = pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(output_class(page, many=True).data)


def found(obj: T | None, error: DomainError) -> T:
    """``obj``, which a selector looked up for the caller; ``error`` (a not-found) when there is none."""
    if obj is None:
        raise error
    return obj


def idempotent_response(request: Request, operation: Callable[[], tuple[int, dict]] | None = None,
                        *, prepare: Callable[[], Answer] | None = None, key_required: bool = True) -> Response:
    """Run ``operation`` under the request's ``Idempotency-Key`` and answer its response (or ``prepare``'s
    ``Answer``: a response known before the writes, stored by the key's claim: ``idempotent_call``).

    ``request.body`` must have been read before ``request.data`` (the view does so). The body is fingerprinted
    as parsed already (``_parsed_body``), and the response rendered once: the stored response is that text.
    """
    key = idempotency_key(request)
    if key is None and not key_required:
        status, body = operation() if prepare is None else prepare().run()
        return Response(body, status=status)
    renderer, media_type = request.accepted_renderer, request.accepted_media_type
    # The stored response is the rendered text read as jsonb: only a JSON renderer's text is (else DRF renders).
    render = (lambda body: renderer.render(body, media_type, {})) if isinstance(renderer, JSONRenderer) else None
    result = idempotent_call(client=request.user, key=key, method=request.method, path=request.path,
                             body=request._request.body, operation=operation, parsed=_parsed_body(request),
                             render=render, prepare=prepare)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if result.content is None:
        return Response(result.body, status=result.status, headers=headers)
    return RenderedResponse(result.body, status=result.status, headers=headers,
                            rendered=(renderer, media_type, result.content))


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header: ``request.headers.get("Idempotency-Key")`` without building Django's
    ``HttpHeaders`` from the whole ``META`` (which reads that header from exactly this key)."""
    return request.META.get("HTTP_IDEMPOTENCY_KEY")


def _parsed_body(request: Request):
    """``request.data`` where it is exactly what ``json.loads(request.body)`` gives (the idempotency fingerprint's
    parse): a non-empty body parsed by our JSON parser as UTF-8 (``json.loads`` reads UTF-8 without a BOM as
    UTF-8, and our parser refuses a BOM and lone surrogates). ``NOT_PARSED`` otherwise: parsed again."""
    body = request._request.body
    encoding = request.parser_context.get("encoding") or "utf-8"
    if (not body or request._data is Empty or not all(isinstance(p, JSONParser) for p in request.parsers)
            or codecs.lookup(encoding).name != "utf-8"):
        return NOT_PARSED
    return request._full_data


class RenderedResponse(Response):
    """A DRF response whose content was rendered already, by the renderer and media type the request
    negotiated (as ``finalize_response`` gives them to it): DRF's own rendering otherwise."""

    def __init__(self, data, *, rendered: tuple, **kwargs):
        super().__init__(data, **kwargs)
        self._rendered = rendered

    @property
    def rendered_content(self):
        renderer, media_type, content = self._rendered
        context = getattr(self, "renderer_context", None)
        if (getattr(self, "accepted_renderer", None) is not renderer or context is None or "indent" in context
                or getattr(self, "accepted_media_type", None) != media_type or not content):
            return super().rendered_content
        context["response"] = self
        charset = renderer.charset  # as DRF's Response sets it
        self["Content-Type"] = self.content_type or (f"{renderer.media_type}; charset={charset}" if charset
                                                     else renderer.media_type)
        return content


def webhook_post_only(view):
    """A PSP webhook endpoint: any other method than POST is a 405 in the error shape."""
    @wraps(view)
    def post_only(request, *args, **kwargs):
        if request.method != "POST":
            response = json_error_response(405, error_type="invalid_request_error", code="method_not_allowed",
                                           message="Webhooks are delivered with POST.")
            response["Allow"] = "POST"
            return response
        return view(request, *args, **kwargs)
    return post_only


def webhook_answer(event: WebhookInbox, created: bool, status: str) -> JsonResponse:
    """200 once an event is stored and processed (or ignored); a 500 in the error shape when its processing
    failed, so the PSP sends it again."""
    if status == WebhookInbox.Status.FAILED:
        message = f"Event {event.id} is stored but its processing failed; send it again later."
        return json_error_response(500, error_type="api_error", code="webhook_processing_failed", message=message)
    return JsonResponse({"received": True, "id": event.id, "duplicate": not created, "status": status})
