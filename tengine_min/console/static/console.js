// Auto refresh (data-refresh seconds on <body>; 0 = off) and confirmation dialogs
// (data-confirm on a form). No build step, no dependencies.
document.addEventListener("DOMContentLoaded", () => {
  const seconds = parseInt(document.body.dataset.refresh || "0", 10);
  if (seconds > 0) {
    setTimeout(() => {
      const url = new URL(window.location.href);
      url.searchParams.delete("msg"); // a message is shown once, not on every refresh
      window.location.replace(url.toString());
    }, seconds * 1000);
  }
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
