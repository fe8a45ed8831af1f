// The fleet table: sortable by every column (buttons in the headers, so the keyboard works), filterable, one
// focusable row per robot (Enter opens its detail). Status is written out, not only coloured.

export const LOW_BATTERY_PCT = 20;

export function ago(isoTime, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - Date.parse(isoTime)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export class FleetTable {
  constructor(table, filter, search, onSelect) {
    this.body = table.tBodies[0];
    this.headers = [...table.tHead.querySelectorAll("th")];
    this.filter = filter;
    this.search = search;
    this.onSelect = onSelect;
    this.sortKey = "robot_id";
    this.ascending = true;
    this.rows = new Map();  // robot_id -> <tr>
    for (const th of this.headers) {
      th.querySelector("button").addEventListener("click", (event) => this.sortBy(event.currentTarget.dataset.key));
    }
    this.body.addEventListener("click", (event) => this.select(event));
    this.body.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") this.select(event);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        const row = event.target.closest("tr");
        const next = event.key === "ArrowDown" ? row?.nextElementSibling : row?.previousElementSibling;
        if (next) { next.focus(); event.preventDefault(); }
      }
    });
  }

  select(event) {
    const row = event.target.closest("tr");
    if (row) this.onSelect(row.dataset.robot);
  }

  sortBy(key) {
    this.ascending = this.sortKey === key ? !this.ascending : true;
    this.sortKey = key;
    for (const th of this.headers) {
      const active = th.querySelector("button").dataset.key === key;
      th.setAttribute("aria-sort", active ? (this.ascending ? "ascending" : "descending") : "none");
    }
    this.onSort();
  }

  onSort() {}

  visible(robot, alertCount) {
    const filter = this.filter.value;
    const needle = this.search.value.trim().toLowerCase();
    if (needle && !robot.robot_id.toLowerCase().includes(needle)) return false;
    if (filter === "low") return robot.battery_level < LOW_BATTERY_PCT;
    if (filter === "offline") return !robot.online;
    if (filter === "alerts") return alertCount > 0;
    if (filter.startsWith("status:")) return robot.status === filter.slice(7);
    return true;
  }

  // Rebuilds the body in sort order; rows are reused, so focus and scroll stay where they were.
  render(robots, alertCounts) {
    const key = this.sortKey;
    const value = (r) => (key === "alerts" ? alertCounts.get(r.robot_id) || 0 : r[key] ?? "");
    const sorted = robots
      .filter((r) => this.visible(r, alertCounts.get(r.robot_id) || 0))
      .sort((a, b) => {
        const x = value(a), y = value(b);
        const order = x < y ? -1 : x > y ? 1 : a.robot_id < b.robot_id ? -1 : 1;
        return this.ascending ? order : -order;
      });
    const now = Date.now();
    const rows = sorted.map((robot) => this.row(robot, alertCounts.get(robot.robot_id) || 0, now));
    reconcile(this.body, rows);
    return sorted.length;
  }

  row(robot, alerts, now) {
    let tr = this.rows.get(robot.robot_id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.tabIndex = 0;
      tr.dataset.robot = robot.robot_id;
      tr.setAttribute("role", "row");  // a grid row in CSS: the roles keep it a table row
      for (let i = 0; i < 6; i++) tr.append(Object.assign(document.createElement("td"), { role: "cell" }));
      this.rows.set(robot.robot_id, tr);
    }
    const [id, status, battery, seen, online, open] = tr.cells;
    // Only what changed is written: a write costs a style and layout pass, and most cells of 1,000 rows re-sorted
    // every second are as they were.
    set(id, robot.robot_id);
    set(status, robot.status || "—", `status s-${robot.status || "unknown"}`);
    set(battery, `${robot.battery_level.toFixed(0)} %`, robot.battery_level < LOW_BATTERY_PCT ? "low" : "");
    set(seen, ago(robot.last_seen, now));
    seen.dataset.time = robot.last_seen;
    set(online, robot.online ? "online" : "offline", robot.online ? "" : "offline");
    set(open, alerts ? String(alerts) : "");
    return tr;
  }

  // Rows already shown take the robots' new values in place.
  refreshRows(robots, alertCounts) {
    const now = Date.now();
    for (const robot of robots) {
      if (this.rows.get(robot.robot_id)?.isConnected) this.row(robot, alertCounts.get(robot.robot_id) || 0, now);
    }
  }

  // "12 s ago" moves on every second without re-sorting.
  tick() {
    const now = Date.now();
    for (const cell of this.body.querySelectorAll("td[data-time]")) set(cell, ago(cell.dataset.time, now));
  }
}

function set(cell, text, className = null) {
  if (cell.textContent !== text) cell.textContent = text;
  if (className !== null && cell.className !== className) cell.className = className;
}

// Make parent's children exactly `wanted`, in order, moving as few as it can: rows already in place are not
// touched, so focus and scroll stay where they were.
export function reconcile(parent, wanted) {
  const keep = new Set(wanted);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  let cursor = parent.firstElementChild;
  for (const node of wanted) {
    if (node === cursor) {
      cursor = cursor.nextElementSibling;
      continue;
    }
    parent.insertBefore(node, cursor);
  }
}
