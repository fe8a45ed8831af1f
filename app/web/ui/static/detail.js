// A robot's detail: battery level and voltage over a picked range (a "last …" range follows the live stream), its
// path on the map with a replay, its readings, and a CSV download. Empty buckets are nulls: gaps stay gaps.

import uPlot from "/console/vendor/uplot/uPlot.esm.js";
import { Forbidden, download, request } from "/console/assets/api.js";

const MAX_PATH_READINGS = 20_000;  // 20 pages of history; a longer range says that its path is cut
const RECENT_ROWS = 100;  // readings listed under the chart, newest first
const LIVE_REDRAW_MS = 5000;  // a live chart re-reads its buckets at most this often, when readings arrived
const VOLTAGE_MIN_SPAN_V = 2;  // the voltage axis spans at least this: a 0.01 V wobble is not drawn as a cliff
const REPLAY_STEP_MS = 40;  // a played replay advances one reading a frame, at most this often

function bucketFor(rangeS) {
  return rangeS <= 3600 ? "1m" : rangeS <= 21600 ? "5m" : rangeS <= 86400 ? "15m" : "1h";
}

// A value with nulls on both sides draws no line: it gets a dot.
function isolatedPoints(u, seriesIdx, show) {
  if (show) return null;
  const values = u.data[seriesIdx];
  const idxs = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] != null && values[i - 1] == null && values[i + 1] == null) idxs.push(i);
  }
  return idxs;
}

function voltageRange(u, min, max) {
  if (min == null || max == null) return [0, VOLTAGE_MIN_SPAN_V];
  const middle = (min + max) / 2;
  const half = Math.max((max - min) / 2 * 1.1, VOLTAGE_MIN_SPAN_V / 2);
  return [middle - half, middle + half];
}

// A <input type="datetime-local"> value (local time) for a Date, and back.
function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

export class RobotDetail {
  constructor(section, map) {
    this.section = section;
    this.map = map;
    this.title = section.querySelector("#detail-title");
    this.range = section.querySelector("#range");
    this.custom = section.querySelector("#custom-range");
    this.from = section.querySelector("#range-from");
    this.to = section.querySelector("#range-to");
    this.status = section.querySelector("#detail-status");
    this.chartBox = section.querySelector("#chart");
    this.recent = section.querySelector("#recent tbody");
    this.slider = section.querySelector("#replay");
    this.play = section.querySelector("#play");
    this.replayTime = section.querySelector("#replay-time");
    this.chart = null;
    this.robotId = null;
    this.track = [];  // the range's readings with a location, oldest first
    this.loading = null;
    this.liveDirty = false;
    this.range.addEventListener("change", () => {
      this.custom.hidden = this.range.value !== "custom";
      if (this.range.value === "custom") this.fillCustom();
      else this.load();
    });
    section.querySelector("#apply-range").addEventListener("click", () => this.load());
    section.querySelector("#close-detail").addEventListener("click", () => this.close());
    section.querySelector("#download").addEventListener("click", () => this.downloadCsv());
    this.slider.addEventListener("input", () => this.showReplay(Number(this.slider.value)));
    this.play.addEventListener("click", () => this.togglePlay());
    setInterval(() => this.redrawLive(), LIVE_REDRAW_MS);
  }

  open(robotId) {
    this.robotId = robotId;
    this.section.hidden = false;
    this.title.textContent = robotId;
    this.title.tabIndex = -1;
    this.title.focus();
    return this.load();
  }

  close() {
    this.section.hidden = true;
    this.robotId = null;
    this.stopPlay();
    this.map.showPath([]);
  }

  live() {
    return this.range.value !== "custom";
  }

  // The picked custom range starts as the last hour, so editing one end is enough.
  fillCustom() {
    if (this.from.value && this.to.value) return;
    const until = new Date();
    this.to.value = localInput(until);
    this.from.value = localInput(new Date(until.getTime() - 3600_000));
  }

  window() {
    if (!this.live()) {
      return { since: new Date(this.from.value).toISOString(), until: new Date(this.to.value).toISOString() };
    }
    const until = new Date();
    const since = new Date(until.getTime() - Number(this.range.value) * 1000);
    return { since: since.toISOString(), until: until.toISOString() };
  }

  async load() {
    this.status.textContent = "";
    if (!this.live() && !(this.from.value && this.to.value && new Date(this.to.value) > new Date(this.from.value))) {
      this.status.textContent = "Pick a start and an end after it.";
      return;
    }
    const loading = (this.loading = {});
    try {
      await this.loadRange(loading);
    } catch (error) {
      if (loading !== this.loading) return;
      this.status.textContent = error instanceof Forbidden
        ? `${error.message} (this key may not read this robot's history)`
        : error.message;
    }
  }

  async loadRange(loading) {
    const id = encodeURIComponent(this.robotId);
    const range = this.window();
    const spanS = (Date.parse(range.until) - Date.parse(range.since)) / 1000;
    const bucket = bucketFor(spanS);
    const series = await request(`/telemetry/${id}?${new URLSearchParams({ ...range, bucket })}`);
    if (loading !== this.loading) return;
    this.drawChart(series.buckets);
    const readings = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ ...range, limit: "1000", ...(cursor ? { cursor } : {}) });
      const page = await request(`/telemetry/${id}?${query}`);
      readings.push(...page.readings);
      cursor = page.next_cursor;
    } while (cursor && readings.length < MAX_PATH_READINGS);
    if (loading !== this.loading) return;
    if (cursor) this.status.textContent = `The path shows the newest ${readings.length} readings of this range.`;
    this.readings = readings;  // newest first, as the API pages them
    this.track = readings.filter((r) => r.location).reverse();
    this.map.showPath(this.track.map((r) => [r.location.latitude, r.location.longitude]));
    this.resetReplay();
    this.showRecent();
  }

  // A streamed reading of this robot: listed at once; the chart and path follow when the range is a "last …" one.
  onReading(reading) {
    if (reading.robot_id !== this.robotId || !this.live() || !this.readings) return;
    this.readings.unshift(reading);
    if (this.readings.length > MAX_PATH_READINGS) this.readings.pop();
    this.showRecent();
    if (reading.location) {
      this.track.push(reading);
      if (this.map.path) this.map.path.addLatLng([reading.location.latitude, reading.location.longitude]);
      this.slider.max = String(Math.max(0, this.track.length - 1));
    }
    this.liveDirty = true;
  }

  redrawLive() {
    if (!this.liveDirty || !this.robotId || !this.live()) return;
    this.liveDirty = false;
    const id = encodeURIComponent(this.robotId);
    const robotId = this.robotId;
    const range = this.window();
    const bucket = bucketFor(Number(this.range.value));
    request(`/telemetry/${id}?${new URLSearchParams({ ...range, bucket })}`)
      .then((series) => robotId === this.robotId && this.live() && this.drawChart(series.buckets))
      .catch(() => {});
  }

  redraw() {
    if (this.chart && this.buckets) this.drawChart(this.buckets);
  }

  drawChart(buckets) {
    this.buckets = buckets;
    const ink = getComputedStyle(document.documentElement).getPropertyValue("--muted").trim();
    const grid = { stroke: getComputedStyle(document.documentElement).getPropertyValue("--line").trim() };
    const x = buckets.map((b) => Date.parse(b.start) / 1000);
    const level = buckets.map((b) => b.battery_level_avg);
    const voltage = buckets.map((b) => b.battery_voltage_avg);
    const points = { filter: isolatedPoints, size: 6 };
    const options = {
      width: Math.max(300, this.chartBox.clientWidth || 600),
      height: 220,
      series: [
        {},
        { label: "battery %", stroke: "#2f7bd9", width: 2, scale: "%", spanGaps: false, points },
        { label: "voltage V", stroke: "#e0a020", width: 2, scale: "V", spanGaps: false, points },
      ],
      axes: [{ stroke: ink, grid }, { scale: "%", stroke: ink, grid }, { scale: "V", side: 1, stroke: ink, grid }],
      scales: { "%": { range: [0, 100] }, V: { range: voltageRange } },
    };
    if (this.chart) this.chart.destroy();
    this.chart = new uPlot(options, [x, level, voltage], this.chartBox);
    this.chart.robotId = this.robotId;  // whose chart this is (the tests wait for the right one)
  }

  showRecent() {
    this.recent.replaceChildren(...this.readings.slice(0, RECENT_ROWS).map((r) => {
      const tr = document.createElement("tr");
      const position = r.location
        ? `${r.location.latitude.toFixed(5)}, ${r.location.longitude.toFixed(5)}`
        : r.pose ? `${r.pose.frame}: ${r.pose.x}, ${r.pose.y}` : "—";
      for (const text of [new Date(r.timestamp).toLocaleString(), r.status || "—",
        `${r.battery_level} %`, r.battery_voltage == null ? "—" : `${r.battery_voltage} V`, position]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  // Replay: the slider walks the range's path, reading by reading, oldest first.
  resetReplay() {
    this.stopPlay();
    this.slider.max = String(Math.max(0, this.track.length - 1));
    this.slider.value = "0";
    this.slider.disabled = this.play.disabled = this.track.length === 0;
    this.replayTime.textContent = this.track.length ? "" : "no positions in this range";
  }

  showReplay(index) {
    const reading = this.track[index];
    if (!reading) return;
    this.map.showReplay([reading.location.latitude, reading.location.longitude]);
    this.replayTime.dataset.time = reading.timestamp;
    this.replayTime.textContent = `${new Date(reading.timestamp).toLocaleString()}: ${reading.status || "no status"}, ` +
      `battery ${reading.battery_level} %`;
  }

  togglePlay() {
    if (this.timer) return this.stopPlay();
    if (Number(this.slider.value) >= this.track.length - 1) this.slider.value = "0";
    this.play.textContent = "Pause";
    this.timer = setInterval(() => {
      const next = Number(this.slider.value) + 1;
      if (next >= this.track.length) return this.stopPlay();
      this.slider.value = String(next);
      this.showReplay(next);
    }, REPLAY_STEP_MS);
  }

  stopPlay() {
    clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = "Play";
  }

  async downloadCsv() {
    const query = new URLSearchParams(this.window());
    try {
      await download(`/telemetry/${encodeURIComponent(this.robotId)}/export.csv?${query}`, `${this.robotId}.csv`);
      this.status.textContent = "";
    } catch (error) {
      this.status.textContent = `${error.message} (a CSV download needs the export scope)`;
    }
  }
}
