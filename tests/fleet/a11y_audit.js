() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("html has no lang");
  const h1 = document.querySelectorAll("main h1");
  if (h1.length !== 1) problems.push(`${h1.length} h1 in main`);
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (!el.closest("label") && !el.getAttribute("aria-label") && !(el.id && document.querySelector(`label[for="${el.id}"]`)))
      problems.push(`unlabelled ${el.tagName} ${el.name || el.id}`);
  }
  for (const b of document.querySelectorAll("button, a"))
    if (!(b.getAttribute("aria-label") || b.textContent.trim())) problems.push(`nameless ${b.tagName}`);
  for (const t of document.querySelectorAll("table"))
    if (!t.querySelector("caption") && !t.getAttribute("aria-label")) problems.push(`table without a name: ${t.textContent.slice(0, 40)}`);
  for (const g of document.querySelectorAll("svg[role=img]"))
    if (!g.getAttribute("aria-label")) problems.push("chart without a label");
  return problems;
}
