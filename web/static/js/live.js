// Live updates: an EventSource on /api/events that resumes from the last event id after a drop.

export function connectLive(startId, onEvent, onStatus) {
  let lastId = Number(startId) || 0;
  let source = null;
  let retry = 500;
  const open = () => {
    source = new EventSource(`/api/events?since=${lastId}`);
    source.onopen = () => {
      retry = 500;
      onStatus(true);
    };
    source.onmessage = (message) => {
      const id = Number(message.lastEventId);
      if (id) lastId = Math.max(lastId, id);
      let data = null;
      try {
        data = JSON.parse(message.data);
      } catch {
        data = null;
      }
      onEvent(data);
    };
    // The server's "reset": this page fell too far behind to be caught up event by event.
    source.addEventListener("reset", () => onEvent(null));
    source.onerror = () => {
      // Reconnect ourselves so the URL carries the last id we saw (no gap, no replay from the start).
      source.close();
      onStatus(false);
      setTimeout(open, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  open();
  return {
    get lastId() {
      return lastId;
    },
    close: () => source && source.close(),
  };
}
