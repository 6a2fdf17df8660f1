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
            const allow = h("button", { type: "button", class: "primary" }, "Allow");
            const allowRun = h("button", { type: "button" }, "Allow for run");
            const deny = h("button", { type: "button", class: "danger" }, "Deny");
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

async function commitFlow(ctx, ws, repo, message, out) {
  try {
    // The same request → confirm flow as chat: the server records a request, we confirm it.
    const made = await api.post(`/api/workspaces/${encodeURIComponent(ws.id)}/git`, { op: "commit", repo, message });
    const request = made.request || made;
    const summary = request.text || request.summary || `commit in ${repo}: ${message}`;
    if (!(await confirmDialog(summary, "Confirm commit"))) {
      await api.post(`/api/git-requests/${encodeURIComponent(request.id)}/deny`, {}).catch(() => null);
      out.replaceChildren(h("p", { class: "muted" }, "Not confirmed; nothing committed."));
      return;
    }
    const done = await api.post(`/api/git-requests/${encodeURIComponent(request.id)}/confirm`, {});
    out.replaceChildren(h("pre", { class: "ok", role: "status" }, (done && (done.text || done.result || done.decision)) || "committed"));
    toast("commit done");
  } catch (error) {
    out.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
  }
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
  const message = h("input", { type: "text", placeholder: "Commit message", "aria-label": `Commit message for ${repo.slug}` });
  const commit = h("button", { type: "button", class: "primary" }, "Commit…");
  commit.addEventListener("click", () => {
    if (!message.value.trim()) {
      message.focus();
      return;
    }
    commitFlow(ctx, ws, repo.slug, message.value.trim(), out);
  });
  return h(
    "li",
    { class: "repo", dataset: { repo: repo.slug } },
    h("div", {}, h("strong", {}, repo.slug), ` ${repo.branch || ""}${repo.slug === ws.active_repo ? " · active" : ""}`, repo.pr ? " · PR" : ""),
    h("div", { class: "row" }, diff, status),
    h("div", { class: "row" }, message, commit),
    out,
  );
}

async function workspaceDetail(ctx, id, box) {
  try {
    const ws = await api.get(`/api/workspaces/${encodeURIComponent(id)}`);
    const followup = h("input", { type: "text", placeholder: "Follow-up for the agent", "aria-label": "Follow-up" });
    const send = h("button", { type: "button" }, "Send");
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
      const button = h("button", { type: "button" }, verb[0].toUpperCase() + verb.slice(1));
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
    const sessions = h("button", { type: "button" }, "Sessions");
    sessions.addEventListener("click", () => showView(ws, "sessions", undefined, out));
    const summary = h("button", { type: "button" }, "Summary");
    summary.addEventListener("click", () => showView(ws, "summary", undefined, out));
    box.replaceChildren(
      h("h3", {}, `${ws.name || ws.id} · ${ws.status || ""}`),
      h("p", { class: "muted" }, `task ${ws.task || ""} · branch ${ws.branch || ""}${ws.pinned ? " · pinned" : ""}${ws.archived ? " · archived" : ""}`),
      h("div", { class: "row" }, lifecycle, sessions, summary),
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
  const form = h("form", { class: "ws-create", "aria-label": "Create a workspace" }, title, repos, branch, h("button", { type: "submit", class: "primary" }, "Create workspace"));
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
