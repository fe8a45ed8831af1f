// The fleet map: Leaflet with OpenStreetMap tiles over a plain background (offline, only the tiles are missing),
// one marker per robot with its status as a letter and its battery as a badge, geofences, a robot's path; and
// robots that report only a local pose, drawn in their frame on a plain grid.

import * as L from "/console/vendor/leaflet/leaflet-src.esm.js";

export const STATUS_LETTER = { idle: "I", moving: "M", working: "W", charging: "C", error: "E" };
const SVG = "http://www.w3.org/2000/svg";

function iconHtml(robot) {
  const status = robot.status || "unknown";
  const battery = Math.round(robot.battery_level);
  const low = robot.battery_level < 20 ? " low" : "";
  return `<span class="robot s-${status}${robot.online ? "" : " offline"}">${STATUS_LETTER[status] || "?"}</span>` +
    `<span class="badge${low}">${battery}</span>`;
}

// Leaflet renders a tooltip's string as HTML; names come from users, so they go in as text, always.
function textElement(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

export class FleetMap {
  constructor(element, onSelect) {
    this.map = L.map(element, { preferCanvas: false, zoomControl: true }).setView([0, 0], 2);
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      attribution: "&copy; OpenStreetMap contributors",
      // OpenStreetMap asks for a referrer; the API's pages send none by default.
      referrerPolicy: "strict-origin-when-cross-origin",
    }).addTo(this.map);
    this.markers = new Map();
    this.onSelect = onSelect;
    this.fences = L.layerGroup().addTo(this.map);
    this.path = null;
    this.fitted = false;
  }

  // Places, moves or restyles each robot's marker; robots without a location have none.
  update(robots) {
    for (const robot of robots) {
      const location = robot.location;
      let marker = this.markers.get(robot.robot_id);
      if (!location) {
        if (marker) marker.remove();
        this.markers.delete(robot.robot_id);
        continue;
      }
      const html = iconHtml(robot);
      if (!marker) {
        const icon = L.divIcon({ className: "robot-icon", html, iconSize: [34, 22], iconAnchor: [11, 11] });
        marker = L.marker([location.latitude, location.longitude], {
          icon,
          title: robot.robot_id,
          alt: `${robot.robot_id}: ${robot.status || "no status"}, battery ${Math.round(robot.battery_level)} %`,
          keyboard: true,
        });
        marker.on("click", () => this.onSelect(robot.robot_id));
        marker.addTo(this.map);
        marker.html = html;
        this.markers.set(robot.robot_id, marker);
      } else {
        marker.setLatLng([location.latitude, location.longitude]);
        if (marker.html !== html && marker.getElement()) {
          marker.getElement().innerHTML = html;  // restyled in place: no new element per update
          marker.html = html;
        }
      }
    }
    if (!this.fitted && this.markers.size) {
      this.fitted = true;
      const bounds = L.latLngBounds([...this.markers.values()].map((m) => m.getLatLng()));
      this.map.fitBounds(bounds.pad(0.1), { maxZoom: 17 });
    }
  }

  // Geofence rules' areas: allowed ones outlined, forbidden ones filled.
  showGeofences(rules) {
    this.fences.clearLayers();
    for (const rule of rules) {
      const condition = rule.condition;
      if (condition.kind !== "geofence") continue;
      const polygons = condition.geometry.type === "Polygon" ? [condition.geometry.coordinates] : condition.geometry.coordinates;
      for (const polygon of polygons) {
        const rings = polygon.map((ring) => ring.map(([lon, lat]) => [lat, lon]));
        const forbidden = condition.area === "forbidden";
        L.polygon(rings, {
          className: forbidden ? "fence forbidden" : "fence allowed",
          fill: forbidden,
          weight: 2,
          dashArray: forbidden ? null : "6 4",
        }).bindTooltip(textElement(`${rule.name} (${condition.area})`)).addTo(this.fences);
      }
    }
  }

  showPath(points) {
    if (this.path) this.path.remove();
    this.path = points.length ? L.polyline(points, { className: "path", weight: 3 }).addTo(this.map) : null;
  }
}

// Robots with a pose but no location, per frame, on a grid scaled to fit them.
export function drawFrames(container, robots) {
  const byFrame = new Map();
  for (const robot of robots) {
    if (robot.location || !robot.pose) continue;
    if (!byFrame.has(robot.pose.frame)) byFrame.set(robot.pose.frame, []);
    byFrame.get(robot.pose.frame).push(robot);
  }
  container.replaceChildren();
  container.hidden = byFrame.size === 0;
  for (const [frame, members] of byFrame) {
    const xs = members.map((r) => r.pose.x);
    const ys = members.map((r) => r.pose.y);
    const pad = 2;
    const minX = Math.min(...xs) - pad, maxX = Math.max(...xs) + pad;
    const minY = Math.min(...ys) - pad, maxY = Math.max(...ys) + pad;
    const size = Math.max(maxX - minX, maxY - minY);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `${minX} ${-minY - size} ${size} ${size}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `frame ${frame}: ${members.length} robots`);
    const step = 10 ** Math.floor(Math.log10(size / 2));
    for (let g = Math.ceil(minX / step) * step; g <= minX + size; g += step) {
      svg.append(line(g, -minY - size, g, -minY, "grid"));
    }
    for (let g = Math.ceil(minY / step) * step; g <= minY + size; g += step) {
      svg.append(line(minX, -g, minX + size, -g, "grid"));
    }
    for (const robot of members) {
      const dot = document.createElementNS(SVG, "circle");
      Object.entries({ cx: robot.pose.x, cy: -robot.pose.y, r: size / 60 }).forEach(([k, v]) => dot.setAttribute(k, v));
      dot.setAttribute("class", `pose s-${robot.status || "unknown"}`);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${robot.robot_id} (${robot.status || "no status"}) x=${robot.pose.x} y=${robot.pose.y}`;
      dot.append(title);
      svg.append(dot);
    }
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = `frame "${frame}" (grid: ${step} m)`;
    figure.append(svg, caption);
    container.append(figure);
  }
}

function line(x1, y1, x2, y2, className) {
  const element = document.createElementNS(SVG, "line");
  Object.entries({ x1, y1, x2, y2 }).forEach(([k, v]) => element.setAttribute(k, v));
  element.setAttribute("class", className);
  return element;
}
