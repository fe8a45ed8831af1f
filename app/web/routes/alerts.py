"""/alert-rules (admin) and /alerts (read): the rules operators set, and the alerts they open, in pages."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import JSONBody, Parameter, PathParameter, QueryParameter

from app.alerts import lifecycle as alerts
from app.alerts.payloads import (
    MAX_BULK_ACKNOWLEDGE,
    Acknowledgement,
    AlertPage,
    BulkAcknowledged,
    BulkAcknowledgement,
    RulePage,
)
from app.alerts.rules import (
    KINDS,
    RULE_SCHEMA_RULES,
    AlertRule,
    Kind,
    NewRule,
    decode_rule,
    rule_values,
    visible_rules,
)
from app.auth.visibility import visible_robot_ids
from app.model.alert import Alert, AlertState
from app.model.errors import Conflict, ErrorKind, UnknownAlert, UnknownAlertRule
from app.model.principal import Scope
from app.platform.cursors import IdPager
from app.platform.timeranges import parse_range
from app.web.deps import PoolDep, PrincipalDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.openapi import json_body_operation
from app.web.pages import keyset_page_size
from app.web.params import Cursor, Limit, Since, Until
from app.web.problems import AUTH_ERRORS, problem_responses

RuleIdPath = Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="The rule's id.")]
# 2**53 - 1: ids stay exact as JSON numbers in every client (a double holds integers up to it)
AlertIdPath = Annotated[int, PathParameter(ge=1, le=2**53 - 1, description="The alert's id.")]
RULE_PAGES = IdPager("alert-rules")
ALERT_PAGES = IdPager("alerts")
RuleBodyOperation = json_body_operation(
    NewRule, "An alert rule: a condition (by `kind`) and a scope.", RULE_SCHEMA_RULES
)


class AlertRulesController(Controller):
    """Reading the rules takes the read scope, changing them the admin scope."""

    path = "/alert-rules"
    tags = ["alerts"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.ADMIN}  # noqa: RUF012

    @post(
        "/",
        operation_id="createAlertRule",
        status_code=201,
        operation_class=RuleBodyOperation,
        responses=problem_responses(ErrorKind.INVALID_RULE, ErrorKind.MALFORMED_BODY, ErrorKind.CONFLICT, *AUTH_ERRORS),
        summary="Create an alert rule",
        description="It is evaluated from the next tick (FLEET_ALERT_TICK_MS) in every API process. 409 past "
        "FLEET_MAX_ALERT_RULES rules or FLEET_MAX_GEOFENCE_POSITIONS geofence positions in all.",
    )
    async def create_rule(self, pool: PoolDep, settings: SettingsDep, request: Request[Any, Any, Any]) -> AlertRule:
        rule = decode_rule(await request.body())
        return await alerts.insert_rule(pool, rule_values(rule), _rule_limits(settings))

    @get(
        "/",
        operation_id="listAlertRules",
        opt={SCOPE_OPT: Scope.READ},  # operators see what is watched (the console draws geofences); admins change it
        responses=problem_responses(ErrorKind.BAD_CURSOR, *AUTH_ERRORS),
        summary="Every alert rule, by id, in pages (read scope)",
        description="A key limited to part of the fleet sees the fleet-wide rules and those of its own robots and "
        "their tags, never another part's.",
    )
    async def list_rules(
        self,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> RulePage:
        size = keyset_page_size(limit, settings)
        rules = await alerts.fetch_rules_page(pool, RULE_PAGES.decode(cursor) or 0, size)
        # The cursor follows the rules read, not those shown: a limited key's page may hold fewer than `limit`.
        next_cursor = RULE_PAGES.next_cursor([rule.rule_id for rule in rules], size)
        return RulePage(await visible_rules(pool, principal, rules), next_cursor)

    @get(
        "/{rule_id:int}",
        operation_id="getAlertRule",
        opt={SCOPE_OPT: Scope.READ},
        responses=problem_responses(ErrorKind.UNKNOWN_ALERT_RULE, *AUTH_ERRORS),
        summary="One alert rule",
    )
    async def get_rule(self, pool: PoolDep, principal: PrincipalDep, rule_id: RuleIdPath) -> AlertRule:
        rule = await alerts.fetch_rule(pool, rule_id)
        if rule is None or not await visible_rules(pool, principal, [rule]):
            raise UnknownAlertRule(f"no alert rule {rule_id}")
        return rule

    @put(
        "/{rule_id:int}",
        operation_id="replaceAlertRule",
        operation_class=RuleBodyOperation,
        responses=problem_responses(
            ErrorKind.UNKNOWN_ALERT_RULE,
            ErrorKind.INVALID_RULE,
            ErrorKind.MALFORMED_BODY,
            ErrorKind.CONFLICT,
            *AUTH_ERRORS,
        ),
        summary="Replace an alert rule",
        description="Its open alerts stay open while its condition still holds; the next evaluation decides.",
    )
    async def replace_rule(
        self, pool: PoolDep, settings: SettingsDep, request: Request[Any, Any, Any], rule_id: RuleIdPath
    ) -> AlertRule:
        rule = decode_rule(await request.body())
        replaced = await alerts.update_rule(pool, rule_id, rule_values(rule), _rule_limits(settings))
        if replaced is None:
            raise UnknownAlertRule(f"no alert rule {rule_id}")
        return replaced

    @delete(
        "/{rule_id:int}",
        operation_id="deleteAlertRule",
        responses=problem_responses(ErrorKind.UNKNOWN_ALERT_RULE, *AUTH_ERRORS),
        summary="Delete an alert rule",
        description="Its open alerts are resolved (announced like any resolution); its alerts' history stays.",
    )
    async def delete_rule(self, pool: PoolDep, rule_id: RuleIdPath) -> None:
        if not await alerts.delete_rule(pool, rule_id):
            raise UnknownAlertRule(f"no alert rule {rule_id}")


class AlertsController(Controller):
    path = "/alerts"
    tags = ["alerts"]  # noqa: RUF012
    opt = {SCOPE_OPT: Scope.READ}  # noqa: RUF012

    @get(
        "/",
        operation_id="listAlerts",
        responses=problem_responses(ErrorKind.BAD_CURSOR, ErrorKind.BAD_PARAMETER, ErrorKind.BAD_RANGE, *AUTH_ERRORS),
        summary="Alerts, newest first, in pages",
        description="`active`: open and not acknowledged; `acknowledged`: open and acknowledged; `resolved`: closed. "
        "`since` and `until` bound when the alert opened.",
    )
    async def list_alerts(
        self,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        alert_state: Annotated[
            AlertState | None, QueryParameter(name="state", description="Only alerts in this state.")
        ] = None,
        robot_id: Annotated[str | None, Parameter(description="Only this robot's.")] = None,
        kind: Annotated[Kind | None, Parameter(description=f"Only this kind: {', '.join(KINDS)}.")] = None,
        rule_id: Annotated[int | None, Parameter(ge=1, le=2**31 - 1, description="Only this rule's.")] = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> AlertPage:
        opened_since, opened_until = parse_range(since, until)
        size = keyset_page_size(limit, settings)
        visible = await visible_robot_ids(pool, principal)
        found = await alerts.fetch_alerts_page(
            pool,
            ALERT_PAGES.decode(cursor),
            alert_state,
            robot_id,
            kind,
            None if visible is None else sorted(visible),
            size,
            rule_id,
            opened_since,
            opened_until,
        )
        return AlertPage(found, ALERT_PAGES.next_cursor([alert.alert_id for alert in found], size))

    @get(
        "/{alert_id:int}",
        operation_id="getAlert",
        responses=problem_responses(ErrorKind.UNKNOWN_ALERT, *AUTH_ERRORS),
        summary="One alert",
    )
    async def get_alert(self, pool: PoolDep, principal: PrincipalDep, alert_id: AlertIdPath) -> Alert:
        return await _visible_alert(pool, principal, await alerts.fetch_alert(pool, alert_id), alert_id)

    @post(
        "/acknowledge",
        operation_id="acknowledgeAlerts",
        status_code=200,
        opt={SCOPE_OPT: Scope.OPERATE},
        responses=problem_responses(ErrorKind.MALFORMED_BODY, ErrorKind.BAD_PARAMETER, *AUTH_ERRORS),
        summary="Acknowledge many open alerts at once (operate scope)",
        description=f"Up to {MAX_BULK_ACKNOWLEDGE:,} ids, in one transaction, with one note. Those not open and "
        "unacknowledged (or not this key's to see) are listed as unchanged, not refused: in a storm, alerts close "
        "while an operator acknowledges them.",
    )
    async def acknowledge_many(
        self, pool: PoolDep, principal: PrincipalDep, data: JSONBody[BulkAcknowledgement]
    ) -> BulkAcknowledged:
        visible = await visible_robot_ids(pool, principal)
        acknowledged = await alerts.acknowledge_alerts(
            pool, data.alert_ids, principal.name, data.note, None if visible is None else sorted(visible)
        )
        done = {alert.alert_id for alert in acknowledged}
        return BulkAcknowledged(acknowledged, sorted({i for i in data.alert_ids if i not in done}))

    @post(
        "/{alert_id:int}/acknowledge",
        operation_id="acknowledgeAlert",
        status_code=200,
        opt={SCOPE_OPT: Scope.OPERATE},
        responses=problem_responses(
            ErrorKind.UNKNOWN_ALERT, ErrorKind.CONFLICT, ErrorKind.MALFORMED_BODY, *AUTH_ERRORS
        ),
        summary="Acknowledge an open alert (operate scope)",
        description="Records who (the credential's name), when, and a note; the alert stays open until its "
        "condition clears. A resolved or already acknowledged alert gives 409.",
    )
    async def acknowledge(
        self,
        pool: PoolDep,
        principal: PrincipalDep,
        alert_id: AlertIdPath,
        data: JSONBody[Acknowledgement | None] = None,
    ) -> Alert:
        await _visible_alert(pool, principal, await alerts.fetch_alert(pool, alert_id), alert_id)
        note = data.note if data is not None else None
        found, acknowledged = await alerts.acknowledge_alert(pool, alert_id, principal.name, note)
        alert = await _visible_alert(pool, principal, found, alert_id)
        if not acknowledged:
            raise Conflict(f"alert {alert_id} is {alert.state} already")
        return alert


def _rule_limits(settings: SettingsDep) -> alerts.RuleLimits:
    return alerts.RuleLimits(settings.alerts.max_alert_rules, settings.alerts.max_geofence_positions)


async def _visible_alert(pool: PoolDep, principal: PrincipalDep, alert: Alert | None, alert_id: int) -> Alert:
    """The alert, or 404 if there is none or the credential may not see its robot."""
    if alert is not None:
        visible = await visible_robot_ids(pool, principal)
        if visible is None or alert.robot_id in visible:
            return alert
    raise UnknownAlert(f"no alert {alert_id}")
