// The sign-in, first-run and invitation pages: keep the browser's time zone in the pp_tz
// cookie, so a first sign-in makes it the user's own (they change it on "Your settings").
(function () {
  "use strict";
  if (window.postpilot) { window.postpilot.setZoneCookie(); }
})();
