// The login form tells the server the browser's time zone, so times on the code step
// and the account's first time zone are the user's own (accounts.preferences).
for (const field of document.querySelectorAll("input[data-browser-time-zone]")) {
  try {
    field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    field.value = "";
  }
}
