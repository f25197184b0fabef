// The built client (dist/) against embedded mode: an owner's first hour, end to end.
import assert from "node:assert/strict";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { test } from "node:test";

import { createQunzhuClient, isProblem } from "../dist/index.js";
import { eventually, required } from "./env.mjs";

const baseUrl = required("QUNZHU_BASE_URL");
const ownerId = required("QUNZHU_OWNER_ID"); // telegram:<id>
const owner = createQunzhuClient({ baseUrl, token: required("QUNZHU_OWNER_TOKEN") });
const stranger = createQunzhuClient({ baseUrl, token: () => required("QUNZHU_STRANGER_TOKEN") });

/** Standard Webhooks, as the gateway verifies a generic bridge's delivery (gateway/webhooks/verify.py). */
function signed(secret, payload) {
  const body = JSON.stringify(payload);
  const id = `msg_${randomUUID()}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return {
    body,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": `v1,${signature}`,
    },
  };
}

test("community, plan, connector, a signed chat message, the leaderboard, a paywalled post", async () => {
  // 1. A community: the owner is the one who asks.
  const created = await owner.POST("/api/v1/membership/communities", {
    body: { name: "增长黑客", positioning: "每天一个增长实验", entry_policies: ["paid"] },
  });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  const community = created.data;
  assert.ok(community);
  assert.equal(community.owner_id, ownerId);
  const path = { community_id: community.id };

  // 2. A plan (fen, integer).
  const plan = await eventually(
    () => owner.POST("/api/v1/membership/communities/{community_id}/plans", {
      params: { path },
      body: { name: "年费会员", price_fen: 36_500, term_type: "fixed_duration", duration_days: 365 },
    }),
    (r) => r.response.status === 201, "create a plan");
  assert.equal(plan.data?.price_fen, 36_500);
  assert.equal(plan.data?.community_id, community.id);

  // 3. A generic connector (a bot bridge for QQ, Discord, …): its deliveries are signed with signing_secrets.
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const group = `g-${randomUUID()}`;
  const connector = await eventually(
    () => owner.POST("/api/v1/communities/{community_id}/connectors", {
      params: { path },
      body: {
        platform: "generic", identity_platform: "telegram", name: "bridge", groups: [group],
        secrets: { signing_secrets: [secret] },
      },
    }),
    (r) => r.response.status === 201, "register a connector"); // 403 until the gateway has the owner's role
  assert.ok(connector.data);
  assert.deepEqual(connector.data.secrets_set, ["signing_secrets"]);
  assert.equal(connector.data.webhook_path, `/webhooks/chat/${connector.data.id}`);

  // 4. The bridge forwards a chat message from the owner, signed (a bridge is a server: plain fetch).
  const delivery = signed(secret, {
    events: [{
      type: "message", group_id: group, message_id: "m-1", sender_id: ownerId.split(":")[1], sender_name: "群主",
      text: "今天的实验：把注册按钮改成绿色，转化率提高了 12%，大家怎么看？",
    }],
  });
  const hook = await fetch(baseUrl + connector.data.webhook_path, { method: "POST", ...delivery });
  assert.equal(hook.status, 200, await hook.clone().text());
  /** @type {import("../dist/index.js").WebhookAck} */
  const ack = await hook.json();
  assert.equal(ack.status, "accepted");
  assert.equal(ack.events, 1);
  const forged = await fetch(baseUrl + connector.data.webhook_path, {
    method: "POST", ...signed(`whsec_${randomBytes(32).toString("base64")}`, { events: [] }),
  });
  assert.equal(forged.status, 401);

  // 5. Scoring is asynchronous: the leaderboard shows the owner's points once engagement has scored it.
  const board = await eventually(
    () => owner.GET("/api/v1/engagement/communities/{community_id}/leaderboard", { params: { path } }),
    (r) => r.response.status === 200 && (r.data?.data ?? []).some((row) => row.person_id === ownerId && row.points > 0),
    "the owner's points on the leaderboard");
  const mine = board.data?.data.find((row) => row.person_id === ownerId);
  assert.ok(mine && mine.points >= 1 && mine.rank === 1, JSON.stringify(board.data));

  // 6. A published post: its author reads it; someone who has not paid gets 402 Payment Required.
  const post = await eventually(
    () => owner.POST("/api/v1/content/communities/{community_id}/posts", {
      params: { path }, body: { title: "第一周复盘", body_md: "只给付费会员看的内容", publish: true },
    }),
    (r) => r.response.status === 201, "publish a post"); // 404 until content has the community
  assert.equal(post.data?.state, "published");
  const postPath = { community_id: community.id, post_id: post.data.id };
  const read = await owner.GET("/api/v1/content/communities/{community_id}/posts/{post_id}", {
    params: { path: postPath },
  });
  assert.equal(read.response.status, 200);
  assert.equal(read.data?.body_md, "只给付费会员看的内容");
  const paywalled = await stranger.GET("/api/v1/content/communities/{community_id}/posts/{post_id}", {
    params: { path: postPath },
  });
  assert.equal(paywalled.response.status, 402);
  assert.equal(paywalled.data, undefined);
  assert.ok(isProblem(paywalled.error), JSON.stringify(paywalled.error));
  assert.equal(paywalled.error.status, 402);
  assert.match(paywalled.response.headers.get("content-type") ?? "", /application\/problem\+json/);
});

test("errors are typed problems: 401 without a token, 422 with the failing field", async () => {
  const anonymous = createQunzhuClient({ baseUrl });
  const refused = await anonymous.POST("/api/v1/membership/communities", {
    body: { name: "x", positioning: "y" },
  });
  assert.equal(refused.response.status, 401);
  assert.ok(isProblem(refused.error));

  const invalid = await owner.POST("/api/v1/membership/communities", {
    body: { name: "", positioning: "y" },
  });
  assert.equal(invalid.response.status, 422);
  assert.ok(isProblem(invalid.error));
  assert.equal(invalid.error.status, 422);
});
