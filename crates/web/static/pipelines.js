// The pipeline form's stage rows (templates/deals/pipeline.html): add, remove and reorder rows.
// Each row's fields are named stages.<n>.<field> in the rows' order, which app.js sends as the
// `stages` list; after every change the rows are numbered again (names, ids, labels, legends).

function renumber(list) {
  const rows = [...list.querySelectorAll("[data-stage-row]")];
  rows.forEach((row, i) => {
    row.querySelector("[data-stage-legend]").textContent = `Stage ${i + 1}`;
    for (const el of row.querySelectorAll("[data-stage-field]")) {
      const field = el.dataset.stageField;
      el.name = `stages.${i}.${field}`;
      if (el.type !== "hidden") el.id = `stage-${i}-${field}`;
    }
    for (const label of row.querySelectorAll("label")) {
      const field = label.dataset.for ?? label.htmlFor.replace(/^stage-\d+-/, "");
      label.dataset.for = field;
      label.htmlFor = `stage-${i}-${field}`;
    }
    for (const s of row.querySelectorAll("[data-stage-which]")) s.textContent = ` stage ${i + 1}`;
    row.querySelector("[data-stage-up]").disabled = i === 0;
    row.querySelector("[data-stage-down]").disabled = i === rows.length - 1;
    row.querySelector("[data-stage-remove]").disabled = rows.length === 1;
  });
}

function setup(form) {
  const list = form.querySelector("[data-stage-rows]");
  const template = form.querySelector("template[data-stage-template]");
  const add = form.querySelector("[data-stage-add]");
  renumber(list);
  add.addEventListener("click", () => {
    const row = template.content.firstElementChild.cloneNode(true);
    list.append(row);
    renumber(list);
    row.querySelector('[data-stage-field="name"]').focus();
  });
  list.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    const row = button?.closest("[data-stage-row]");
    if (!row || button.disabled) return;
    if (button.matches("[data-stage-up]") && row.previousElementSibling) {
      row.previousElementSibling.before(row);
    } else if (button.matches("[data-stage-down]") && row.nextElementSibling) {
      row.nextElementSibling.after(row);
    } else if (button.matches("[data-stage-remove]")) {
      const next = row.nextElementSibling ?? row.previousElementSibling;
      row.remove();
      renumber(list);
      (next?.querySelector('[data-stage-field="name"]') ?? add).focus();
      return;
    } else {
      return;
    }
    renumber(list);
    // The moved row's button keeps the focus unless it is now disabled (the row reached an end).
    (button.disabled ? row.querySelector('[data-stage-field="name"]') : button).focus();
  });
}

for (const form of document.querySelectorAll("[data-stage-editor]")) setup(form);
