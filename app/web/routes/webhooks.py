"""/webhooks (admin): endpoints that receive every alert transition, signed, and each one's delivery log."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter

from app.alerts import lifecycle as alerts
from app.alerts.payloads import CreatedWebhook, DeliveryPage, NewWebhook, Webhook
from app.alerts.webhooks import check_webhook_url, generate_secret
from app.model.errors import ErrorKind, UnknownWebhook
from app.model.principal import Scope
from app.platform.cursors import IdPager
from app.web.deps import PoolDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.pages import keyset_page_size
from app.web.params import Cursor, Limit
from app.web.problems import AUTH_ERRORS, problem_responses

WebhookIdPath = Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="The webhook's id.")]
DELIVERY_PAGES = IdPager("deliveries")


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["alerts"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.ADMIN}  # noqa: RUF012

    @post(
        "/",
        operation_id="createWebhook",
        status_code=201,
        responses=problem_responses(ErrorKind.MALFORMED_BODY, ErrorKind.BAD_PARAMETER, *AUTH_ERRORS),
        summary="Register a webhook; its signing secret is shown once",
        description=(
            'Every alert transition is POSTed to it as JSON (`{"type": "alert.opened", "alert": {...}}`), '
            "signed as Standard Webhooks specifies: headers `webhook-id` (the same on every attempt: deduplicate "
            "by it), `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over "
            "`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the secret after "
            "`whsec_`. A 2xx answer is a delivery; anything else is retried with exponential backoff "
            "(FLEET_WEBHOOK_RETRY_BASE_S doubling up to FLEET_WEBHOOK_RETRY_MAX_S, FLEET_WEBHOOK_MAX_ATTEMPTS), "
            "also after an API restart: the outbox is in the database. The URL's host must resolve to public "
            "addresses only (no loopback, private, link-local or metadata addresses, no credentials in the URL) "
            "unless FLEET_WEBHOOK_ALLOW_PRIVATE is set; each delivery resolves it again and connects to the "
            "address it checked."
        ),
    )
    async def create_webhook(self, pool: PoolDep, settings: SettingsDep, data: JSONBody[NewWebhook]) -> CreatedWebhook:
        await check_webhook_url(data.url, settings.alerts.webhook_allow_private)
        secret = generate_secret()
        webhook = await alerts.insert_webhook(pool, data.url, data.description, secret)
        return CreatedWebhook(**msgspec.structs.asdict(webhook), secret=secret)

    @get(
        "/",
        operation_id="listWebhooks",
        responses=problem_responses(*AUTH_ERRORS),
        summary="Every webhook, without secrets",
    )
    async def list_webhooks(self, pool: PoolDep) -> list[Webhook]:
        return await alerts.fetch_webhooks(pool)

    @delete(
        "/{webhook_id:int}",
        operation_id="deleteWebhook",
        responses=problem_responses(ErrorKind.UNKNOWN_WEBHOOK, *AUTH_ERRORS),
        summary="Delete a webhook and its pending deliveries",
    )
    async def delete_webhook(self, pool: PoolDep, webhook_id: WebhookIdPath) -> None:
        if not await alerts.delete_webhook(pool, webhook_id):
            raise UnknownWebhook(f"no webhook {webhook_id}")

    @get(
        "/{webhook_id:int}/deliveries",
        operation_id="listWebhookDeliveries",
        responses=problem_responses(ErrorKind.BAD_CURSOR, ErrorKind.UNKNOWN_WEBHOOK, *AUTH_ERRORS),
        summary="A webhook's delivery log, newest first: state, attempts, last status and error",
    )
    async def list_deliveries(
        self,
        pool: PoolDep,
        settings: SettingsDep,
        webhook_id: WebhookIdPath,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> DeliveryPage:
        size = keyset_page_size(limit, settings)
        found = await alerts.fetch_deliveries_page(pool, webhook_id, DELIVERY_PAGES.decode(cursor), size)
        if found is None:
            raise UnknownWebhook(f"no webhook {webhook_id}")
        return DeliveryPage(found, DELIVERY_PAGES.next_cursor([d.delivery_id for d in found], size))
