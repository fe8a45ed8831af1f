// The API as the console uses it: every request with the operator key in a header (never in a URL), and the
// live stream read with fetch, since EventSource cannot send a header. The key lives in sessionStorage only.

const KEY_ITEM = "fleet-console-key";

export class Unauthorized extends Error {}
export class Forbidden extends Error {}

async function problemDetail(response) {
  try {
    return (await response.json()).detail || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

function headers(extra = {}) {
  const key = storedKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export async function request(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (response.status === 401) throw new Unauthorized("the key was refused");
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const failure = response.status === 403 ? Forbidden : Error;
    throw new failure(problem.detail || `${method} ${path}: HTTP ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

// Every page of a paged list (limit/cursor/next_cursor), joined.
export async function fetchAll(path, field, params = {}) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ ...params, ...(cursor ? { cursor } : {}) });
    const page = await request(`${path}?${query}`);
    items.push(...page[field]);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export async function download(path, filename) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new Error(`download failed: HTTP ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Server-Sent Events over fetch: calls onEvent(type, data) per event, reconnects with Last-Event-ID after
// `retry` ms, and reports the connection state through onState("live" | "reconnecting" | "signed out").
export function openStream(path, onEvent, onState) {
  let lastId = null;
  let retryMs = 2000;
  let stopped = false;
  const controller = new AbortController();

  async function readOnce() {
    const response = await fetch(path, {
      headers: headers(lastId ? { "Last-Event-ID": lastId } : {}),
      signal: controller.signal,
    });
    if (response.status === 401) throw new Unauthorized("the key was refused");
    if (response.status === 403) throw new Forbidden(await problemDetail(response));
    if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
    onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (event.data.length) onEvent(event.type, event.data.join("\n"));
          event = { type: "message", data: [] };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.type = text;
          else if (field === "data") event.data.push(text);
          else if (field === "id") lastId = text;
          else if (field === "retry") retryMs = Number(text) || retryMs;
        }
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await readOnce();
      } catch (error) {
        if (error instanceof Unauthorized) {
          onState("signed out");
          return;
        }
        if (error instanceof Forbidden) {  // retrying cannot help: the key lacks the scope
          onState(`no live updates: ${error.message}`);
          return;
        }
        if (stopped) return;
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}
