// The fleet map: Leaflet with OpenStreetMap tiles over a grid and a scale that need no network, robots clustered
// (a cluster shows its count and its worst state), "fit fleet", geofences, a robot's path and its replay; and
// robots that report only a local pose, drawn in their frame on a plain grid.

// Leaflet and Leaflet.markercluster are classic scripts (index.html): the plugin extends the global L.
const L = window.L;

export const STATUS_LETTER = { idle: "I", moving: "M", working: "W", charging: "C", error: "E" };
const SVG = "http://www.w3.org/2000/svg";
const TILES_SILENT_MS = 4000;  // no tile loaded this long after asking: the tile server is hanging or unreachable
// "Fit fleet" leaves out robots farther from the fleet's median point than this many times the distance of its
// nearest three quarters (and never nearer than OUTLIER_MIN_M): one robot 37 km away no longer shrinks the site to
// a dot, while two sites with half the fleet each both stay in view.
const OUTLIER_FACTOR = 5;
const OUTLIER_MIN_M = 500;
const OUTLIER_FROM = 10;  // robots; fewer are all kept in view
const LEVELS = ["ok", "warn", "error"];

function iconHtml(robot) {
  const status = robot.status || "unknown";
  const battery = Math.round(robot.battery_level);
  const low = robot.battery_level < 20 ? " low" : "";
  return `<span class="robot s-${status}${robot.online ? "" : " offline"}">${STATUS_LETTER[status] || "?"}</span>` +
    `<span class="badge${low}">${battery}</span>`;
}

function robotIcon(html) {
  return L.divIcon({ className: "robot-icon", html, iconSize: [34, 22], iconAnchor: [11, 11] });
}

// What a cluster's colour says: 2 if a robot in it is in error, 1 if one is offline or low, else 0.
function levelOf(robot) {
  if (robot.status === "error") return 2;
  return !robot.online || robot.battery_level < 20 ? 1 : 0;
}

function clusterIcon(cluster) {
  const markers = cluster.getAllChildMarkers();
  let level = 0;
  for (const marker of markers) level = Math.max(level, marker.level);
  const size = markers.length < 100 ? 34 : 42;
  return L.divIcon({
    className: `cluster cluster-${LEVELS[level]}`,
    html: `<span>${markers.length}</span>`,
    iconSize: [size, size],
  });
}

// Leaflet renders a tooltip's string as HTML; names come from users, so they go in as text, always.
function textElement(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

// Lines every 256 px with the coordinates of each corner: where the tiles are missing, the map still reads.
const Graticule = L.GridLayer.extend({
  createTile(coords) {
    const tile = document.createElement("div");
    tile.className = "graticule";
    const corner = this._map.unproject(coords.scaleBy(this.getTileSize()), coords.z);
    tile.textContent = `${corner.lat.toFixed(4)}, ${corner.lng.toFixed(4)}`;
    return tile;
  },
});

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

// The bounds of the robots but for far outliers (see OUTLIER_FACTOR); null without robots.
export function fleetBounds(latLngs) {
  if (latLngs.length < OUTLIER_FROM) return latLngs.length ? L.latLngBounds(latLngs) : null;
  const centre = L.latLng(median(latLngs.map((p) => p.lat)), median(latLngs.map((p) => p.lng)));
  const distances = latLngs.map((p) => centre.distanceTo(p));
  const near = [...distances].sort((a, b) => a - b)[Math.floor((distances.length - 1) * 0.75)];
  const limit = Math.max(OUTLIER_FACTOR * near, OUTLIER_MIN_M);
  return L.latLngBounds(latLngs.filter((_, i) => distances[i] <= limit));
}

export class FleetMap {
  constructor(element, onSelect) {
    this.map = L.map(element, { zoomControl: true }).setView([0, 0], 2);
    new Graticule({ zIndex: 0 }).addTo(this.map);
    this.tiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      zIndex: 1,
      attribution: "&copy; OpenStreetMap contributors",
      // OpenStreetMap asks for a referrer; the API's pages send none by default.
      referrerPolicy: "strict-origin-when-cross-origin",
    }).addTo(this.map);
    L.control.scale({ imperial: false }).addTo(this.map);
    this.notice = this.addNotice();
    this.watchTiles();
    this.cluster = L.markerClusterGroup({
      chunkedLoading: true,  // a first load of thousands of markers is added over several frames
      animate: false,  // clusters split and merge at once: no transition frames at fleet scale
      showCoverageOnHover: false,
      maxClusterRadius: 45,
      disableClusteringAtZoom: 18,
      iconCreateFunction: clusterIcon,
    }).addTo(this.map);
    this.addFitControl();
    this.markers = new Map();
    this.onSelect = onSelect;
    this.fences = L.layerGroup().addTo(this.map);
    this.path = null;
    this.replay = null;
    this.fitted = false;
  }

  addNotice() {
    const Notice = L.Control.extend({
      onAdd() {
        const box = L.DomUtil.create("div", "map-notice");
        box.setAttribute("role", "status");
        box.hidden = true;
        return box;
      },
    });
    const control = new Notice({ position: "topright" }).addTo(this.map);
    return control.getContainer();
  }

  // Failing tiles say so at once; hanging ones after TILES_SILENT_MS. A tile that arrives later clears the notice.
  watchTiles() {
    const warn = (text) => {
      this.notice.textContent = text;
      this.notice.hidden = false;
    };
    let loaded = false;
    this.tiles.on("tileload", () => {
      loaded = true;
      this.notice.hidden = true;
    });
    this.tiles.on("tileerror", () => {
      if (!loaded) warn("Map tiles cannot be loaded: robots are drawn on a grid, with the scale below.");
    });
    setTimeout(() => {
      if (!loaded && this.notice.hidden) warn("Map tiles are not answering: robots are drawn on a grid, with the scale below.");
    }, TILES_SILENT_MS);
  }

  addFitControl() {
    const Fit = L.Control.extend({
      onAdd: () => {
        const button = L.DomUtil.create("button", "fit-fleet");
        button.type = "button";
        button.textContent = "Fit fleet";
        L.DomEvent.disableClickPropagation(button);
        L.DomEvent.on(button, "click", () => this.fitFleet());
        return button;
      },
    });
    this.fitButton = new Fit({ position: "topleft" }).addTo(this.map).getContainer();
  }

  // The robots in view, but for a far outlier or two; the button says how many are left outside.
  fitFleet() {
    const points = [...this.markers.values()].map((m) => m.getLatLng());
    const bounds = fleetBounds(points);
    if (!bounds) return;
    this.map.fitBounds(bounds.pad(0.1), { maxZoom: 17, animate: false });
    const view = this.map.getBounds();
    const outside = points.filter((p) => !view.contains(p)).length;
    this.fitButton.title = outside === 0 ? "every robot is in view"
      : outside === 1 ? "1 robot is outside this view" : `${outside} robots are outside this view`;
  }

  // Places, moves or restyles each robot's marker; robots without a location have none.
  update(robots) {
    const added = [];
    const relevelled = [];
    for (const robot of robots) {
      const location = robot.location;
      let marker = this.markers.get(robot.robot_id);
      if (!location) {
        if (marker) this.cluster.removeLayer(marker);
        this.markers.delete(robot.robot_id);
        continue;
      }
      const html = iconHtml(robot);
      const level = levelOf(robot);
      if (!marker) {
        // Not a Tab stop each: the robot table is the keyboard's way to a robot.
        marker = L.marker([location.latitude, location.longitude], {
          icon: robotIcon(html),
          title: robot.robot_id,
          alt: `${robot.robot_id}: ${robot.status || "no status"}, battery ${Math.round(robot.battery_level)} %`,
          keyboard: false,
        });
        marker.on("click", () => this.onSelect(robot.robot_id));
        Object.assign(marker, { html, level });
        this.markers.set(robot.robot_id, marker);
        added.push(marker);
        continue;
      }
      const at = marker.getLatLng();
      if (at.lat !== location.latitude || at.lng !== location.longitude) {
        marker.setLatLng([location.latitude, location.longitude]);  // the cluster group re-files it
      }
      if (marker.html !== html) {
        if (marker.getElement()) marker.getElement().innerHTML = html;  // restyled in place: no new element
        marker.options.icon = robotIcon(html);  // what it is drawn with when it next leaves a cluster
        marker.html = html;
      }
      if (marker.level !== level) {
        marker.level = level;
        relevelled.push(marker);
      }
    }
    if (added.length) this.cluster.addLayers(added);
    if (relevelled.length) this.cluster.refreshClusters(relevelled);
    if (!this.fitted && this.markers.size) {
      this.fitted = true;
      this.fitFleet();
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

  // A robot's path over the picked range, and the view moved to it.
  showPath(points) {
    if (this.path) this.path.remove();
    this.showReplay(null);
    this.path = points.length ? L.polyline(points, { className: "path", weight: 3 }).addTo(this.map) : null;
    if (this.path) this.map.fitBounds(this.path.getBounds().pad(0.2), { maxZoom: 18, animate: false });
  }

  // The replay's position on the path (null: none).
  showReplay(point) {
    if (!point) {
      if (this.replay) this.replay.remove();
      this.replay = null;
      return;
    }
    if (!this.replay) {
      this.replay = L.circleMarker(point, { className: "replay", radius: 8, weight: 3 }).addTo(this.map);
    } else {
      this.replay.setLatLng(point);
    }
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
