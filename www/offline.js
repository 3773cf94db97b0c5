// guided-ddpm page: offline use and updates through the service worker (www/sw.js). Registered
// once the page is ready, so that caching the site does not compete with its first load. A new
// deploy installs beside the running one; the page then offers to switch, and switching reloads,
// so that no page runs one build's script with another's module.

// Registers the service worker; `offer(takeOver)` is called when a new build is installed and
// waiting, with a function that switches to it. Resolves to the registration, or null where the
// browser has no service workers (or refuses them, as on an insecure origin): the page works as
// before, online only.
export async function registerOffline(offer) {
  if (!("serviceWorker" in navigator)) return null;
  let registration;
  try {
    registration = await navigator.serviceWorker.register("sw.js");
  } catch {
    return null;
  }
  let switching = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (switching) location.reload();
  });
  const waiting = () => {
    const next = registration.waiting;
    // The first install has nothing to replace; only an update of a controlled page is offered.
    if (!next || !navigator.serviceWorker.controller) return;
    offer(() => {
      switching = true;
      next.postMessage("take-over");
    });
  };
  waiting();
  registration.addEventListener("updatefound", () => {
    const next = registration.installing;
    next?.addEventListener("statechange", () => {
      if (next.state === "installed") waiting();
    });
  });
  return registration;
}
