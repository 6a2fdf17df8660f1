// The side panels: open permission requests (allow/deny) and workspaces (status, diff per
// repository, follow-up, commit request → confirm).

import { api, listOf, query } from "./api.js";
import { confirmDialog, h, toast, when } from "./dom.js";

export async function renderPermissions(ctx, box) {
  let requests = [];
  try {
    requests = listOf(await api.get("/api/permissions"), "requests");
  } catch (error) {
    box.replaceChildren(h("p", { class: "error" }, error.message));
    return 0;
  }
  const answer = async (request, verb, body) => {
    try {
      await api.post(`/api/permissions/${encodeURIComponent(request.ref || request.id)}/${verb}`, body);
      toast(`${request.ref || request.id}: ${verb}`);
    } catch (error) {
      toast(error.message, "error");
    }
    ctx.refreshPanels();
  };
  box.replaceChildren(
    requests.length
      ? h(
          "ul",
          { class: "permissions" },
          requests.map((request) => {
            const allow = h("button", { type: "button", class: "primary write" }, "Allow");
            const allowRun = h("button", { type: "button", class: "write" }, "Allow for run");
            const deny = h("button", { type: "button", class: "danger write" }, "Deny");
            allow.addEventListener("click", () => answer(request, "allow", { for_run: false }));
            allowRun.addEventListener("click", () => answer(request, "allow", { for_run: true }));
            deny.addEventListener("click", () => answer(request, "deny", {}));
            return h(
              "li",
              { dataset: { ref: String(request.ref || request.id) } },
              h("div", {}, h("strong", {}, String(request.ref || request.id)), ` ${request.task_id || ""} · ${request.tool || ""}`, request.expires_in_s ? h("span", { class: "muted" }, ` · expires in ${request.expires_in_s}s`) : null),
              h("div", {}, request.summary || ""),
              request.detail ? h("pre", {}, String(request.detail)) : null,
              h("div", { class: "row" }, allow, allowRun, deny),
            );
          }),
        )
      : h("p", { class: "muted" }, "No open permission requests."),
  );
  return requests.length;
}

function diffView(text) {
  const pre = h("pre", { class: "diff", "aria-label": "Diff" });
  for (const line of String(text || "(no changes)").split("\n")) {
    let kind = "";
    if (line.startsWith("+") && !line.startsWith("+++")) kind = "add";
    else if (line.startsWith("-") && !line.startsWith("---")) kind = "del";
    else if (line.startsWith("@@")) kind = "hunk";
    pre.append(h("span", { class: kind }, line), "\n");
  }
  return pre;
}

/** A request that waits for the requester's confirmation (git ops, delete), as in chat. */
async function requestFlow(path, body, label, out) {
  try {
    const made = await api.post(path, body);
    const request = made.request || made;
    const summary = request.text || request.summary || label;
    if (!(await confirmDialog(summary, `Confirm ${label}`))) {
      await api.post(`/api/git-requests/${encodeURIComponent(request.id)}/deny`, {}).catch(() => null);
      out.replaceChildren(h("p", { class: "muted" }, `Not confirmed; no ${label}.`));
      return;
    }
    const done = await api.post(`/api/git-requests/${encodeURIComponent(request.id)}/confirm`, {});
    out.replaceChildren(h("pre", { class: "ok", role: "status" }, (done && (done.text || done.result || done.decision)) || `${label} done`));
    toast(`${label} done`);
  } catch (error) {
    out.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
  }
}

function gitFlow(ws, op, repo, message, out) {
  const body = { op, repo };
  if (message) body.message = message;
  return requestFlow(`/api/workspaces/${encodeURIComponent(ws.id)}/git`, body, op, out);
}

/** A one-verb workspace action; its text answer is shown. */
async function wsAction(ctx, ws, action, body, out) {
  try {
    const answer = await api.post(`/api/workspaces/${encodeURIComponent(ws.id)}/${action}`, body);
    out.replaceChildren(h("pre", { role: "status" }, (answer && answer.text) || action));
    return true;
  } catch (error) {
    out.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
    return false;
  }
}

function button(label, onClick, attrs = {}) {
  const made = h("button", { type: "button", ...attrs }, label);
  made.addEventListener("click", onClick);
  return made;
}

async function showView(ws, view, repo, out) {
  try {
    const data = await api.get(`/api/workspaces/${encodeURIComponent(ws.id)}/${view}${query({ repo })}`);
    const text = typeof data === "string" ? data : data.text ?? data.diff ?? "";
    out.replaceChildren(view === "diff" ? diffView(text) : h("pre", {}, text || "(nothing)"));
  } catch (error) {
    out.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
  }
}

async function repoPanel(ctx, ws, repo) {
  const out = h("div", { class: "repo-out" });
  const diff = h("button", { type: "button" }, "Diff");
  diff.addEventListener("click", () => showView(ws, "diff", repo.slug, out));
  const status = h("button", { type: "button" }, "Status");
  status.addEventListener("click", () => showView(ws, "status", repo.slug, out));
  const message = h("input", { type: "text", class: "write", placeholder: "Commit message", "aria-label": `Commit message for ${repo.slug}` });
  const commit = h("button", { type: "button", class: "primary write" }, "Commit…");
  commit.addEventListener("click", () => {
    if (!message.value.trim()) {
      message.focus();
      return;
    }
    gitFlow(ws, "commit", repo.slug, message.value.trim(), out);
  });
  const push = button("Push…", () => gitFlow(ws, "push", repo.slug, null, out), { class: "write" });
  const pr = button("Open PR…", () => gitFlow(ws, "pr", repo.slug, null, out), { class: "write" });
  const activate = button("Make active", () => wsAction(ctx, ws, "repo", { slug: repo.slug }, out), { class: "write" });
  return h(
    "li",
    { class: "repo", dataset: { repo: repo.slug } },
    h("div", {}, h("strong", {}, repo.slug), ` ${repo.branch || ""}${repo.slug === ws.active_repo ? " · active" : ""}`, repo.pr ? " · PR" : ""),
    h("div", { class: "row" }, diff, status, repo.slug === ws.active_repo ? null : activate),
    h("div", { class: "row" }, message, commit, push, pr),
    out,
  );
}

/** The conversation's sessions: which is active, which paused (its queue waits), each viewable. */
function sessionList(ctx, ws, out, redraw) {
  const rows = (ws.sessions || []).map((session) => {
    const label = `${session.active ? "▶ " : ""}#${session.position} ${session.name || ""}`.trim();
    const state = [session.agent, session.state, `${session.messages} messages`];
    const paused = session.paused ? h("span", { class: "marker waiting", title: session.pause_reason || "" }, `⏸ paused${session.pause_reason ? `: ${session.pause_reason}` : ""}`) : null;
    const view = button("View", () => showSession(ws, session.position, out), { "aria-label": `View session ${session.position}` });
    const use = session.active
      ? null
      : button(
          "Switch",
          async () => {
            await wsAction(ctx, ws, "use-session", { session: String(session.position) }, out);
            redraw();
          },
          { "aria-label": `Switch to session ${session.position}`, class: "write" },
        );
    return h("li", { class: "session", dataset: { session: String(session.position), active: String(Boolean(session.active)) } }, h("strong", {}, label), ` · ${state.join(" · ")} `, paused, view, use);
  });
  return h("div", { class: "sessions" }, h("h4", {}, "Sessions"), h("ul", { class: "session-list" }, rows));
}

function queueList(ws) {
  const queued = ws.queued || [];
  const positions = new Map((ws.sessions || []).map((session) => [session.id, session.position]));
  return h(
    "div",
    { class: "queue" },
    h("h4", {}, `Queue (${queued.length})`),
    queued.length ? h("ol", { class: "queue-list" }, queued.map((item) => h("li", {}, `#${positions.get(item.session) ?? "?"}: ${item.text}`))) : h("p", { class: "muted" }, "nothing queued"),
  );
}

async function showSession(ws, position, out) {
  try {
    const data = await api.get(`/api/workspaces/${encodeURIComponent(ws.id)}/sessions/${encodeURIComponent(position)}`);
    const messages = data.messages || [];
    out.replaceChildren(
      h(
        "div",
        { class: "session-history", dataset: { session: String(position) } },
        h("h4", {}, `Session #${position}${data.session && data.session.name ? ` ${data.session.name}` : ""}`),
        messages.length
          ? h("ol", { class: "messages" }, messages.map((m) => h("li", { class: `message role-${m.role}` }, h("strong", {}, `${m.author} (${m.role})`), h("pre", {}, m.text))))
          : h("p", { class: "muted" }, "(no messages yet)"),
      ),
    );
  } catch (error) {
    out.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
  }
}

async function workspaceDetail(ctx, id, box) {
  try {
    const ws = await api.get(`/api/workspaces/${encodeURIComponent(id)}`);
    const followup = h("input", { type: "text", class: "write", placeholder: "Follow-up for the agent", "aria-label": "Follow-up" });
    const send = h("button", { type: "button", class: "write" }, "Send");
    send.addEventListener("click", async () => {
      if (!followup.value.trim()) return;
      try {
        await api.post(`/api/workspaces/${encodeURIComponent(ws.id)}/followup`, { text: followup.value.trim() });
        followup.value = "";
        toast("follow-up queued");
      } catch (error) {
        toast(error.message, "error");
      }
    });
    const repos = await Promise.all((ws.repos || []).map((repo) => repoPanel(ctx, ws, repo)));
    const out = h("div", { class: "ws-out" });
    const lifecycle = [ws.pinned ? "unpin" : "pin", ws.archived ? "unarchive" : "archive"].map((verb) => {
      const button = h("button", { type: "button", class: "write" }, verb[0].toUpperCase() + verb.slice(1));
      button.addEventListener("click", async () => {
        try {
          const answer = await api.post(`/api/workspaces/${encodeURIComponent(ws.id)}/${verb}`, {});
          toast((answer && answer.text) || verb);
          workspaceDetail(ctx, id, box);
          ctx.refreshPanels();
        } catch (error) {
          toast(error.message, "error");
        }
      });
      return button;
    });
    const summary = button("Summary", () => showView(ws, "summary", undefined, out));
    const stop = button("Stop", () => wsAction(ctx, ws, "stop", {}, out), { class: "danger write" });
    const newSession = button("New session", () => wsAction(ctx, ws, "new-session", {}, out), { class: "write" });
    const runQueue = button("Run queue", () => wsAction(ctx, ws, "queue", { action: "run" }, out), { class: "write" });
    const clearQueue = button("Clear queue", () => wsAction(ctx, ws, "queue", { action: "clear" }, out), { class: "write" });
    box.replaceChildren(
      h("h3", {}, `${ws.name || ws.id} · ${ws.status || ""}`),
      h("p", { class: "muted" }, `task ${ws.task || ""} · branch ${ws.branch || ""}${ws.pinned ? " · pinned" : ""}${ws.archived ? " · archived" : ""}`),
      // A workspace on another host: its disk (status, diff, changed files, unarchive) is there.
      ws.local === false ? h("p", { class: "muted ws-host" }, `on host ${ws.host}: status, diff, changed files and unarchive need its disk (ask in chat or a terminal)`) : null,
      h("div", { class: "row" }, lifecycle, stop, summary),
      sessionList(ctx, ws, out, () => workspaceDetail(ctx, id, box)),
      queueList(ws),
      h("div", { class: "row", role: "group", "aria-label": "Sessions and queue" }, newSession, runQueue, clearQueue),
      out,
      h("ul", { class: "repos" }, repos),
      h("div", { class: "row" }, followup, send),
    );
  } catch (error) {
    box.replaceChildren(h("p", { class: "error" }, error.message));
  }
}

function createWorkspaceForm(ctx, box) {
  const title = h("input", { type: "text", required: true, placeholder: "What to do", "aria-label": "New workspace title" });
  const repos = h("input", { type: "text", required: true, placeholder: "repos (comma-separated names)", "aria-label": "Repositories" });
  const branch = h("input", { type: "text", placeholder: "branch (optional)", "aria-label": "Branch" });
  const form = h("form", { class: "ws-create write", "aria-label": "Create a workspace" }, title, repos, branch, h("button", { type: "submit", class: "primary" }, "Create workspace"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { title: title.value.trim(), repos: repos.value.split(",").map((r) => r.trim()).filter(Boolean) };
    if (branch.value.trim()) body.branch = branch.value.trim();
    try {
      const answer = await api.post("/api/workspaces", body);
      toast((answer && answer.text) || "workspace created");
      renderWorkspaces(ctx, box);
      ctx.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  });
  return form;
}

export async function renderWorkspaces(ctx, box) {
  let list = [];
  try {
    list = listOf(await api.get("/api/workspaces"), "workspaces");
  } catch (error) {
    box.replaceChildren(h("p", { class: "error" }, error.message));
    return;
  }
  const detail = h("div", { class: "ws-detail" });
  box.replaceChildren(
    createWorkspaceForm(ctx, box),
    list.length
      ? h(
          "ul",
          { class: "workspaces" },
          list.map((ws) => {
            const open = h("button", { type: "button", class: "ws-open", dataset: { id: String(ws.id) } }, `${ws.name || ws.id}`);
            open.addEventListener("click", () => workspaceDetail(ctx, ws.id, detail));
            return h("li", {}, open, h("span", { class: "muted" }, ` ${ws.status || ""}${ws.pinned ? " · pinned" : ""} ${ws.created_at ? when(ws.created_at) : ""}`));
          }),
        )
      : h("p", { class: "muted" }, "No workspaces."),
    detail,
  );
}
