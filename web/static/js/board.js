// The board: a column per status with counts, cards, drag-and-drop and a "move to" menu,
// inline create per column, multi-select and lanes by assignee.

import { api } from "./api.js";
import { ago, confirmDialog, h, toast } from "./dom.js";
import { syncCards } from "./patch.js";

export const DESTRUCTIVE = new Set(["done", "archived", "blocked"]);

/** Move one task, asking first when the move is destructive. Returns true when it moved. */
export async function moveTask(ctx, id, status) {
  if (DESTRUCTIVE.has(status) && !(await confirmDialog(`Move ${id} to ${status}?`, `Move to ${status}`))) {
    return false;
  }
  try {
    await api.patch(`/api/tasks/${encodeURIComponent(id)}`, { status });
    toast(`${id} → ${status}`);
    ctx.patch([id]); // just this card (and its parents' child counts), as a live event would
    return true;
  } catch (error) {
    toast(`${id}: ${error.message}`, "error");
    return false;
  }
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function marker(card) {
  if (card.waiting_permission) {
    return h("span", { class: "marker waiting", title: "waiting for a permission answer" }, "⏸ waiting");
  }
  if (card.running) return h("span", { class: "marker running", title: "an agent is working on it" }, "● running");
  return null;
}

// One template per current status, cloned per card: a 1,000-card board builds 7,000 options fast.
const menuTemplates = new Map();

function moveMenu(ctx, card) {
  const key = `${ctx.state.statuses.join(",")}|${card.status}`;
  if (!menuTemplates.has(key)) {
    const options = ctx.state.statuses
      .filter((status) => status !== card.status && status !== "running") // only the dispatcher starts work
      .map((status) => h("option", { value: status }, status));
    menuTemplates.set(key, h("select", { class: "move", title: "Move to…" }, h("option", { value: "" }, "Move…"), options));
  }
  const select = menuTemplates.get(key).cloneNode(true);
  select.setAttribute("aria-label", `Move ${card.id} to`);
  select.addEventListener("click", (event) => event.stopPropagation());
  select.addEventListener("keydown", (event) => event.stopPropagation());
  select.addEventListener("change", async () => {
    const target = select.value;
    select.value = "";
    if (target) await moveTask(ctx, card.id, target);
  });
  return select;
}

function cardElement(ctx, card) {
  const selected = ctx.state.selected.has(card.id);
  const checkbox = h("input", {
    type: "checkbox",
    class: "select",
    checked: selected,
    "aria-label": `Select ${card.id}`,
  });
  checkbox.addEventListener("click", (event) => event.stopPropagation());
  checkbox.addEventListener("change", () => ctx.toggleSelected(card.id, checkbox.checked));
  const children =
    card.children_total > 0
      ? h("span", { class: "pill progress", title: "children done" }, `${card.children_done}/${card.children_total}`)
      : null;
  const element = h(
    "article",
    {
      class: `card${selected ? " selected" : ""}`,
      tabindex: "0",
      draggable: ctx.state.me?.role !== "viewer", // a viewer moves nothing
      dataset: { id: card.id, status: card.status },
      "aria-label": `${card.id} ${card.title}`,
    },
    h(
      "div",
      { class: "card-top" },
      checkbox,
      h("span", { class: "id" }, card.id),
      h("span", { class: `pill prio prio-${Math.max(0, Math.min(4, Number(card.priority) || 0))}`, title: "priority" }, `P${card.priority}`),
      marker(card),
      moveMenu(ctx, card),
    ),
    h("div", { class: "title" }, card.title),
    h(
      "div",
      { class: "card-meta" },
      card.tenant ? h("span", { class: "pill tenant", title: "tenant" }, card.tenant) : null,
      h("span", { class: "assignee", title: "assignee" }, card.assignee || "unassigned"),
      card.comment_count ? h("span", { class: "n-comments" }, plural(card.comment_count, "comment")) : null,
      card.link_count ? h("span", { class: "n-links" }, plural(card.link_count, "link")) : null,
      children,
      h("span", { class: "age", title: "age" }, ago(card.age_seconds)),
    ),
  );
  element.addEventListener("click", (event) => {
    if (event.shiftKey || event.ctrlKey || event.metaKey) {
      ctx.toggleSelected(card.id, !ctx.state.selected.has(card.id));
    } else {
      ctx.openTask(card.id);
    }
  });
  element.addEventListener("keydown", (event) => cardKey(ctx, card, element, event));
  element.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("text/plain", card.id);
    event.dataTransfer.effectAllowed = "move";
    element.classList.add("dragging");
  });
  element.addEventListener("dragend", () => element.classList.remove("dragging"));
  return element;
}

// Cards are rebuilt only when what they show changed: a live refresh of a 1,000-card board then
// costs the few cards that moved, not 25,000 new elements. Ages are refreshed once a minute.
const cardCache = new Map();
let cacheBorn = Date.now();

function cachedCard(ctx, card) {
  if (Date.now() - cacheBorn > 60_000) {
    cardCache.clear();
    cacheBorn = Date.now();
  }
  const { age_seconds: _age, ...shown } = card;
  const key = `${ctx.state.selected.has(card.id)}|${ctx.state.statuses.join(",")}|${JSON.stringify(shown)}`;
  const hit = cardCache.get(card.id);
  if (hit && hit.key === key) return hit.element;
  const element = cardElement(ctx, card);
  cardCache.set(card.id, { key, element });
  return element;
}

function forgetGoneCards(ctx) {
  const present = new Set(ctx.allCards().map((card) => card.id));
  for (const id of cardCache.keys()) if (!present.has(id)) cardCache.delete(id);
}

function cardKey(ctx, card, element, event) {
  if (event.target !== element) return;
  const key = event.key;
  if (key === "Enter") {
    event.preventDefault();
    ctx.openTask(card.id);
  } else if (key === " ") {
    event.preventDefault();
    ctx.toggleSelected(card.id, !ctx.state.selected.has(card.id));
  } else if (key === "m") {
    event.preventDefault();
    element.querySelector("select.move")?.focus();
  } else if (key === "ArrowDown" || key === "ArrowUp") {
    event.preventDefault();
    const cards = [...element.closest(".column").querySelectorAll(".card")];
    const index = cards.indexOf(element) + (key === "ArrowDown" ? 1 : -1);
    cards[Math.max(0, Math.min(cards.length - 1, index))]?.focus();
  } else if (key === "ArrowRight" || key === "ArrowLeft") {
    event.preventDefault();
    const columns = [...document.querySelectorAll(".column")];
    const next = columns[columns.indexOf(element.closest(".column")) + (key === "ArrowRight" ? 1 : -1)];
    next?.querySelector(".card")?.focus();
  }
}

function createForm(ctx, status) {
  const title = h("input", { type: "text", name: "title", required: true, placeholder: "Title", "aria-label": `New task title in ${status}` });
  const assignee = h(
    "select",
    { name: "assignee", "aria-label": "Assignee" },
    h("option", { value: "" }, "(unassigned)"),
    ctx.state.assignees.map((name) => h("option", { value: name }, name)),
  );
  const priority = h("input", { type: "number", name: "priority", min: "0", max: "9", placeholder: "Priority", "aria-label": "Priority" });
  const parent = h(
    "select",
    { name: "parent", "aria-label": "Parent task" },
    h("option", { value: "" }, "(no parent)"),
    ctx.allCards().map((card) => h("option", { value: card.id }, `${card.id} ${card.title}`.slice(0, 60))),
  );
  const form = h(
    "form",
    { class: "create", "aria-label": `Create a task in ${status}` },
    title,
    h("div", { class: "row" }, assignee, priority),
    parent,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create"), h("button", { type: "button", class: "cancel" }, "Cancel")),
  );
  form.querySelector(".cancel").addEventListener("click", () => {
    ctx.state.creating = null;
    ctx.render();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      ctx.state.creating = null;
      ctx.render();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { title: title.value.trim() };
    if (!body.title) return;
    if (assignee.value) body.assignee = assignee.value;
    if (priority.value !== "") body.priority = Number(priority.value);
    if (parent.value) body.parents = [parent.value];
    if (status === "triage") body.triage = true;
    else body.status = status;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const made = await api.post("/api/tasks", body);
      toast(`created ${made && made.task ? made.task.id : ""}`.trim());
      ctx.state.creating = null;
      ctx.reload();
    } catch (error) {
      toast(error.message, "error");
      button.disabled = false;
    }
  });
  return form;
}

function lanes(ctx, tasks) {
  const groups = new Map();
  for (const card of tasks) {
    const key = card.assignee || "unassigned";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(card);
  }
  return [...groups.entries()].map(([name, cards]) =>
    h("div", { class: "lane" }, h("h3", { class: "lane-name" }, `${name} (${cards.length})`), cards.map((card) => cachedCard(ctx, card))),
  );
}

function columnElement(ctx, column) {
  const status = column.status;
  const creating = ctx.state.creating === status;
  const add = h("button", { type: "button", class: "add", "aria-label": `Add a task to ${status}`, "aria-expanded": creating ? "true" : "false", title: "New task" }, "+");
  add.addEventListener("click", () => {
    ctx.state.creating = creating ? null : status;
    ctx.render();
    document.querySelector(`.column[data-status="${status}"] form.create input[name=title]`)?.focus();
  });
  const shown = column.tasks.length;
  const count = shown < column.count ? `${shown}/${column.count}` : String(column.count);
  // The server sends only the newest finished cards unless asked for all of them.
  let more = null;
  if (shown < column.count && (status === "done" || status === "archived")) {
    more = h("button", { type: "button", class: "more-cards" }, `Show all ${column.count}`);
    more.addEventListener("click", () => {
      ctx.state.filters.finished = column.count;
      ctx.reload();
    });
  }
  const body = h(
    "div",
    { class: "cards" },
    creating ? createForm(ctx, status) : null,
    ctx.state.filters.lanes ? lanes(ctx, column.tasks) : column.tasks.map((card) => cachedCard(ctx, card)),
    more,
  );
  const section = h(
    "section",
    { class: "column", dataset: { status }, "aria-label": `${status}, ${column.count} tasks` },
    h("header", { class: "column-head" }, h("span", { class: `dot status-${status}`, "aria-hidden": "true" }), h("h2", {}, status), h("span", { class: "count" }, count), add),
    body,
  );
  section.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    section.classList.add("drop");
  });
  section.addEventListener("dragleave", (event) => {
    if (!section.contains(event.relatedTarget)) section.classList.remove("drop");
  });
  section.addEventListener("drop", async (event) => {
    event.preventDefault();
    section.classList.remove("drop");
    const id = event.dataTransfer.getData("text/plain");
    const card = ctx.allCards().find((c) => c.id === id);
    if (card && card.status !== status) await moveTask(ctx, id, status);
  });
  return section;
}

/**
 * Bring the named columns' DOM up to date in place (counts, cards); false when the page needs a
 * full render instead (lanes, an open create form, a "Show all" button appearing or going).
 */
export function patchColumns(ctx, statuses) {
  if (ctx.state.filters.lanes || ctx.state.creating) return false;
  forgetGoneCards(ctx);
  for (const status of statuses) {
    const column = ctx.state.board.columns.find((c) => c.status === status);
    const section = document.querySelector(`.column[data-status="${CSS.escape(status)}"]`);
    if (!column || !section) continue;
    const shown = column.tasks.length;
    const more = section.querySelector(".more-cards");
    if (Boolean(more) !== (shown < column.count && (status === "done" || status === "archived"))) return false;
    if (more) more.textContent = `Show all ${column.count}`;
    section.querySelector(".count").textContent = shown < column.count ? `${shown}/${column.count}` : String(column.count);
    section.setAttribute("aria-label", `${status}, ${column.count} tasks`);
    syncCards(section.querySelector(".cards"), column.tasks.map((card) => cachedCard(ctx, card)));
  }
  return true;
}

export function renderColumns(ctx) {
  const board = ctx.state.board;
  forgetGoneCards(ctx);
  const columns = board.columns.filter((column) => ctx.state.filters.archived || column.status !== "archived");
  return columns.map((column) => columnElement(ctx, column));
}

export function bulkBar(ctx) {
  const ids = [...ctx.state.selected];
  if (!ids.length) return null;
  const statusSelect = h(
    "select",
    { "aria-label": "Set status of the selected tasks" },
    h("option", { value: "" }, "Status…"),
    ctx.state.statuses.map((status) => h("option", { value: status }, status)),
  );
  const assignSelect = h(
    "select",
    { "aria-label": "Assign the selected tasks" },
    h("option", { value: "" }, "Assign…"),
    h("option", { value: "(unassign)" }, "(unassign)"),
    ctx.state.assignees.map((name) => h("option", { value: name }, name)),
  );
  const run = async (action, value, label) => {
    if ((action === "archive" || (action === "status" && DESTRUCTIVE.has(value))) && !(await confirmDialog(`${label} ${ids.length} task(s)?`, label))) {
      return;
    }
    try {
      const body = { ids, action };
      if (value !== undefined) body.value = value;
      const answer = await api.post("/api/tasks/bulk", body);
      const failures = (answer.results || []).filter((row) => !row.ok);
      ctx.state.bulkFailures = failures;
      ctx.state.selected = new Set(failures.map((row) => row.id));
      toast(failures.length ? `${failures.length} of ${ids.length} failed` : `${label}: ${ids.length} done`, failures.length ? "error" : "info");
    } catch (error) {
      toast(error.message, "error");
    }
    ctx.reload();
  };
  statusSelect.addEventListener("change", () => statusSelect.value && run("status", statusSelect.value, `Move to ${statusSelect.value}`));
  assignSelect.addEventListener("change", () => {
    if (!assignSelect.value) return;
    run("assign", assignSelect.value === "(unassign)" ? null : assignSelect.value, "Assign");
  });
  const archive = h("button", { type: "button", class: "danger" }, "Archive");
  archive.addEventListener("click", () => run("archive", undefined, "Archive"));
  const clear = h("button", { type: "button" }, "Clear");
  clear.addEventListener("click", () => {
    ctx.state.selected = new Set();
    ctx.state.bulkFailures = [];
    ctx.render();
  });
  return h("div", { class: "bulk", role: "region", "aria-label": "Bulk actions" }, h("strong", {}, `${ids.length} selected`), statusSelect, assignSelect, archive, clear);
}

export function bulkFailures(ctx) {
  const failures = ctx.state.bulkFailures || [];
  if (!failures.length) return null;
  return h(
    "ul",
    { class: "failures", role: "alert", "aria-label": "Bulk failures" },
    failures.map((row) => h("li", { dataset: { id: row.id } }, `${row.id}: ${row.error || "failed"}`)),
  );
}
