// Open alerts, newest first, with acknowledge; kept current by the stream's alert events.

import { request } from "/console/assets/api.js";
import { ago } from "/console/assets/table.js";

export class AlertsPanel {
  constructor(list, counter, onChange) {
    this.list = list;
    this.counter = counter;
    this.onChange = onChange;  // called after every change, with the open alerts' count per robot
    this.alerts = new Map();  // alert_id -> alert, open ones only
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-alert]");
      if (button) this.acknowledge(Number(button.dataset.alert), button);
    });
  }

  async load() {
    for (const state of ["active", "acknowledged"]) {
      const page = await request(`/alerts?state=${state}&limit=1000`);
      for (const alert of page.alerts) this.alerts.set(alert.alert_id, alert);
    }
    this.render();
  }

  // An alert.opened / alert.acknowledged / alert.resolved event.
  apply(alert) {
    if (alert.state === "resolved") this.alerts.delete(alert.alert_id);
    else this.alerts.set(alert.alert_id, alert);
    this.render();
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

  countsByRobot() {
    const counts = new Map();
    for (const alert of this.alerts.values()) counts.set(alert.robot_id, (counts.get(alert.robot_id) || 0) + 1);
    return counts;
  }

  render() {
    const sorted = [...this.alerts.values()].sort((a, b) => b.alert_id - a.alert_id);
    const now = Date.now();
    this.list.replaceChildren(...sorted.map((alert) => this.item(alert, now)));
    this.counter.textContent = `(${sorted.length})`;
    this.onChange(this.countsByRobot());
  }

  item(alert, now) {
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
    const reason = document.createElement("p");
    reason.textContent = `${alert.reason} (opened ${ago(alert.opened_at, now)})`;
    li.append(head, reason);
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
    return li;
  }
}
