// The console: sign in if the API wants a key, load the fleet, its alerts and geofences, then follow the live
// stream. Stream updates are gathered and applied once per animation frame, however fast they arrive.

import { Unauthorized, fetchAll, openStream, request, storeKey, storedKey } from "/console/assets/api.js";
import { AlertsPanel } from "/console/assets/alerts.js";
import { RobotDetail } from "/console/assets/detail.js";
import { FleetMap, drawFrames } from "/console/assets/map.js";
import { FleetTable } from "/console/assets/table.js";

const TABLE_REFRESH_MS = 1000;  // the table re-sorts at most this often; markers move every frame
const FLEET_REFRESH_MS = 30_000;  // the whole fleet is re-read this often: who went offline is no event
const UPDATES_PER_FRAME = 250;  // robots (readings or alert counts) applied per animation frame
const $ = (selector) => document.querySelector(selector);

// What the tests (and a curious operator in the devtools) can look at.
const state = (window.fleetConsole = {
  robots: new Map(),
  firstPaintMs: null,
  appliedUpdates: 0,
  streamState: "connecting",
});

const pending = new Map();  // robot_id -> its newest streamed reading, not yet applied
const staleRows = new Set();  // robots whose row shows an old count of open alerts
let frameRequested = false;
let tableDirty = false;
let alertCounts = new Map();

const map = new FleetMap($("#map"), (robotId) => detail.open(robotId));
const detail = new RobotDetail($("#detail"), map);
const table = new FleetTable($("#fleet"), $("#filter"), $("#search"), (robotId) => detail.open(robotId));
const alerts = new AlertsPanel($("#alerts"), $("#alert-count"), (counts, moved) => {
  alertCounts = counts;
  tableDirty = true;
  for (const robotId of moved) staleRows.add(robotId);  // their "open alerts" cells, a slice a frame
  requestFrame();
  renderSummary();
}, { search: $("#alert-search"), age: $("#alert-age") });
state.detail = detail;
state.map = map;
state.alerts = alerts;
table.onSort = () => renderTable();
$("#filter").addEventListener("change", () => renderTable());
$("#search").addEventListener("input", () => renderTable());
// Dark or light: the operator's choice in this browser, else what the system prefers.
const THEME_ITEM = "fleet-console-theme";
function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("#theme").textContent = theme === "dark" ? "Light theme" : "Dark theme";
  $("#theme").setAttribute("aria-pressed", String(theme === "light"));
  detail.redraw();  // the chart's axes take the theme's colours
}
applyTheme(localStorage.getItem(THEME_ITEM) || (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark"));
$("#theme").addEventListener("click", () => {
  const theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem(THEME_ITEM, theme);  // a preference, not a secret
  applyTheme(theme);
});
$("#sign-out").addEventListener("click", () => {
  storeKey(null);
  location.reload();
});

function renderTable() {
  const shown = table.render([...state.robots.values()], alertCounts);
  $("#robot-count").textContent = `(${shown} of ${state.robots.size})`;
  renderSummary();
  tableDirty = false;
}

function renderSummary() {
  const robots = [...state.robots.values()];
  const offline = robots.filter((r) => !r.online).length;
  const errors = robots.filter((r) => r.status === "error").length;
  $("#summary").textContent = `${robots.length} robots, ${offline} offline, ${errors} in error, ${alerts.alerts.size} open alerts`;
}

function setLive(text) {
  // Back after an interruption: alerts that closed meanwhile sent events this page never got. Load them anew.
  if (text === "live" && state.streamState !== "live" && state.wasLive) alerts.load().catch(() => {});
  if (text === "live") state.wasLive = true;
  state.streamState = text;
  const live = $("#live");
  live.textContent = text === "live" ? "● live" : text;
  live.className = text === "live" ? "ok" : "warn";
}

// A streamed reading: the robot's state is now this reading, heard just now.
function onReading(reading) {
  pending.set(reading.robot_id, reading);
  requestFrame();
}

function requestFrame() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(applyPending);
  }
}

function applyPending() {
  frameRequested = false;
  const changed = [];
  const now = new Date().toISOString();
  // At most this many robots a frame: a reading from each of 1,000 robots at once took one 180 ms task (markers and
  // rows); in slices the page keeps answering, and the rest follow in the next frames.
  const batch = [...pending].slice(0, UPDATES_PER_FRAME);
  for (const [robotId] of batch) pending.delete(robotId);
  const stale = [...staleRows].slice(0, Math.max(0, UPDATES_PER_FRAME - batch.length));
  for (const robotId of stale) staleRows.delete(robotId);
  if (pending.size || staleRows.size) requestFrame();
  table.refreshRows(stale.map((robotId) => state.robots.get(robotId)).filter(Boolean), alertCounts);
  for (const [robotId, reading] of batch) {
    const known = state.robots.get(robotId);
    // The stream carries readings in the order they were received; a late one (backfill) is older than what
    // the robot reported already, and never replaces it, as the API's "newer wins" rule does not.
    if (known && Date.parse(reading.timestamp) < Date.parse(known.timestamp)) continue;
    const robot = { ...known, ...reading, last_seen: now, online: true, tags: known?.tags || [] };
    state.robots.set(robotId, robot);
    changed.push(robot);
  }
  state.appliedUpdates += changed.length;
  map.update(changed);
  table.refreshRows(changed, alertCounts);  // their cells now; the order at the next re-sort
  renderSummary();
  if (changed.some((r) => !r.location)) drawFrames($("#frames"), state.robots.values());
  tableDirty = true;
}

async function signIn(message = "") {
  const dialog = $("#sign-in");
  $("#sign-in-error").textContent = message;
  dialog.showModal();
  await new Promise((resolve) => $("#sign-in-form").addEventListener("submit", resolve, { once: true }));
  storeKey($("#key").value.trim());
  $("#key").value = "";
}

async function loadFleet() {
  const robots = await fetchAll("/robots", "robots", { limit: "10000" });
  for (const robot of robots) state.robots.set(robot.robot_id, robot);
  map.update(robots);
  drawFrames($("#frames"), robots);
  renderTable();
  // From navigation start (performance.now's origin) to the frame after the fleet is drawn.
  if (state.firstPaintMs === null) requestAnimationFrame(() => (state.firstPaintMs = Math.round(performance.now())));
}

async function start() {
  const health = await request("/");
  if (health.authentication === "on" && !storedKey()) await signIn();
  for (;;) {
    try {
      await loadFleet();
      break;
    } catch (error) {
      if (!(error instanceof Unauthorized)) throw error;
      storeKey(null);
      await signIn("That key was refused. Try another.");
    }
  }
  $("#sign-out").hidden = !storedKey();
  await alerts.load().catch((error) => console.warn("alerts:", error.message));
  // Geofences come from the rules; a key that may not read them still gets everything else.
  request("/alert-rules?limit=1000").then((page) => map.showGeofences(page.rules)).catch(() => {});
  openStream("/telemetry/stream", (type, data) => {
    if (type === "reading") {
      const reading = JSON.parse(data);
      onReading(reading);
      detail.onReading(reading);
    }
    else if (type.startsWith("alert.")) alerts.apply(JSON.parse(data));
  }, setLive);
  setInterval(() => loadFleet().catch(() => {}), FLEET_REFRESH_MS);
  setInterval(() => {
    if (tableDirty) renderTable();
    else table.tick();
  }, TABLE_REFRESH_MS);
}

start().catch((error) => {
  setLive(`error: ${error.message}`);
  console.error(error);
});
