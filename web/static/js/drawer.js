// The side drawer of one task: editable fields, markdown, dependencies, status actions, comments,
// runs with their handoffs, the last events and the worker's log tail.

import { api } from "./api.js";
import { DESTRUCTIVE } from "./board.js";
import { confirmDialog, h, toast, when } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

// The moves a person makes by hand (the dispatcher starts tasks; unblocking picks ready or todo).
const ACTIONS = [
  ["blocked", "Block"],
  ["unblock", "Unblock"],
  ["done", "Complete"],
  ["archived", "Archive"],
];

function path(id) {
  return `/api/tasks/${encodeURIComponent(id)}`;
}

async function patch(ctx, id, body) {
  try {
    await api.patch(path(id), body);
    ctx.reload();
    await ctx.refreshDrawer();
    return true;
  } catch (error) {
    toast(`${id}: ${error.message}`, "error");
    return false;
  }
}

function section(title, ...children) {
  return h("section", { class: "drawer-section" }, h("h3", {}, title), children);
}

function titleEditor(ctx, task) {
  const heading = h("h2", { id: "drawer-title", tabindex: "0", title: "Click to rename" }, task.title);
  const edit = () => {
    ctx.state.editing = true;
    const input = h("input", { type: "text", value: task.title, "aria-label": "Title", class: "title-input" });
    let done = false; // Enter saves, and so does the blur that follows when the input goes away
    const save = async () => {
      if (done) return;
      done = true;
      ctx.state.editing = false;
      const title = input.value.trim();
      if (title && title !== task.title) await patch(ctx, task.id, { title });
      else ctx.refreshDrawer();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") save();
      if (event.key === "Escape") {
        event.stopPropagation();
        done = true;
        ctx.state.editing = false;
        ctx.refreshDrawer();
      }
    });
    input.addEventListener("blur", save, { once: true });
    heading.replaceWith(input);
    input.focus();
    input.select();
  };
  if (ctx.state.me && ctx.state.me.role === "viewer") {
    heading.title = ""; // a viewer reads; renaming would answer 403
    return heading;
  }
  heading.addEventListener("click", edit);
  heading.addEventListener("keydown", (event) => event.key === "Enter" && edit());
  return heading;
}

function metaEditor(ctx, task) {
  const readOnly = Boolean(ctx.state.me && ctx.state.me.role === "viewer");
  const assignee = h(
    "select",
    { "aria-label": "Assignee", name: "assignee", disabled: readOnly },
    h("option", { value: "" }, "(unassigned)"),
    [...new Set([...ctx.state.assignees, task.assignee].filter(Boolean))].map((name) => h("option", { value: name, selected: name === task.assignee }, name)),
  );
  assignee.addEventListener("change", () => patch(ctx, task.id, { assignee: assignee.value || null }));
  const priority = h("input", { type: "number", min: "0", max: "9", value: String(task.priority ?? 0), "aria-label": "Priority", name: "priority", disabled: readOnly });
  priority.addEventListener("change", () => patch(ctx, task.id, { priority: Number(priority.value) }));
  return h(
    "div",
    { class: "meta-row" },
    h("span", { class: `pill status status-${task.status}` }, task.status + (task.block_kind ? ` (${task.block_kind})` : "")),
    task.tenant ? h("span", { class: "pill tenant" }, task.tenant) : null,
    placementPill(task),
    h("label", {}, "Assignee ", assignee),
    h("label", {}, "Priority ", priority),
  );
}

// Where it may run: one host, or the hosts carrying a label; nothing when any host may.
function placementPill(task) {
  if (task.host) return h("span", { class: "pill placement", title: "Runs only on this host" }, `host: ${task.host}`);
  if (task.label) return h("span", { class: "pill placement", title: "Runs on hosts with this label" }, `label: ${task.label}`);
  return null;
}

function bodyEditor(ctx, task) {
  const view = h("div", { class: "markdown", dataset: { role: "body" } }, task.body ? renderMarkdown(task.body) : h("p", { class: "muted" }, "No description."));
  const button = h("button", { type: "button", class: "write" }, "Edit description");
  const box = h("div", {}, view, button);
  button.addEventListener("click", () => {
    // While the description is being edited, live refreshes leave the drawer alone.
    ctx.state.editing = true;
    const area = h("textarea", { rows: "8", "aria-label": "Description", value: task.body || "" });
    const save = h("button", { type: "button", class: "primary" }, "Save");
    const cancel = h("button", { type: "button" }, "Cancel");
    save.addEventListener("click", () => {
      ctx.state.editing = false;
      patch(ctx, task.id, { body: area.value });
    });
    cancel.addEventListener("click", () => {
      ctx.state.editing = false;
      ctx.refreshDrawer();
    });
    box.replaceChildren(area, h("div", { class: "row" }, save, cancel));
    area.focus();
  });
  return box;
}

function statusActions(ctx, task) {
  return h(
    "div",
    { class: "actions write", role: "group", "aria-label": "Status actions" },
    ACTIONS.filter(([status]) => (status === "unblock" ? task.status === "blocked" : status !== task.status)).map(([status, label]) => {
      const button = h("button", { type: "button", class: DESTRUCTIVE.has(status) ? "danger" : "" }, label);
      button.addEventListener("click", async () => {
        if (DESTRUCTIVE.has(status) && !(await confirmDialog(`${label} ${task.id}?`, label))) return;
        await patch(ctx, task.id, { status: status === "unblock" ? "ready" : status });
      });
      return button;
    }),
  );
}

function linkChip(ctx, parent, child, shown) {
  const remove = h("button", { type: "button", class: "chip-x write", "aria-label": `Unlink ${parent} → ${child}` }, "×");
  remove.addEventListener("click", async () => {
    try {
      await api.del("/api/links", { parent, child });
      ctx.reload();
      await ctx.refreshDrawer();
    } catch (error) {
      ctx.setDrawerError(error.message);
    }
  });
  const open = h("button", { type: "button", class: "chip-id" }, shown);
  open.addEventListener("click", () => ctx.openTask(shown));
  return h("span", { class: "chip" }, open, remove);
}

const idOf = (entry) => (typeof entry === "string" ? entry : entry && entry.id);

function dependencies(ctx, task) {
  const others = ctx.allCards().filter((card) => card.id !== task.id);
  const picker = (label, onPick) => {
    const select = h("select", { "aria-label": label, class: "write" }, h("option", { value: "" }, label), others.map((card) => h("option", { value: card.id }, `${card.id} ${card.title}`.slice(0, 60))));
    select.addEventListener("change", () => select.value && onPick(select.value));
    return select;
  };
  const link = async (parent, child) => {
    try {
      await api.post("/api/links", { parent, child });
      ctx.reload();
      await ctx.refreshDrawer();
    } catch (error) {
      ctx.setDrawerError(error.message);
    }
  };
  return h(
    "div",
    { class: "deps" },
    h("div", {}, h("span", { class: "muted" }, "Parents: "), (task.parents || []).map(idOf).map((id) => linkChip(ctx, id, task.id, id)), picker("Add parent…", (id) => link(id, task.id))),
    h("div", {}, h("span", { class: "muted" }, "Children: "), (task.children || []).map(idOf).map((id) => linkChip(ctx, task.id, id, id)), picker("Add child…", (id) => link(task.id, id))),
    h("p", { class: "error", role: "alert", dataset: { role: "deps-error" } }, ctx.state.drawerError || ""),
  );
}

function comments(ctx, task) {
  const area = h("textarea", { rows: "2", class: "write", placeholder: "Comment (Enter to send, Shift+Enter for a new line)", "aria-label": "New comment" });
  const send = async () => {
    const body = area.value.trim();
    if (!body) return;
    try {
      await api.post(`${path(task.id)}/comments`, { body });
      area.value = "";
      ctx.reload();
      await ctx.refreshDrawer();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send();
    }
  });
  return h(
    "div",
    {},
    h("ol", { class: "comments" }, (task.comments || []).map((comment) => h("li", {}, h("div", { class: "muted" }, `${comment.author} · ${when(comment.created_at)}`), h("div", { class: "markdown" }, renderMarkdown(comment.body))))),
    area,
  );
}

function runs(task) {
  const list = task.runs || [];
  if (!list.length) return h("p", { class: "muted" }, "No runs yet.");
  return h(
    "ol",
    { class: "runs" },
    list.map((run) =>
      h(
        "li",
        {},
        h("div", {}, h("strong", {}, `#${run.attempt ?? run.id}`), ` ${run.profile || run.claimer || ""} · ${run.outcome || run.status} · ${when(run.started_at)}`),
        run.summary ? h("div", { class: "markdown handoff" }, renderMarkdown(run.summary)) : null,
        run.error ? h("pre", { class: "error" }, run.error) : null,
      ),
    ),
  );
}

function events(task) {
  return h(
    "ol",
    { class: "events" },
    (task.events || []).slice(-20).map((event) => h("li", {}, h("code", {}, event.kind), ` ${when(event.created_at)}`, event.payload ? h("span", { class: "muted" }, ` ${JSON.stringify(event.payload).slice(0, 160)}`) : null)),
  );
}

export function renderDrawer(ctx, task) {
  const close = h("button", { type: "button", class: "close", "aria-label": "Close" }, "×");
  close.addEventListener("click", () => ctx.closeDrawer());
  return [
    h("header", { class: "drawer-head" }, h("span", { class: "id" }, task.id), close),
    titleEditor(ctx, task),
    metaEditor(ctx, task),
    statusActions(ctx, task),
    section("Description", bodyEditor(ctx, task)),
    task.result ? section("Result", h("div", { class: "markdown" }, renderMarkdown(task.result))) : null,
    section("Dependencies", dependencies(ctx, task)),
    section("Comments", comments(ctx, task)),
    section("Runs", runs(task)),
    section("Events", events(task)),
    section("Log", h("pre", { class: "log" }, task.log_tail || "(no log)")),
  ];
}
