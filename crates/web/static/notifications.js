// The header's notification badge: the count of the signed-in user's unread notifications,
// read from the API after the page has loaded (pages pay no query for it). Up to 99 are
// counted; more show as "99+". A refusal (a super admin, an expired session) leaves the link
// without a count.

const link = document.querySelector("[data-notifications]");
const badge = link?.querySelector("[data-notification-count]");

async function refresh() {
  if (!link || !badge) return;
  try {
    const res = await fetch("/api/v1/notifications?unread=true&limit=99", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!res.ok) return;
    const page = await res.json();
    const n = page.data.length;
    const text = page.next_cursor ? "99+" : String(n);
    badge.textContent = text;
    badge.hidden = n === 0;
    link.setAttribute("aria-label", n === 0 ? "Notifications" : `Notifications, ${text} unread`);
  } catch {
    // Offline: the link still works.
  }
}

refresh();
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});
