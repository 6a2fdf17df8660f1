// The board app: loads who I am and the board, renders it, keeps it live and wires the toolbar.

import { api, loadMe, query } from "./api.js";
import { bulkBar, bulkFailures, patchColumns, renderColumns } from "./board.js";
import { debounce, h, toast } from "./dom.js";
import { renderDrawer } from "./drawer.js";
import { connectLive } from "./live.js";
import { renderPermissions, renderWorkspaces } from "./panels.js";
import { applyCards, touchedIds } from "./patch.js";

const STATUSES = ["triage", "todo", "ready", "running", "blocked", "done", "archived"];
const $ = (selector) => document.querySelector(selector);

const state = {
  me: null,
  board: { columns: [], tenants: [], assignees: [], latest_event_id: 0 },
  statuses: STATUSES,
  assignees: [],
  filters: { q: "", tenant: "", assignee: "", archived: false, lanes: false, finished: null },
  selected: new Set(),
  bulkFailures: [],
  creating: null,
  openTask: null,
  editing: false,
  drawerError: "",
  side: null,
};

const ctx = {
  state,
  render,
  reload: null,
  patch: null, // patch(ids): re-read just these cards (and their parents) and put them in place
  allCards: () => state.board.columns.flatMap((column) => column.tasks),
  toggleSelected(id, on) {
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    render();
  },
  openTask,
  closeDrawer,
  refreshDrawer,
  refreshPanels,
  setDrawerError(message) {
    state.drawerError = message;
    const box = document.querySelector("[data-role=deps-error]");
    if (box) box.textContent = message;
  },
};

async function loadBoard() {
  const f = state.filters;
  const board = await api.get(`/api/board${query({ q: f.q, tenant: f.tenant, assignee: f.assignee, archived: f.archived ? 1 : 0, finished: f.finished })}`);
  state.board = board;
  const known = new Set(ctx.allCards().map((card) => card.id));
  state.selected = new Set([...state.selected].filter((id) => known.has(id)));
  state.assignees = [...new Set([...(state.configAssignees || []), ...(board.assignees || [])])].filter(Boolean).sort();
  fillFilter($("#filter-tenant"), board.tenants || [], "All tenants");
  fillFilter($("#filter-assignee"), state.assignees, "All assignees");
  render();
  if (document.body.dataset.loaded !== "true") performance.mark("board-interactive");
  document.body.dataset.loaded = "true";
}

/** Fetch the named cards and put them in place (only the columns they left or joined redraw). */
async function patchCards(ids) {
  const f = state.filters;
  const answer = await api.get(`/api/cards${query({ ids: ids.join(","), q: f.q, tenant: f.tenant, assignee: f.assignee, archived: f.archived ? 1 : 0, finished: f.finished })}`);
  const wasSelected = state.selected.size;
  const changed = applyCards(state, answer);
  for (const [key, list, select, label] of [
    ["tenant", state.board.tenants, "#filter-tenant", "All tenants"],
    ["assignee", state.assignees, "#filter-assignee", "All assignees"],
  ]) {
    const added = answer.cards.map((card) => card[key]).filter((name) => name && !list.includes(name));
    if (added.length) {
      list.push(...new Set(added));
      list.sort();
      fillFilter($(select), list, label);
    }
  }
  if (state.selected.size !== wasSelected || !patchColumns(ctx, changed)) render();
}

function fillFilter(select, values, allLabel) {
  const current = select.value;
  select.replaceChildren(h("option", { value: "" }, allLabel), values.map((value) => h("option", { value, selected: value === current }, value)));
}

function render() {
  const focusedId = document.activeElement?.closest?.(".card")?.dataset.id;
  const draft = document.querySelector("form.create input[name=title]");
  const draftValue = draft ? draft.value : null;
  const draftFocused = draft && document.activeElement === draft;
  // A live refresh rebuilds the columns: keep where each one was scrolled to.
  const boardEl = $("#board");
  const scrolled = new Map([...boardEl.querySelectorAll(".column")].map((c) => [c.dataset.status, c.querySelector(".cards").scrollTop]));
  const left = boardEl.scrollLeft;
  boardEl.replaceChildren(...renderColumns(ctx));
  for (const column of boardEl.querySelectorAll(".column")) {
    const top = scrolled.get(column.dataset.status);
    if (top) column.querySelector(".cards").scrollTop = top;
  }
  if (left) boardEl.scrollLeft = left; // (setting it forces a layout; skip when there is nothing to keep)
  $("#bulk").replaceChildren(...[bulkBar(ctx), bulkFailures(ctx)].filter(Boolean));
  if (draftValue !== null) {
    const input = document.querySelector("form.create input[name=title]");
    if (input) {
      input.value = draftValue;
      if (draftFocused) input.focus();
    }
  }
  if (focusedId && !draftFocused) document.querySelector(`.card[data-id="${CSS.escape(focusedId)}"]`)?.focus();
}

async function openTask(id) {
  state.openTask = id;
  state.editing = false;
  state.drawerError = "";
  await refreshDrawer();
  $("#drawer").hidden = false;
  $("#scrim").hidden = false;
  $("#drawer-title")?.focus();
}

function closeDrawer() {
  const id = state.openTask;
  state.openTask = null;
  $("#drawer").hidden = true;
  $("#scrim").hidden = true;
  if (id) document.querySelector(`.card[data-id="${CSS.escape(id)}"]`)?.focus();
}

/**
 * Redraw the open task's drawer. An open editor (title or description) holds it still; a field
 * being typed in (a comment, the priority) keeps its text, cursor and focus across the redraw.
 */
async function refreshDrawer() {
  if (!state.openTask || state.editing) return;
  try {
    // `show --json` nests the task's own fields under "task" beside its parents, comments, runs...
    const detail = await api.get(`/api/tasks/${encodeURIComponent(state.openTask)}`);
    const task = detail.task ? { ...detail, ...detail.task } : detail;
    if (state.editing) return; // an editor opened while the fetch was on its way
    const drawer = $("#drawer");
    const active = document.activeElement;
    const keep =
      active && drawer.contains(active) && /INPUT|TEXTAREA/.test(active.tagName) && active.getAttribute("aria-label")
        ? { label: active.getAttribute("aria-label"), value: active.value, start: active.selectionStart, end: active.selectionEnd }
        : null;
    drawer.replaceChildren(...renderDrawer(ctx, task).filter(Boolean));
    drawer.dataset.id = task.id;
    const again = keep && [...drawer.querySelectorAll("input, textarea")].find((el) => el.getAttribute("aria-label") === keep.label);
    if (again) {
      again.value = keep.value;
      again.focus();
      if (typeof keep.start === "number" && again.setSelectionRange) again.setSelectionRange(keep.start, keep.end);
    }
  } catch (error) {
    toast(error.message, "error");
    if (error.status === 404) closeDrawer();
  }
}

async function refreshPanels() {
  const count = await renderPermissions(ctx, $("#permissions-list"));
  $("#permissions-count").textContent = count ? String(count) : "";
  if (state.side === "workspaces") await renderWorkspaces(ctx, $("#workspaces-list"));
}

function toggleSide(which) {
  state.side = state.side === which ? null : which;
  $("#side").hidden = !state.side;
  $("#side-workspaces").hidden = state.side !== "workspaces";
  $("#side-permissions").hidden = state.side !== "permissions";
  $("#toggle-workspaces").setAttribute("aria-expanded", String(state.side === "workspaces"));
  $("#toggle-permissions").setAttribute("aria-expanded", String(state.side === "permissions"));
  if (state.side) refreshPanels();
}

const THEMES = ["auto", "light", "dark"];
function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("#theme").textContent = `Theme: ${theme}`;
  try {
    localStorage.setItem("kanban-theme", theme);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

function wireToolbar() {
  const reloadSoon = debounce(() => ctx.reload(), 250);
  $("#filter-q").addEventListener("input", (event) => {
    state.filters.q = event.target.value.trim();
    reloadSoon();
  });
  $("#filter-tenant").addEventListener("change", (event) => {
    state.filters.tenant = event.target.value;
    ctx.reload();
  });
  $("#filter-assignee").addEventListener("change", (event) => {
    state.filters.assignee = event.target.value;
    ctx.reload();
  });
  $("#filter-archived").addEventListener("change", (event) => {
    state.filters.archived = event.target.checked;
    ctx.reload();
  });
  $("#filter-lanes").addEventListener("change", (event) => {
    state.filters.lanes = event.target.checked;
    render();
  });
  $("#nudge").addEventListener("click", async () => {
    try {
      const answer = await api.post("/api/dispatch", {});
      toast(answer && answer.message ? answer.message : "dispatcher nudged");
      ctx.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  });
  $("#toggle-more").addEventListener("click", (event) => {
    const open = document.body.classList.toggle("menu-open");
    event.currentTarget.setAttribute("aria-expanded", String(open));
  });
  $("#toggle-workspaces").addEventListener("click", () => toggleSide("workspaces"));
  $("#toggle-permissions").addEventListener("click", () => toggleSide("permissions"));
  $("#side-close").addEventListener("click", () => toggleSide(state.side));
  $("#theme").addEventListener("click", () => {
    const current = document.documentElement.dataset.theme || "auto";
    applyTheme(THEMES[(THEMES.indexOf(current) + 1) % THEMES.length]);
  });
  $("#signout").addEventListener("click", async () => {
    try {
      await api.post("/api/logout", {});
    } finally {
      window.location.assign("/signin");
    }
  });
  $("#scrim").addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.openTask && !document.querySelector("dialog[open]")) closeDrawer();
    if (event.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement?.tagName || "")) {
      event.preventDefault();
      $("#filter-q").focus();
    }
  });
}

async function start() {
  let theme = "auto";
  try {
    theme = localStorage.getItem("kanban-theme") || "auto";
  } catch {
    theme = "auto";
  }
  applyTheme(THEMES.includes(theme) ? theme : "auto");
  wireToolbar();
  // Who I am and the board's config in parallel: the board's first query needs the config.
  const [me, config] = await Promise.all([loadMe(), api.get("/api/config").catch(() => null)]);
  state.me = me;
  $("#whoami").textContent = `${state.me.user} (${state.me.role})`;
  document.body.dataset.role = state.me.role;
  if (config) {
    if (Array.isArray(config.statuses) && config.statuses.length) state.statuses = config.statuses;
    state.configAssignees = Array.isArray(config.assignees) ? config.assignees.map((a) => (typeof a === "string" ? a : a.name)) : [];
    if (config.default_tenant) {
      state.filters.tenant = config.default_tenant;
    }
  }
  // One change at a time reaches the page: a full reload (filters, a reset) or a patch of the
  // cards events named; never two at once, so an older answer cannot land over a newer one.
  const pendingIds = new Set();
  let fullPending = false;
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      while (fullPending || pendingIds.size) {
        if (fullPending) {
          fullPending = false;
          pendingIds.clear();
          await loadBoard().catch((error) => toast(error.message, "error"));
          continue;
        }
        const ids = [...pendingIds].slice(0, 100);
        for (const id of ids) pendingIds.delete(id);
        await patchCards(ids).catch(() => {
          fullPending = true; // a patch that cannot apply falls back to the whole board
        });
      }
    } finally {
      busy = false;
    }
  };
  ctx.reload = debounce(() => {
    fullPending = true;
    pump();
  }, 50); // merges a user's quick clicks; live events take the patch path below
  let pumpQueued = false;
  const livePatch = (ids) => {
    for (const id of ids) pendingIds.add(id);
    if (pumpQueued) return;
    pumpQueued = true;
    setTimeout(() => {
      pumpQueued = false;
      pump();
    }, 0); // the events of one burst arrive back to back: one request for all of them
  };
  ctx.patch = livePatch;
  await loadBoard();
  const tenant = $("#filter-tenant");
  if (state.filters.tenant) tenant.value = state.filters.tenant;
  const refreshOpen = debounce(() => refreshDrawer(), 200);
  const live = connectLive(
    state.board.latest_event_id,
    (event) => {
      const ids = touchedIds(event);
      if (ids.size) livePatch(ids);
      else ctx.reload(); // a reset, or an event about no task: read the board again
      if (state.openTask && (!event || event.task_id === state.openTask)) refreshOpen();
      if (event && /permission/.test(event.kind || "")) refreshPanels();
    },
    (up) => {
      $("#live").dataset.up = String(up);
      $("#live").title = up ? "live" : "reconnecting";
    },
  );
  window.kanbanLive = live;
  refreshPanels();
}

start().catch((error) => {
  console.error(error);
  toast(error.message, "error");
});
