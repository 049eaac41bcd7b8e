// The dashboard playground: streams a Responses API turn (server-sent events) into the
// transcript, chains turns with previous_response_id, then shows the turn's tokens and cost.
(function () {
  "use strict";
  const form = document.getElementById("playground");
  const transcript = document.getElementById("transcript");
  const token = document.querySelector('meta[name="dashboard-token"]').content;
  let previous = null;

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "bubble " + role;
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = text;
    div.appendChild(body);
    transcript.appendChild(div);
    return div;
  }

  function events(buffer, handle) {
    // Split complete "event: ...\ndata: ...\n\n" blocks off the buffer; return the rest.
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data && data !== "[DONE]") handle(JSON.parse(data));
    }
    return buffer;
  }

  async function send(text) {
    const reply = bubble("assistant", "");
    const body = reply.querySelector(".body");
    const stats = document.createElement("div");
    stats.className = "stats-line";
    reply.appendChild(stats);
    const request = {
      model: form.elements.model.value,
      input: text,
      stream: true,
      store: true,
      max_output_tokens: parseInt(form.elements.max_output_tokens.value, 10) || 128,
    };
    const instructions = form.elements.instructions.value.trim();
    if (instructions) request.instructions = instructions;
    if (previous) request.previous_response_id = previous;
    const url = "/dashboard/playground/responses?project=" + encodeURIComponent(form.elements.project.value);
    const answer = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-dashboard-token": token },
      body: JSON.stringify(request),
    });
    if (!answer.ok) {
      reply.classList.add("failed");
      body.innerHTML = await answer.text();
      return;
    }
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let finished = null;
    const handle = (event) => {
      if (event.type === "response.output_text.delta") body.textContent += event.delta;
      else if (event.type === "response.completed" || event.type === "response.incomplete") finished = event.response;
      else if (event.type === "response.failed") { reply.classList.add("failed"); body.textContent = (event.response.error || {}).message || "failed"; }
      else if (event.type === "error") { reply.classList.add("failed"); body.textContent = event.message || "error"; }
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = events(buffer + decoder.decode(value, { stream: true }), handle);
    }
    if (finished) {
      previous = finished.id;
      reply.dataset.responseId = finished.id;
      htmx.ajax("GET", "/dashboard/playground/turns/" + encodeURIComponent(finished.id), { target: stats, swap: "innerHTML" });
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = form.elements.input;
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    bubble("user", text);
    const button = document.getElementById("pg-send");
    button.disabled = true;
    try {
      await send(text);
    } finally {
      button.disabled = false;
      input.focus();
    }
  });

  document.getElementById("pg-new").addEventListener("click", () => {
    previous = null;
    transcript.replaceChildren();
  });
})();
