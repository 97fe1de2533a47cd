"use strict";
document.getElementById("app").textContent = "tidings";
