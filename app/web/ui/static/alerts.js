// Open alerts, grouped by rule (newest group first), with counts, paging and bulk acknowledge; kept current by
// the stream's alert events. A storm of events is applied once per animation frame, and only what changed is
// touched in the page: an item being typed in keeps its focus and its text.

import { fetchAll, request } from "/console/assets/api.js";
import { ago, reconcile } from "/console/assets/table.js";

const PAGE = 20;  // items shown per group, and added by "show more"
const OPEN_GROUPS = 3;  // groups open when first seen; the rest show their header and counts only
const ACK_CHUNK = 1000;  // ids per bulk acknowledge request: the API's most (MAX_BULK_ACKNOWLEDGE)

export class AlertsPanel {
  constructor(list, counter, onChange, { search, age } = {}) {
    this.list = list;
    this.counter = counter;
    this.search = search;  // text matched in the robot id, the rule's name and the reason
    this.age = age;  // only alerts opened within this many seconds ("" for any time)
    // Called at most once per frame, when robots' counts of open alerts moved: (count per robot, those robots' ids).
    this.onChange = onChange;
    this.alerts = new Map();  // alert_id -> alert, open ones only
    this.items = new Map();  // alert_id -> { alert, li }: an item is rebuilt only when its alert changed
    this.groups = new Map();  // rule key -> { li, details, summary, ol, more, bulk, shown }
    this.open = new Set();  // rule keys whose group is open
    this.seen = new Set();  // rule keys ever shown (a group is opened by default only the first time)
    this.dirty = false;
    this.lastCounts = new Map();  // robot_id -> open alerts, as last handed to onChange
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.dataset.alert) this.acknowledge(Number(button.dataset.alert), button);
      else if (button.dataset.more) this.showMore(button.dataset.more);
      else if (button.dataset.ackAll) this.acknowledgeGroup(button.dataset.ackAll, button);
    });
    for (const control of [search, age]) control?.addEventListener("input", () => this.schedule());
  }

  // The open alerts the filters let through.
  matching(now) {
    const text = (this.search?.value || "").trim().toLowerCase();
    const ageS = Number(this.age?.value || 0);
    const alerts = [...this.alerts.values()];
    if (!text && !ageS) return alerts;
    return alerts.filter((a) => (!ageS || now - Date.parse(a.opened_at) <= ageS * 1000)
      && (!text || `${a.robot_id}\n${a.rule_name}\n${a.reason}`.toLowerCase().includes(text)));
  }

  async load() {
    const loaded = new Map();
    for (const state of ["active", "acknowledged"]) {
      for (const alert of await fetchAll("/alerts", "alerts", { state, limit: "1000" })) loaded.set(alert.alert_id, alert);
    }
    this.alerts = loaded;  // what the stream said meanwhile is in the next events, or in this load already
    this.schedule();
  }

  // An alert.opened / alert.acknowledged / alert.resolved event.
  apply(alert) {
    if (alert.state === "resolved") this.alerts.delete(alert.alert_id);
    else this.alerts.set(alert.alert_id, alert);
    this.schedule();
  }

  schedule() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.render());
  }

  async acknowledge(alertId, button) {
    button.disabled = true;
    const note = button.closest("li").querySelector("input").value.trim() || null;
    try {
      this.apply(await request(`/alerts/${alertId}/acknowledge`, { method: "POST", body: { note } }));
    } catch (error) {
      button.disabled = false;
      button.title = error.message;
    }
  }

  // The group's active alerts that the filters let through, a thousand a request, each request one transaction.
  async acknowledgeGroup(key, button) {
    const active = this.matching(Date.now()).filter((a) => ruleKey(a) === key && a.state === "active");
    button.disabled = true;
    let done = 0;
    let failed = 0;
    for (let start = 0; start < active.length; start += ACK_CHUNK) {
      const ids = active.slice(start, start + ACK_CHUNK).map((a) => a.alert_id);
      try {
        const answer = await request("/alerts/acknowledge", { method: "POST", body: { alert_ids: ids, note: null } });
        for (const alert of answer.acknowledged) this.apply(alert);
      } catch {
        failed += ids.length;
      }
      done += ids.length;
      button.textContent = `Acknowledging… ${done} of ${active.length}`;
    }
    button.title = failed ? `${failed} could not be acknowledged` : "";
    button.disabled = false;
    this.schedule();
  }

  showMore(key) {
    const group = this.groups.get(key);
    if (group) group.shown += PAGE;
    this.schedule();
  }

  countsByRobot() {
    const counts = new Map();
    for (const alert of this.alerts.values()) counts.set(alert.robot_id, (counts.get(alert.robot_id) || 0) + 1);
    return counts;
  }

  render() {
    this.dirty = false;
    const now = Date.now();
    const byRule = new Map();  // rule key -> its alerts, newest first
    for (const alert of this.matching(now).sort((a, b) => b.alert_id - a.alert_id)) {
      const key = ruleKey(alert);
      if (!byRule.has(key)) byRule.set(key, []);
      byRule.get(key).push(alert);
    }
    for (const [alertId, item] of this.items) if (!this.alerts.has(alertId)) this.items.delete(alertId);
    const groups = [];
    for (const [key, alerts] of byRule) {
      if (!this.seen.has(key)) {
        this.seen.add(key);
        if (this.seen.size <= OPEN_GROUPS) this.open.add(key);
      }
      groups.push(this.renderGroup(key, alerts, now));
    }
    for (const key of this.groups.keys()) if (!byRule.has(key)) this.groups.delete(key);
    reconcile(this.list, groups);
    const shown = [...byRule.values()].reduce((sum, alerts) => sum + alerts.length, 0);
    this.counter.textContent = shown === this.alerts.size ? `(${this.alerts.size})` : `(${shown} of ${this.alerts.size})`;
    // Only the robots whose count of open alerts moved: acknowledging a thousand changes none of them.
    const counts = this.countsByRobot();
    const moved = [...new Set([...counts.keys(), ...this.lastCounts.keys()])].filter(
      (robotId) => counts.get(robotId) !== this.lastCounts.get(robotId),
    );
    this.lastCounts = counts;
    if (moved.length) this.onChange(counts, moved);
  }

  renderGroup(key, alerts, now) {
    let group = this.groups.get(key);
    if (!group) {
      group = this.makeGroup(key);
      this.groups.set(key, group);
    }
    const active = alerts.filter((a) => a.state === "active").length;
    group.summary.textContent = `${alerts[0].rule_name}: ${alerts.length} open, ${active} active`;
    group.bulk.hidden = active === 0;
    if (!group.bulk.disabled) group.bulk.textContent = `Acknowledge all ${active} active`;
    group.details.open = this.open.has(key);
    if (group.details.open) {
      const shown = alerts.slice(0, group.shown).map((alert) => this.item(alert, now));
      reconcile(group.ol, shown);
      const left = alerts.length - shown.length;
      group.more.hidden = left <= 0;
      group.more.textContent = `Show ${Math.min(PAGE, left)} more (${left} not shown)`;
    } else {
      group.ol.replaceChildren();  // a closed group holds no items: a storm of thousands stays cheap
    }
    return group.li;
  }

  makeGroup(key) {
    const li = Object.assign(document.createElement("li"), { className: "alert-group" });
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const bulk = Object.assign(document.createElement("button"), { type: "button", className: "ack-all" });
    bulk.dataset.ackAll = key;
    const ol = Object.assign(document.createElement("ol"), { className: "alert-items" });
    const more = Object.assign(document.createElement("button"), { type: "button", className: "more" });
    more.dataset.more = key;
    details.append(summary, bulk, ol, more);
    details.addEventListener("toggle", () => {
      if (details.open === this.open.has(key)) return;
      if (details.open) this.open.add(key);
      else this.open.delete(key);
      this.schedule();
    });
    li.append(details);
    return { li, details, summary, ol, more, bulk, shown: PAGE };
  }

  item(alert, now) {
    const cached = this.items.get(alert.alert_id);
    const openedText = `${alert.reason} (opened ${ago(alert.opened_at, now)})`;
    if (cached && cached.alert === alert) {
      if (cached.openedText !== openedText) {  // "12 min ago" moves rarely; rewriting the text costs a layout
        cached.opened.textContent = openedText;
        cached.openedText = openedText;
      }
      return cached.li;
    }
    const li = document.createElement("li");
    li.className = `alert ${alert.state}`;
    li.dataset.alert = alert.alert_id;
    const head = document.createElement("p");
    const strong = document.createElement("strong");
    strong.textContent = `${alert.robot_id}: ${alert.rule_name}`;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = alert.state === "active" ? "ACTIVE" : `acknowledged by ${alert.acknowledged_by}`;
    head.append(strong, " ", state);
    const opened = document.createElement("p");
    opened.textContent = openedText;
    li.append(head, opened);
    if (alert.note) {
      const note = document.createElement("p");
      note.className = "note";
      note.textContent = `Note: ${alert.note}`;
      li.append(note);
    }
    if (alert.state === "active") {
      const form = document.createElement("div");
      form.className = "ack";
      const input = Object.assign(document.createElement("input"), { type: "text", placeholder: "note (optional)" });
      input.setAttribute("aria-label", `note for alert ${alert.alert_id}`);
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: "Acknowledge" });
      button.dataset.alert = alert.alert_id;
      form.append(input, button);
      li.append(form);
    }
    this.items.set(alert.alert_id, { alert, li, opened, openedText });
    return li;
  }
}

function ruleKey(alert) {
  return alert.rule_id === null ? `deleted: ${alert.rule_name}` : String(alert.rule_id);
}
