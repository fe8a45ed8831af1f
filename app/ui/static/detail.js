// A robot's detail: battery level and voltage over a range from the bucket endpoint, drawn with uPlot (empty
// buckets are nulls, so gaps stay gaps), its path on the map, its recent readings, and a CSV download.

import uPlot from "/console/vendor/uplot/uPlot.esm.js";
import { download, request } from "/console/assets/api.js";

const MAX_PATH_READINGS = 5000;

function bucketFor(rangeS) {
  return rangeS <= 3600 ? "1m" : rangeS <= 21600 ? "5m" : "15m";
}

export class RobotDetail {
  constructor(section, map) {
    this.section = section;
    this.map = map;
    this.title = section.querySelector("#detail-title");
    this.range = section.querySelector("#range");
    this.chartBox = section.querySelector("#chart");
    this.recent = section.querySelector("#recent tbody");
    this.chart = null;
    this.robotId = null;
    this.range.addEventListener("change", () => this.load());
    section.querySelector("#close-detail").addEventListener("click", () => this.close());
    section.querySelector("#download").addEventListener("click", () => this.downloadCsv());
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
    this.map.showPath([]);
  }

  window() {
    const until = new Date();
    const since = new Date(until.getTime() - Number(this.range.value) * 1000);
    return { since: since.toISOString(), until: until.toISOString() };
  }

  async load() {
    const robotId = this.robotId;
    const id = encodeURIComponent(robotId);
    const range = this.window();
    const bucket = bucketFor(Number(this.range.value));
    const series = await request(`/telemetry/${id}?${new URLSearchParams({ ...range, bucket })}`);
    if (robotId !== this.robotId) return;
    this.drawChart(series.buckets);
    const readings = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ ...range, limit: "1000", ...(cursor ? { cursor } : {}) });
      const page = await request(`/telemetry/${id}?${query}`);
      readings.push(...page.readings);
      cursor = page.next_cursor;
    } while (cursor && readings.length < MAX_PATH_READINGS);
    if (robotId !== this.robotId) return;
    this.map.showPath(readings.filter((r) => r.location).map((r) => [r.location.latitude, r.location.longitude]));
    this.showRecent(readings.slice(0, 20));
  }

  drawChart(buckets) {
    const x = buckets.map((b) => Date.parse(b.start) / 1000);
    const level = buckets.map((b) => b.battery_level_avg);
    const voltage = buckets.map((b) => b.battery_voltage_avg);
    const options = {
      width: Math.max(320, this.chartBox.clientWidth || 600),
      height: 220,
      series: [
        {},
        { label: "battery %", stroke: "#2f7bd9", width: 2, scale: "%", spanGaps: false },
        { label: "voltage V", stroke: "#e0a020", width: 2, scale: "V", spanGaps: false },
      ],
      axes: [{ stroke: "#c8d0da" }, { scale: "%", stroke: "#c8d0da" }, { scale: "V", side: 1, stroke: "#c8d0da" }],
      scales: { "%": { range: [0, 100] } },
    };
    if (this.chart) this.chart.destroy();
    this.chart = new uPlot(options, [x, level, voltage], this.chartBox);
    this.chart.robotId = this.robotId;  // whose chart this is (the tests wait for the right one)
  }

  showRecent(readings) {
    this.recent.replaceChildren(...readings.map((r) => {
      const tr = document.createElement("tr");
      const position = r.location
        ? `${r.location.latitude.toFixed(5)}, ${r.location.longitude.toFixed(5)}`
        : r.pose ? `${r.pose.frame}: ${r.pose.x}, ${r.pose.y}` : "—";
      for (const text of [new Date(r.timestamp).toLocaleTimeString(), r.status || "—",
        `${r.battery_level} %`, r.battery_voltage == null ? "—" : `${r.battery_voltage} V`, position]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  async downloadCsv() {
    const status = this.section.querySelector("#detail-status");
    const query = new URLSearchParams(this.window());
    try {
      await download(`/telemetry/${encodeURIComponent(this.robotId)}/export.csv?${query}`, `${this.robotId}.csv`);
      status.textContent = "";
    } catch (error) {
      status.textContent = `${error.message} (a CSV download needs the export scope)`;
    }
  }
}
