// The Financial District: a little page script (demo copy, written for preserve's tests).
document.addEventListener("DOMContentLoaded", function () {
  document.documentElement.classList.add("js");
});
