// Mnemo web page: plain JS, no build, no network beyond this gateway.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { threadId: null, info: null, pollTimer: null };
// the id rule the gateway enforces (mnemo_common.ids.ID_PATTERN)
const ID_RE = /^[A-Za-z0-9._@+-]{1,128}$/;

function authNone() { return !state.info || state.info.auth_mode === "none"; }
function typedUser() { return ($("user-id").value || "").trim(); }
// auth none: the user named on this page (never the gateway's shared default user);
// with a credential: the credential's user ("me") unless another one is named
function userId() { return typedUser() || (authNone() ? "" : "me"); }
function userPath(rest) { return `/v1/users/${encodeURIComponent(userId())}${rest}`; }

function headers(extra) {
  const h = Object.assign({ "Content-Type": "application/json" }, extra || {});
  const key = ($("api-key").value || "").trim();
  if (key) h["Authorization"] = "Bearer " + key;
  if (typedUser()) h["X-Mnemo-User-Id"] = typedUser();
  return h;
}

// auth none and nobody named yet: ask for a name before anything is read or sent
function needUser() {
  const missing = authNone() && !ID_RE.test(typedUser());
  $("user-picker").hidden = !missing;
  $("main").hidden = missing;
  if (missing) $("pick-user").focus();
  return missing;
}

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty body */ }
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || res.statusText);
    err.status = res.status; err.code = data && data.error && data.error.code;
    throw err;
  }
  return data;
}

function setStatus(text) { $("status").textContent = text || ""; }

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.dataset.testid = "msg-" + role;
  div.setAttribute("data-testid", "msg-" + role);
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

function showMemoryState(value) {
  const el = $("memory-state");
  if (value === "degraded") {
    el.hidden = false; el.className = "badge degraded";
    el.textContent = "memory degraded: part of memory was missing or the turn was not stored";
  } else if (value === "off") {
    el.hidden = false; el.className = "badge"; el.textContent = "memory off";
  } else { el.hidden = true; }
}

// --- chat, streamed over Server-Sent Events ---------------------------------------------

async function send(prompt) {
  addMessage("user", prompt);
  const bubble = addMessage("assistant", "");
  bubble.classList.add("streaming");
  $("send").disabled = true;
  setStatus("thinking…");
  const body = { prompt, stream: true, thread_id: state.threadId || undefined };
  if (userId() !== "me") body.user_id = userId();
  try {
    const res = await fetch("/v1/chat", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    showMemoryState(res.headers.get("X-Mnemo-Memory"));
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      throw new Error((data.error && data.error.message) || res.statusText);
    }
    state.threadId = res.headers.get("X-Mnemo-Thread-Id") || state.threadId;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        let event = "message", data = "";
        for (const line of frame.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        const doc = data ? JSON.parse(data) : {};
        if (event === "delta") { bubble.textContent += doc.text; setStatus("answering…"); }
        else if (event === "done") {
          bubble.classList.remove("streaming");
          bubble.dataset.done = "1";
          showMemoryState(doc.memory);  // final: degraded when the turn was not stored
          setStatus(doc.committed ? "remembered" : "not stored (memory unavailable)");
          if (doc.committed) watchMemory();
        } else if (event === "error") {
          throw new Error(doc.error ? doc.error.message : "stream failed");
        }
      }
    }
  } catch (err) {
    bubble.remove();
    addMessage("error", "Error: " + err.message);
    setStatus("");
  } finally {
    $("send").disabled = false;
    loadThreads();
  }
}

// --- threads ----------------------------------------------------------------------------

async function loadThreads() {
  const list = $("threads");
  if (!userId()) return;
  try {
    const data = await api("GET", userPath("/threads"));
    list.replaceChildren();
    for (const t of data.threads) {
      const li = document.createElement("li");
      li.textContent = t.title || t.thread_id;
      li.title = `${t.message_count} messages`;
      li.setAttribute("data-testid", "thread");
      li.dataset.threadId = t.thread_id;
      if (t.thread_id === state.threadId) li.classList.add("active");
      li.onclick = () => openThread(t.thread_id);
      list.appendChild(li);
    }
  } catch (err) {
    list.replaceChildren();
    const li = document.createElement("li"); li.className = "note";
    li.textContent = "threads unavailable: " + err.message; list.appendChild(li);
  }
}

async function openThread(threadId) {
  state.threadId = threadId;
  $("messages").replaceChildren();
  try {
    const data = await api("GET", userPath(`/threads/${encodeURIComponent(threadId)}`));
    if (data.summary) addMessage("assistant", "(earlier, summarised) " + data.summary);
    for (const m of data.messages) addMessage(m.role === "user" ? "user" : "assistant", m.content);
  } catch (err) { addMessage("error", "Error: " + err.message); }
  loadThreads();
}

function newThread() {
  clearTimeout(state.pollTimer);
  state.threadId = null;
  $("messages").replaceChildren();
  setStatus("new conversation");
  loadThreads();
  loadMemory();
}

// --- what I remember about you ----------------------------------------------------------

function row(text, actions) {
  const li = document.createElement("li");
  const span = document.createElement("span"); span.className = "text"; span.textContent = text;
  li.appendChild(span);
  for (const [label, fn, testid] of actions) {
    const b = document.createElement("button"); b.className = "small"; b.textContent = label;
    b.setAttribute("data-testid", testid); b.onclick = fn; li.appendChild(b);
  }
  return li;
}

// after an answer the worker extracts facts in the background: reload the panel every
// POLL_MS until a memory that was not there appears, for at most POLL_FOR_MS
const POLL_MS = 1000, POLL_FOR_MS = 30000;

function watchMemory() {
  clearTimeout(state.pollTimer);
  const before = new Set(Array.from(document.querySelectorAll("#memories li[data-memory-id]"),
    (li) => li.dataset.memoryId));
  const until = Date.now() + POLL_FOR_MS, user = userId();
  const tick = async () => {
    if (userId() !== user) return;
    const ids = await loadMemory();
    const fresh = ids && ids.some(([id, kind]) => kind !== "message" && !before.has(id));
    if (!fresh && Date.now() < until) state.pollTimer = setTimeout(tick, POLL_MS);
  };
  tick();
}

async function loadMemory() {
  const list = $("memories"), note = $("memories-note");
  if (!userId()) return null;
  let ids = null;
  try {
    const data = await api("GET", userPath("/memories"));
    note.hidden = true;
    ids = data.memories.map((m) => [m.id, m.kind]);
    list.replaceChildren();
    for (const m of data.memories) {
      const li = row(m.text, [
        ["edit", () => editMemory(m), "edit-memory"],
        ["✕", () => deleteMemory(m.id), "delete-memory"],
      ]);
      li.setAttribute("data-testid", "memory"); li.dataset.memoryId = m.id;
      list.appendChild(li);
    }
    if (!data.memories.length) { note.hidden = false; note.textContent = "Nothing yet."; }
  } catch (err) {
    list.replaceChildren(); note.hidden = false; ids = null;
    note.textContent = err.status === 501 ? "Long-term memory is not enabled on this server."
      : "Memories unavailable: " + err.message;
  }
  try {
    const prefs = await api("GET", userPath("/preferences"));
    const plist = $("preferences"); plist.replaceChildren();
    for (const [k, v] of Object.entries(prefs.values)) {
      const li = row(`${k}: ${v}`, [
        ["edit", () => editPref(k, v), "edit-pref"],
        ["✕", () => deletePref(k), "delete-pref"],
      ]);
      li.setAttribute("data-testid", "preference"); plist.appendChild(li);
    }
  } catch (err) { $("preferences").replaceChildren(row("unavailable: " + err.message, [])); }
  return ids;
}

async function guarded(fn) {
  try { await fn(); } catch (err) { setStatus("Error: " + err.message); }
  loadMemory();
}

function editMemory(m) {
  const text = prompt("Correct this memory:", m.text);
  if (text && text !== m.text)
    guarded(() => api("PATCH", userPath(`/memories/${encodeURIComponent(m.id)}`), { text }));
}
function deleteMemory(id) {
  guarded(() => api("DELETE", userPath(`/memories/${encodeURIComponent(id)}`)));
}
function editPref(k, v) {
  const value = prompt(`New value for ${k}:`, v);
  if (value !== null) guarded(() => api("PUT", userPath(`/preferences/${encodeURIComponent(k)}`), { value }));
}
function deletePref(k) {
  guarded(() => api("DELETE", userPath(`/preferences/${encodeURIComponent(k)}`)));
}

async function erase() {
  if (!confirm("Erase everything Mnemo remembers about you? This cannot be undone.")) return;
  try {
    const receipt = await api("DELETE", userPath(""));
    $("receipt").hidden = false;
    $("receipt").textContent = "Erased " + receipt.total + " items:\n" + JSON.stringify(receipt.counts, null, 1);
  } catch (err) { setStatus("Error: " + err.message); }
  newThread();
}

async function exportData() {
  try {
    const data = await api("GET", userPath("/export"));
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "mnemo-export.json"; a.click();
  } catch (err) { setStatus("Error: " + err.message); }
}

// --- start ------------------------------------------------------------------------------

async function init() {
  $("user-id").value = localStorage.getItem("mnemo.user") || "";
  $("api-key").value = localStorage.getItem("mnemo.key") || "";
  $("user-id").onchange = () => {
    localStorage.setItem("mnemo.user", typedUser());
    if (!needUser()) newThread();
  };
  $("user-picker").onsubmit = (e) => {
    e.preventDefault();
    const name = $("pick-user").value.trim();
    if (!ID_RE.test(name)) {
      $("pick-user-note").textContent =
        "Use 1-128 letters, digits, '.', '_', '-', '@' or '+' (no spaces).";
      return;
    }
    $("user-id").value = name;
    $("user-id").onchange();
  };
  $("api-key").onchange = () => { localStorage.setItem("mnemo.key", $("api-key").value); newThread(); };
  try {
    state.info = await api("GET", "/v1/info");
    const p = $("provider");
    p.textContent = state.info.offline ? "OFFLINE provider (no LLM)" : `${state.info.provider} · ${state.info.model}`;
    if (state.info.offline) { p.classList.add("offline"); $("offline-banner").hidden = false; }
    $("key-label").hidden = state.info.auth_mode === "none";
    if (!state.info.memory_enabled) showMemoryState("off");
  } catch (err) { $("provider").textContent = "gateway unreachable"; }
  $("composer").onsubmit = (e) => {
    e.preventDefault();
    const text = $("prompt").value.trim();
    if (text) { $("prompt").value = ""; send(text); }
  };
  $("prompt").onkeydown = (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
  };
  $("new-thread").onclick = newThread;
  $("refresh-memory").onclick = loadMemory;
  $("erase").onclick = erase;
  $("export").onclick = exportData;
  $("add-memory").onsubmit = (e) => {
    e.preventDefault();
    const text = $("new-memory").value.trim();
    if (text) { $("new-memory").value = ""; guarded(() => api("POST", userPath("/memories"), { text })); }
  };
  $("add-pref").onsubmit = (e) => {
    e.preventDefault();
    const k = $("pref-key").value.trim(), v = $("pref-value").value;
    if (k) { $("pref-key").value = ""; $("pref-value").value = "";
      guarded(() => api("PUT", userPath(`/preferences/${encodeURIComponent(k)}`), { value: v })); }
  };
  if (needUser()) return;
  loadThreads();
  loadMemory();
}

init();
