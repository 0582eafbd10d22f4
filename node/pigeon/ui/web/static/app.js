// Pigeon Node page behaviour: live updates over /ws, the chat composer, the device panel.
// Plain JavaScript, no build step. Text from the network only ever goes in via textContent,
// into an element with dir="auto": its direction is its own, isolated from the text around it.
"use strict";

const STATE_LABELS = {
  queued: "queued",
  sent: "sent",
  relayed: "relayed",
  delivered: "delivered",
  failed: "failed",
};
const page = document.body.dataset.page;

// The node's clock setting (`[node] clock`), shared with its OLED: 18:54 or 6:54pm.
const TWELVE_HOUR = document.body.dataset.clock === "12h";

function localTime(seconds) {
  const date = new Date(seconds * 1000);
  const minutes = String(date.getMinutes()).padStart(2, "0");
  if (!TWELVE_HOUR) return `${String(date.getHours()).padStart(2, "0")}:${minutes}`;
  const suffix = date.getHours() < 12 ? "am" : "pm";
  return `${((date.getHours() + 11) % 12) + 1}:${minutes}${suffix}`;
}

function showLocalTimes(root) {
  for (const node of root.querySelectorAll("time[data-at]")) {
    node.textContent = localTime(Number(node.dataset.at));
  }
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    window.location.assign("/pair");
    throw new Error("not paired");
  }
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : {};
  if (!response.ok) throw new Error(data.error || `request failed (${response.status})`);
  return data;
}

// Live updates -------------------------------------------------------------------------------

const listeners = [];
const onConnect = []; // run at each (re)connect: events sent while not connected were missed

function connect(delay) {
  const indicator = document.getElementById("conn");
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws`);
  socket.addEventListener("open", () => {
    indicator?.classList.add("live");
    indicator?.classList.remove("down");
    delay = 1000;
    for (const hook of onConnect) hook();
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "lock_changed" || data.type === "resync" || data.type === "revoked") {
      window.location.reload();
      return;
    }
    for (const listener of listeners) listener(data);
  });
  socket.addEventListener("close", () => {
    indicator?.classList.remove("live");
    indicator?.classList.add("down");
    window.setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  });
}

// Chat ---------------------------------------------------------------------------------------

function svgIcon(pathData) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  for (const d of pathData) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function fileBody(message) {
  const box = document.createElement("div");
  box.className = "file";
  box.append(svgIcon(["M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z", "M14 2v6h6"]));
  const grow = document.createElement("div");
  grow.className = "grow";
  const done = message.file_progress !== null && message.file_progress >= 1;
  const name = document.createElement(done ? "a" : "span");
  name.className = "name";
  name.dir = "auto";
  name.textContent = message.file_name;
  if (done) {
    name.href = message.file_url;
    name.setAttribute("download", message.file_name);
  }
  const size = document.createElement("div");
  size.className = "small";
  size.textContent = sizeText(message.file_size || 0);
  grow.append(name, size);
  if (message.file_progress !== null && message.file_progress < 1) {
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = message.file_progress;
    grow.append(bar);
  }
  box.append(grow);
  return box;
}

function messageNode(message) {
  const node = document.createElement("div");
  node.className = `msg ${message.direction}`;
  node.id = `m-${message.id}`;
  node.dataset.id = message.id;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  if (message.kind === "file") bubble.append(fileBody(message));
  else {
    bubble.dir = "auto";
    bubble.textContent = message.text;
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  const time = document.createElement("time");
  time.dataset.at = message.created_at;
  time.textContent = localTime(message.created_at);
  meta.append(time);
  if (message.direction === "out") {
    const state = document.createElement("span");
    state.className = `state ${message.state}`;
    state.dataset.role = "state";
    state.textContent = STATE_LABELS[message.state] || message.state;
    meta.append(state);
  }
  if (message.state === "failed" && message.failure_reason) {
    const reason = document.createElement("span");
    reason.className = "small";
    reason.textContent = message.failure_reason;
    meta.append(reason);
  }
  node.append(bubble, meta);
  return node;
}

function scrollToEnd() {
  window.scrollTo({ top: document.body.scrollHeight });
}

function initChat() {
  const contactId = document.body.dataset.contact;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const text = document.getElementById("text");
  const file = document.getElementById("file");
  const note = document.getElementById("composer-note");
  const maxUpload = Number(document.body.dataset.maxUpload);

  function upsert(message) {
    if (message.contact_id !== contactId) return;
    document.getElementById("no-messages")?.remove();
    const fresh = messageNode(message);
    const old = document.getElementById(`m-${message.id}`);
    if (old) old.replaceWith(fresh);
    else {
      list.append(fresh);
      scrollToEnd();
    }
    if (message.direction === "in" && document.visibilityState === "visible") markRead();
  }

  function complain(text) {
    note.textContent = text;
    note.classList.toggle("hidden", !text);
  }

  let readPending = false;
  function markRead() {
    if (readPending) return;
    readPending = true;
    api("POST", `/api/contacts/${contactId}/read`)
      .catch(() => {})
      .finally(() => {
        readPending = false;
      });
  }

  listeners.push((event) => {
    if (event.type === "message_added" || event.type === "message_updated") upsert(event.message);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = text.value;
    if (!body.trim()) return;
    complain("");
    text.disabled = true;
    try {
      const data = await api("POST", `/api/contacts/${contactId}/messages`, { text: body });
      text.value = "";
      upsert(data.message);
    } catch (error) {
      complain(error.message);
    } finally {
      text.disabled = false;
      text.focus();
    }
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    file.value = "";
    if (!chosen) return;
    if (chosen.size > maxUpload) {
      complain(`That file is ${sizeText(chosen.size)}; the limit is ${sizeText(maxUpload)}.`);
      return;
    }
    complain(`Uploading ${chosen.name}…`);
    const body = new FormData();
    body.append("file", chosen, chosen.name);
    try {
      const data = await api("POST", `/api/contacts/${contactId}/files`, body);
      complain("");
      upsert(data.message);
    } catch (error) {
      complain(error.message);
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") markRead();
  });
  const older = document.getElementById("older");
  older?.addEventListener("click", async () => {
    older.disabled = true;
    const path = `/api/contacts/${contactId}/messages?before=${older.dataset.before}&limit=100`;
    try {
      const data = await api("GET", path);
      const anchor = older.parentElement.nextElementSibling;
      for (const message of data.messages) {
        if (!document.getElementById(`m-${message.id}`)) list.insertBefore(messageNode(message), anchor);
      }
      if (data.messages.length < 100) older.parentElement.remove();
      else older.dataset.before = data.messages[0].seq;
    } finally {
      older.disabled = false;
    }
  });
  markRead();
  scrollToEnd();
}

// Conversations, status, device, card --------------------------------------------------------

function initChats() {
  listeners.push((event) => {
    if (event.type === "message_added" || event.type === "contacts_changed") {
      window.location.reload();
    }
  });
}

function initNode() {
  const box = document.getElementById("status");
  window.setInterval(async () => {
    const response = await fetch("/node/live", { credentials: "same-origin" });
    if (response.ok) box.innerHTML = await response.text(); // server-rendered, autoescaped
  }, 5000);
}

function initDevice() {
  const screen = document.getElementById("oled");
  let busy = false;
  window.setInterval(() => {
    if (busy || document.visibilityState !== "visible") return;
    busy = true;
    const next = new Image();
    next.onload = () => {
      screen.src = next.src;
      busy = false;
    };
    next.onerror = () => {
      busy = false;
    };
    next.src = `/api/panel/frame.png?t=${Date.now()}`;
  }, 400);
  // A sleeping screen is a dark frame: say so, or the mirror looks broken.
  const asleep = document.getElementById("oled-asleep");
  window.setInterval(async () => {
    if (document.visibilityState !== "visible") return;
    try {
      const state = await api("GET", "/api/panel/state");
      asleep.classList.toggle("hidden", !state.asleep);
    } catch {
      // offline for a moment: the next tick asks again
    }
  }, 1000);
  for (const button of document.querySelectorAll("[data-button]")) {
    // "a b" holds both at once (the identity reset), which one mouse pointer cannot do.
    const ids = button.dataset.button.split(" ");
    const send = (path) => {
      for (const id of ids) api("POST", path, { button: id }).catch(() => {});
    };
    const down = (event) => {
      event.preventDefault();
      button.setPointerCapture?.(event.pointerId);
      button.classList.add("down");
      send("/api/panel/press");
    };
    const up = () => {
      if (!button.classList.contains("down")) return;
      button.classList.remove("down");
      send("/api/panel/release");
    };
    button.addEventListener("pointerdown", down);
    button.addEventListener("pointerup", up);
    button.addEventListener("pointercancel", up);
    button.addEventListener("contextmenu", (event) => event.preventDefault());
  }
}

function initCard() {
  const copy = document.getElementById("copy-card");
  copy.addEventListener("click", async () => {
    const text = document.getElementById("own-card");
    try {
      await navigator.clipboard.writeText(text.value);
    } catch {
      text.select();
      document.execCommand("copy");
    }
    document.getElementById("copy-done").textContent = "Copied.";
  });
}

function initContacts() {
  const photo = document.getElementById("photo");
  photo?.addEventListener("change", () => {
    document.getElementById("photo-name").textContent = photo.files[0]?.name || "";
  });
}

// The Chats tab's unread count, kept current on every page but the chats list (which reloads
// itself): a message arriving, or a conversation read (also the one open here), changes it.
function followUnread() {
  const tab = document.querySelector('nav.tabs a[href="/"]');
  if (!tab) return;
  let running = false;
  let again = false;
  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const data = await api("GET", "/api/contacts");
      const total = data.contacts.reduce((sum, contact) => sum + contact.unread, 0);
      let dot = document.getElementById("unread-total");
      if (total && !dot) {
        dot = document.createElement("span");
        dot.className = "dot";
        dot.id = "unread-total";
        tab.append(dot);
      }
      if (dot && total) dot.textContent = String(total);
      else dot?.remove();
    } catch {
      // locked or offline: the next event or reload corrects it
    } finally {
      running = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }
  listeners.push((event) => {
    if (event.type === "message_added" || event.type === "contacts_changed") refresh();
  });
  onConnect.push(refresh);
}

// Neighbourhood: bitchat's public lines, appended live ---------------------------------------

function initNeighbourhood() {
  const list = document.getElementById("public-lines");
  if (!list) return;
  listeners.push((event) => {
    if (event.type !== "neighbourhood_heard") return;
    list.querySelector(".empty")?.remove();
    const item = document.createElement("li");
    if (event.line.mine) item.classList.add("mine");
    const from = document.createElement("span");
    from.className = "mono small muted";
    from.textContent = event.line.from;
    const who = document.createElement("strong");
    who.textContent = event.line.nickname;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = event.line.text;
    item.append(from, " ", who, ": ", text);
    list.append(item);
  });
}

const INIT = {
  chat: initChat,
  chats: initChats,
  node: initNode,
  device: initDevice,
  card: initCard,
  contacts: initContacts,
  neighbourhood: initNeighbourhood,
};
showLocalTimes(document);
INIT[page]?.();
if (page !== "chats") followUnread();
// The reset page stays off the socket: the reset revokes every browser, and a reload on
// "revoked" would race the form's own answer (which clears the cookie and goes to /pair).
if (page !== "pair" && page !== "reset") connect(1000);
