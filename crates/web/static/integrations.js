// /settings/integrations: an "Add rule" form (data-rule-form) sends the integration's whole
// rule list, as PATCH /api/v1/integrations/{id} takes it: the rules the page was rendered with
// (its hidden "rules" field's value when the page loaded) and the one the form describes. Runs before
// app.js sends the form (a listener on the form fires before the document's).
//
// Parameters, one a line: order.number|status|total|currency, contact.<field> with an
// optional "| fallback", or any other text sent as written.

const ORDER_FIELDS = ["number", "status", "total", "currency"];

export function parameter(line) {
  const [head, ...rest] = line.split("|");
  const key = head.trim();
  const fallback = rest.join("|").trim();
  if (key.startsWith("order.") && ORDER_FIELDS.includes(key.slice(6)) && rest.length === 0) {
    return { type: "order_field", field: key.slice(6) };
  }
  if (key.startsWith("contact.") && key.length > 8 && !/\s/.test(key)) {
    const p = { type: "contact_field", field: key.slice(8) };
    if (fallback) p.fallback = fallback;
    return p;
  }
  return { type: "literal", value: line.trim() };
}

function rule(form) {
  const get = (name) => form.querySelector(`[data-rule="${name}"]`)?.value ?? "";
  const [name, language] = get("template").split(":");
  const r = {
    on: get("on"),
    template: { name: name || "", language: language || "" },
    parameters: get("parameters").split("\n").filter((l) => l.trim() !== "").map(parameter),
  };
  const status = get("status").trim();
  if (status) r.status = status;
  return r;
}

for (const form of document.querySelectorAll("form[data-rule-form]")) {
  const field = form.querySelector('input[name="rules"]');
  // Read now: a hidden field's value is its attribute, which the first send rewrites.
  let rules = [];
  try { rules = JSON.parse(field.value || "[]"); } catch { rules = []; }
  form.addEventListener("submit", () => {
    field.value = JSON.stringify([...rules, rule(form)]);
  });
}
