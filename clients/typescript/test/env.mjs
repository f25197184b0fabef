// What the tests need from the one who runs them (tests/client/test_typescript_client.py sets it all):
// a running gateway (embedded mode) and member tokens minted from its key file.
import assert from "node:assert/strict";

export function required(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run these tests through tests/client/test_typescript_client.py ` +
    "(it starts embedded mode and mints the tokens), or set QUNZHU_BASE_URL, QUNZHU_OWNER_ID, " +
    "QUNZHU_OWNER_TOKEN and QUNZHU_STRANGER_TOKEN yourself");
  return value;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Call `attempt` until `done(result)` or the deadline: the services learn of a new community from each
 * other's events, so a route may answer 403/404 for a moment after the community was created.
 * @template T
 * @param {() => Promise<T>} attempt
 * @param {(result: T) => boolean} done
 * @param {string} what
 * @returns {Promise<T>}
 */
export async function eventually(attempt, done, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  /** @type {any} */
  let last;
  for (;;) {
    last = await attempt();
    if (done(last)) return last;
    if (Date.now() > deadline) {
      const seen = last && typeof last === "object" && "response" in last
        ? `HTTP ${last.response.status} ${JSON.stringify(last.error ?? last.data)}` : JSON.stringify(last);
      assert.fail(`${what}: not within ${timeoutMs / 1000} s (last: ${seen})`);
    }
    await sleep(250);
  }
}
