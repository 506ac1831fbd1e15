// Batch DOM work per animation frame: many events, one paint.
//
// Events update plain objects as they arrive; views ask for a redraw with onFrame(key,
// fn). However many times a key is asked for before the next frame, its function runs
// once. Hidden tabs get no frames, so a slow timer flushes too.

const jobs = new Map();
let frame = 0;
let timer = 0;

export function onFrame(key, fn) {
  jobs.set(key, fn);
  if (!frame) frame = requestAnimationFrame(flush);
  if (!timer) timer = setTimeout(flush, 1000);
}

function flush() {
  if (frame) cancelAnimationFrame(frame);
  if (timer) clearTimeout(timer);
  frame = 0;
  timer = 0;
  const work = [...jobs.values()];
  jobs.clear();
  for (const fn of work) {
    try {
      fn();
    } catch (err) {
      console.error("render failed", err);
    }
  }
}
