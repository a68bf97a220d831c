// The create form and a render's page (web/create.py). An ES module, loaded from the
// templates' head (no inline script: the pages' CSP is script-src 'self').
//
// - On a render's page, the progress bar follows the render's server-sent events
//   (/renders/{id}/events: "progress" with a label, then "end"); at the end the page
//   reloads to show the preview and the Publish form. If the stream is refused (the session
//   expired), the page reloads too, and the server sends the browser to the login page.
// - On the create form, the prompt's length is counted, a still over the size limit is
//   refused before sending, and the submit button is disabled once the form is sent (a
//   second click would be the same render anyway).

function followRender(section) {
  const url = section.dataset.renderEvents;
  const bar = section.querySelector("[data-progress-bar]");
  const label = section.querySelector("[data-progress-label]");
  if (!url || !bar || !label || typeof EventSource === "undefined") return;
  const source = new EventSource(url);
  let finished = false;
  source.addEventListener("progress", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    const percent = Math.max(0, Math.min(100, Number(data.percent) || 0));
    bar.value = percent;
    bar.textContent = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(percent));
    if (data.label) {
      bar.setAttribute("aria-valuetext", data.label);
      label.textContent = data.label;
      document.title = document.title.replace(/^[^·]*·/, `${data.label} ·`);
    }
    section.dataset.state = data.state || "";
  });
  source.addEventListener("end", () => {
    finished = true;
    source.close();
    window.location.reload();
  });
  source.addEventListener("error", () => {
    // A dropped connection is retried by the browser; a refused one (401 after the session
    // ended, 404) closes the stream: reload, and let the server say where to go.
    if (!finished && source.readyState === EventSource.CLOSED) {
      window.setTimeout(() => window.location.reload(), 1000);
    }
  });
}

function countPrompt(form) {
  const prompt = form.querySelector("#prompt");
  const counter = form.querySelector("[data-prompt-count]");
  if (!prompt || !counter) return;
  const max = Number(prompt.getAttribute("maxlength")) || 0;
  const update = () => {
    const n = prompt.value.length;
    counter.textContent = max ? `${n} of ${max}.` : `${n} characters.`;
  };
  prompt.addEventListener("input", update);
  update();
}

function checkStillSize(form) {
  // A still over the limit would be refused before the form is read (and the values typed
  // with it lost): say so before sending.
  const input = form.querySelector("#still");
  const max = Number(input?.dataset.maxBytes) || 0;
  if (!input || !max) return;
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    const mb = Math.floor(max / 1048576);
    input.setCustomValidity(
      file && file.size > max ? `This image is larger than ${mb} MB, the limit for a still.` : "",
    );
    input.reportValidity();
  });
}

function guardSubmit(form) {
  const button = form.querySelector("[data-submit]");
  const text = button ? button.textContent : "";
  // Back to this page from the browser's cache: the button works again.
  window.addEventListener("pageshow", () => {
    if (button) {
      button.disabled = false;
      button.textContent = text;
    }
  });
  form.addEventListener("submit", () => {
    if (button) {
      // after this event, so that the button's own value is still sent
      window.setTimeout(() => {
        button.disabled = true;
        button.textContent = "Sending…";
      }, 0);
    }
  });
}

for (const section of document.querySelectorAll("[data-render-events]")) followRender(section);
for (const form of document.querySelectorAll("[data-create-form]")) {
  countPrompt(form);
  checkStillSize(form);
  guardSubmit(form);
}
