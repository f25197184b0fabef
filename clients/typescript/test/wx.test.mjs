// The same client in a WeChat mini-program: no fetch, Request, Response, Headers or FormData there, only
// wx.request. Here those globals are removed before the client is loaded, and `wx.request` is a stand-in
// with the mini-program's contract (success with {statusCode, data, header} for any HTTP status, fail with
// {errMsg}) over node:http, against embedded mode.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { test } from "node:test";

import { required } from "./env.mjs";

for (const name of ["fetch", "Request", "Response", "Headers", "FormData"]) {
  delete globalThis[name];
}
const { createQunzhuClient, isProblem, wxRequestFetch } = await import("../dist/index.js");

const calls = [];
const wx = {
  /** @param {import("../dist/index.js").WxRequestOptions} options */
  request(options) {
    calls.push({ method: options.method, url: options.url, header: options.header, dataType: options.dataType });
    const req = httpRequest(options.url, { method: options.method, headers: options.header }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        // wx parses JSON only when dataType is "json"; the adapter asks for "其他" (text).
        const data = options.dataType === "json" ? JSON.parse(text || "null") : text;
        options.success({ statusCode: res.statusCode ?? 0, data, header: /** @type {any} */ (res.headers) });
      });
    });
    req.on("error", (error) => options.fail({ errMsg: `request:fail ${error.message}` }));
    if (options.data !== undefined) req.write(options.data);
    req.end();
  },
};

test("the fetch globals are gone, as in a mini-program", () => {
  assert.equal(typeof globalThis.fetch, "undefined");
  // wxRequestFetch installed the stand-ins openapi-fetch needs.
  wxRequestFetch(wx);
  assert.equal(globalThis.Request.name, "MiniRequest");
  assert.equal(globalThis.Headers.name, "MiniHeaders");
});

test("wx.request carries the typed calls: create, read, a PATCH, a problem, a network failure", async () => {
  const baseUrl = required("QUNZHU_BASE_URL");
  const client = createQunzhuClient({ baseUrl, token: required("QUNZHU_OWNER_TOKEN"), fetch: wxRequestFetch(wx) });

  const created = await client.POST("/api/v1/membership/communities", {
    body: { name: "小程序里建的群", positioning: "在微信里也能用同一个客户端" },
  });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.equal(created.data?.owner_id, required("QUNZHU_OWNER_ID"));
  const post = calls.at(-1);
  assert.equal(post.method, "POST");
  assert.equal(post.header.authorization, `Bearer ${required("QUNZHU_OWNER_TOKEN")}`);
  assert.equal(post.header["content-type"], "application/json");

  const read = await client.GET("/api/v1/membership/communities/{community_id}", {
    params: { path: { community_id: created.data.id } },
  });
  assert.equal(read.response.status, 200);
  assert.equal(read.data?.name, "小程序里建的群");

  const invalid = await client.POST("/api/v1/membership/communities", { body: { name: "", positioning: "y" } });
  assert.equal(invalid.response.status, 422);
  assert.ok(isProblem(invalid.error));

  // wx.request has no PATCH: it goes as POST + X-HTTP-Method-Override, and the gateway makes it the PATCH.
  const patched = await client.PATCH("/api/v1/membership/communities/{community_id}", {
    params: { path: { community_id: created.data.id } },
    body: { positioning: "小程序里改的定位" },
  });
  assert.equal(patched.response.status, 200, JSON.stringify(patched.error));
  assert.equal(patched.data?.positioning, "小程序里改的定位");
  assert.equal(calls.at(-1).method, "POST");
  assert.equal(calls.at(-1).header["x-http-method-override"], "PATCH");

  const offline = createQunzhuClient({ baseUrl: "http://127.0.0.1:9", fetch: wxRequestFetch(wx) });
  await assert.rejects(offline.GET("/api/v1/communities"), /wx.request failed: request:fail/);
});
