// The contact form's custom attributes (/contacts/new, /contacts/{id}): key/value rows that
// a person adds and removes, sent to the API as the one JSON object it takes.
//
// Before app.js sends the form (its listener is on the document, this one on the form, so this
// runs first), the rows are written into the hidden `custom_attributes` field (data-type="json"):
// every row with a key becomes a member; a value that was a number, boolean or null when the
// page was drawn goes back as one while it still reads as one, anything else is text. An empty
// table sends `{}`, which on a contact's page clears its attributes (the API replaces them).

function addRow(box, key = "", value = "") {
  const body = box.querySelector("[data-attribute-rows]");
  const n = body.querySelectorAll("[data-attribute-row]").length + 1;
  const tr = document.createElement("tr");
  tr.dataset.attributeRow = "";
  const cell = (input) => { const td = document.createElement("td"); td.append(input); return td; };
  const k = document.createElement("input");
  k.type = "text";
  k.maxLength = 64;
  k.value = key;
  k.dataset.attrKey = "";
  k.setAttribute("aria-label", `Key ${n}`);
  const v = document.createElement("input");
  v.type = "text";
  v.value = value;
  v.dataset.attrValue = "";
  v.dataset.kind = "string";
  v.setAttribute("aria-label", `Value ${n}`);
  const rm = document.createElement("button");
  rm.type = "button";
  rm.className = "btn btn-ghost btn-sm";
  rm.textContent = "Remove";
  rm.dataset.attrRemove = "";
  rm.setAttribute("aria-label", `Remove attribute ${n}`);
  tr.append(cell(k), cell(v), cell(rm));
  body.append(tr);
  sync(box);
  k.focus();
}

// Shows the empty note and renumbers the accessible names after a change.
function sync(box) {
  const rows = [...box.querySelectorAll("[data-attribute-row]")];
  rows.forEach((tr, i) => {
    tr.querySelector("[data-attr-key]")?.setAttribute("aria-label", `Key ${i + 1}`);
    tr.querySelector("[data-attr-value]")?.setAttribute("aria-label", `Value ${i + 1}`);
    tr.querySelector("[data-attr-remove]")?.setAttribute("aria-label", `Remove attribute ${i + 1}`);
  });
  const empty = box.querySelector("[data-attributes-empty]");
  if (empty) empty.hidden = rows.length > 0;
}

function valueOf(input) {
  const text = input.value;
  const kind = input.dataset.kind;
  if (kind === "number" && text.trim() !== "" && Number.isFinite(Number(text))) return Number(text);
  if (kind === "boolean" && (text === "true" || text === "false")) return text === "true";
  if (kind === "null" && text === "") return null;
  return text;
}

function collect(box) {
  const out = {};
  for (const tr of box.querySelectorAll("[data-attribute-row]")) {
    const key = tr.querySelector("[data-attr-key]").value.trim();
    if (key) out[key] = valueOf(tr.querySelector("[data-attr-value]"));
  }
  return out;
}

for (const box of document.querySelectorAll("[data-attributes]")) {
  box.addEventListener("click", (e) => {
    if (e.target.closest("[data-attr-add]")) addRow(box);
    const rm = e.target.closest("[data-attr-remove]");
    if (rm) {
      rm.closest("[data-attribute-row]").remove();
      sync(box);
      box.querySelector("[data-attr-add]").focus();
    }
  });
  const form = box.closest("form");
  form?.addEventListener("submit", () => {
    box.querySelector('input[name="custom_attributes"]').value = JSON.stringify(collect(box));
  });
}
