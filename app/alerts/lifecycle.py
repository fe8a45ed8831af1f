"""Alert rules, alerts and webhooks as the routes change and read them, and a robot's alerts retired inside a
caller's transaction."""

from __future__ import annotations

from app.alerts.store import (
    RuleLimits,
    acknowledge_alert,
    acknowledge_alerts,
    delete_rule,
    delete_webhook,
    fetch_alert,
    fetch_alerts_page,
    fetch_deliveries_page,
    fetch_rule,
    fetch_rules_page,
    fetch_webhooks,
    insert_rule,
    insert_webhook,
    retire_robot_in,
    update_rule,
)

__all__ = [
    "RuleLimits",
    "acknowledge_alert",
    "acknowledge_alerts",
    "delete_rule",
    "delete_webhook",
    "fetch_alert",
    "fetch_alerts_page",
    "fetch_deliveries_page",
    "fetch_rule",
    "fetch_rules_page",
    "fetch_webhooks",
    "insert_rule",
    "insert_webhook",
    "retire_robot_in",
    "update_rule",
]
