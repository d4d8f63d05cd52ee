// Drag and drop on the deals board (/deals). A card dropped on another column is moved by
// submitting the card's own "Move to" form with that column's stage: the drop and the form are
// one path (the form also works without script and from the keyboard). Only cards that have
// the form (people who may move deals) become draggable.

const board = document.querySelector("[data-board]");

if (board) {
  let dragged = null;

  const clearTargets = () => {
    for (const c of board.querySelectorAll(".drop-target")) c.classList.remove("drop-target");
  };

  for (const card of board.querySelectorAll("[data-deal]")) {
    if (!card.querySelector("form[data-move]")) continue;
    card.draggable = true;
    card.addEventListener("dragstart", (e) => {
      dragged = card;
      card.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", card.dataset.deal);
    });
    card.addEventListener("dragend", () => {
      card.classList.remove("dragging");
      dragged = null;
      clearTargets();
    });
  }

  for (const column of board.querySelectorAll("[data-stage]")) {
    const accepts = () => dragged && dragged.closest("[data-stage]") !== column;
    column.addEventListener("dragover", (e) => {
      if (!accepts()) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      column.classList.add("drop-target");
    });
    column.addEventListener("dragleave", (e) => {
      if (!column.contains(e.relatedTarget)) column.classList.remove("drop-target");
    });
    column.addEventListener("drop", (e) => {
      if (!accepts()) return;
      e.preventDefault();
      clearTargets();
      const form = dragged.querySelector("form[data-move]");
      const select = form.querySelector('select[name="stage_id"]');
      select.value = column.dataset.stage;
      dragged.classList.add("moving");
      form.requestSubmit();
    });
  }
}
