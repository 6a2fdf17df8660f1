// Live patches: an event names the tasks it touched; the page fetches just those cards and puts
// them in place, so one change elsewhere costs one card's DOM, not a 1,000-card board rebuild.

const FINISHED = new Set(["done", "archived"]);
const FINISHED_SHOWN = 200; // the server's default cap on finished cards per column

const idNumber = (ref) => Number(String(ref).slice(1)) || 0;

/** The task refs an event touched (its own, and both ends of a link). */
export function touchedIds(event) {
  const ids = new Set();
  if (event && typeof event.task_id === "string") ids.add(event.task_id);
  const payload = (event && event.payload) || {};
  for (const key of ["parent", "child"]) if (typeof payload[key] === "string") ids.add(payload[key]);
  return ids;
}

// The server's order: open columns by priority (high first), then age; finished ones newest first.
function before(status, a, b) {
  if (FINISHED.has(status)) return idNumber(a.id) > idNumber(b.id);
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.created_ms !== b.created_ms) return a.created_ms < b.created_ms;
  return idNumber(a.id) < idNumber(b.id);
}

/**
 * Apply a ``GET /api/cards`` answer to the board state; returns the statuses whose columns
 * changed (their DOM needs patching).
 */
export function applyCards(state, answer) {
  const changed = new Set();
  const byStatus = new Map(state.board.columns.map((column) => [column.status, column]));
  const fresh = new Map(answer.cards.map((card) => [card.id, card]));
  const gone = new Set(answer.gone || []);
  for (const column of state.board.columns) {
    const kept = column.tasks.filter((card) => !fresh.has(card.id) && !gone.has(card.id));
    if (kept.length !== column.tasks.length) {
      column.tasks = kept;
      changed.add(column.status);
    }
  }
  for (const id of gone) state.selected.delete(id);
  for (const { shown, ...card } of answer.cards) {
    const column = byStatus.get(card.status);
    if (!shown || !column) continue;
    const at = column.tasks.findIndex((other) => before(card.status, card, other));
    if (at < 0) column.tasks.push(card);
    else column.tasks.splice(at, 0, card);
    changed.add(card.status);
  }
  const searching = Boolean(state.filters.q);
  for (const column of state.board.columns) {
    if (!searching && FINISHED.has(column.status)) {
      const cap = state.filters.finished ?? FINISHED_SHOWN;
      if (column.tasks.length > cap) column.tasks.length = cap;
    }
    const count = searching ? column.tasks.length : Math.max(answer.counts[column.status] || 0, column.tasks.length);
    if (count !== column.count) {
      column.count = count;
      changed.add(column.status);
    }
    column.truncated = count > column.tasks.length;
  }
  state.board.latest_event_id = Math.max(state.board.latest_event_id || 0, answer.latest_event_id || 0);
  return changed;
}

function nextCard(element) {
  let next = element.nextElementSibling;
  while (next && !next.classList.contains("card")) next = next.nextElementSibling;
  return next;
}

/** Make ``body``'s cards exactly ``elements`` (in order), moving only the ones out of place. */
export function syncCards(body, elements) {
  const anchor = body.querySelector(":scope > .more-cards");
  let cursor = body.querySelector(":scope > .card");
  for (const element of elements) {
    if (element === cursor) {
      cursor = nextCard(cursor);
      continue;
    }
    body.insertBefore(element, cursor || anchor);
  }
  while (cursor) {
    const next = nextCard(cursor);
    cursor.remove();
    cursor = next;
  }
}
