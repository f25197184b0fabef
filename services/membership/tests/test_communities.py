"""Communities: who owns them, templates, editable presets, settings rights, metrics, the consumer contract."""

from __future__ import annotations

from conftest import OWNER

from membership.expected import REMOVAL_RECOMMENDED, membership_registry
from qunzhu_common.events.contracts import ALL_SPECS
from qunzhu_common.events.registry import EventRegistry

ADMIN = "wecom:admin"


async def test_the_acting_person_owns_what_they_create(h):
    created = await h.ok("POST", "/communities", OWNER, json={"name": "n", "positioning": "p"}, status=201)
    mismatch = await h.call("POST", "/communities", OWNER, json={"name": "n", "positioning": "p",
                                                                 "owner_id": "wecom:someone-else"})
    service = await h.call("POST", "/communities", "service:gateway", json={"name": "n", "positioning": "p"})
    nobody = await h.call("POST", "/communities", json={"name": "n", "positioning": "p"})

    assert created["owner_id"] == OWNER
    assert (mismatch.status_code, service.status_code, nobody.status_code) == (403, 403, 401)
    owner = await h.member(created["id"], OWNER)
    assert (owner["role"], owner["status"], owner["expires_at"]) == ("owner", "active", None)
    assert "community.dissolve" in owner["permissions"]


async def test_an_api_key_cannot_join_or_create_as_if_it_were_a_person(h):
    community = await h.community()
    joined = await h.call("POST", f"/communities/{community['id']}/join", "apikey:k-1", json={})
    created = await h.call("POST", "/communities", "apikey:k-1", json={"name": "n", "positioning": "p"})
    assert (joined.status_code, created.status_code) == (403, 403)
    assert "API key" in joined.json()["detail"]


async def test_free_cannot_be_combined_with_thresholds(h):
    response = await h.call("POST", "/communities", OWNER, json={"name": "n", "positioning": "p",
                                                                 "entry_policies": ["free", "paid"]})
    assert response.status_code == 422


async def test_a_template_presets_policy_rules_ritual_and_tells_the_other_services(h):
    templates = {t["key"] for t in await h.ok("GET", "/templates")}
    assert templates == {"learning", "resource_sharing", "skills_course", "networking", "product_sales"}

    community = await h.community(template="networking")
    cid = community["id"]

    assert community["entry_policies"] == ["application", "paid"]
    assert community["rules_version"] == 1
    assert "自我介绍" in (await h.ok("GET", f"/communities/{cid}/rules"))["text"]
    ritual = await h.ok("GET", f"/communities/{cid}/ritual")
    assert (ritual["ritual_enabled"], ritual["nickname_pattern"]) == (True, "城市-行业-名字")
    assert ritual["member_list_visible"] is True
    (applied,) = await h.emitted("community.template_applied")
    assert applied.data["template"] == "networking"
    assert {r["action"] for r in applied.data["scoring_rules"]} >= {"intro"}
    assert any(s["kind"] == "sharing_session" and s["weekdays"] == [7] for s in applied.data["content_rhythm"])

    # Every preset stays editable.
    await h.ok("PATCH", f"/communities/{cid}", OWNER, json={"entry_policies": ["paid"]})
    await h.ok("PATCH", f"/communities/{cid}/ritual", OWNER, json={"nickname_pattern": "城市-名字"})
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"member_list_visible": False})
    await h.ok("POST", f"/communities/{cid}/rules", OWNER, json={"text": "新群规"})
    assert (await h.ok("GET", f"/communities/{cid}"))["entry_policies"] == ["paid"]


async def test_product_sales_template_follows_seed_002(h):
    community = await h.community(template="product_sales")
    (applied,) = await h.emitted("community.template_applied", community["id"])
    slots = {(s["title"], s["local_time"], tuple(s["weekdays"])) for s in applied.data["content_rhythm"]}
    assert ("每日思维导图", "11:00", ()) in slots
    assert ("下午话题", "15:00", ()) in slots
    assert ("嘉宾分享", "20:30", (7,)) in slots
    assert ("福利夜（倒计时）", "21:00", (5,)) in slots


async def test_admins_edit_settings_but_money_settings_are_the_owners(h):
    cid = (await h.community())["id"]
    await h.join(cid, ADMIN)
    await h.ok("PUT", f"/communities/{cid}/members/{ADMIN}/role", OWNER, json={"role": "admin"})

    privacy = await h.call("PATCH", f"/communities/{cid}/settings", ADMIN, json={"member_list_visible": True})
    commission = await h.call("PATCH", f"/communities/{cid}/settings", ADMIN, json={"referral_commission_bps": 9})
    plan = await h.call("POST", f"/communities/{cid}/plans", ADMIN, json={
        "name": "x", "price_fen": 1, "term_type": "fixed_duration", "duration_days": 1})

    assert privacy.status_code == 200
    assert commission.status_code == plan.status_code == 403
    (updated,) = await h.emitted("community.updated")
    assert updated.data["member_list_visible"] is True


async def test_plans_are_public_and_validated(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(cid, trial_days=3, renewal_price_fen=80_000)
    fixed_with_days = await h.call("POST", f"/communities/{cid}/plans", OWNER, json={
        "name": "x", "price_fen": 1, "term_type": "fixed_term", "duration_days": 30})
    duration_without = await h.call("POST", f"/communities/{cid}/plans", OWNER, json={
        "name": "x", "price_fen": 1, "term_type": "fixed_duration"})
    negative = await h.call("POST", f"/communities/{cid}/plans", OWNER, json={
        "name": "x", "price_fen": -1, "term_type": "fixed_duration", "duration_days": 1})
    unknown_tier = await h.call("POST", f"/communities/{cid}/plans", OWNER, json={
        "name": "x", "price_fen": 1, "term_type": "fixed_duration", "duration_days": 1, "tier": "gold"})

    assert (fixed_with_days.status_code, duration_without.status_code, negative.status_code) == (422, 422, 422)
    assert unknown_tier.status_code == 422
    listed = await h.ok("GET", f"/communities/{cid}/plans")
    assert [(p["id"], p["refund_window_hours"], p["trial_days"]) for p in listed] == [(plan["id"], 72, 3)]


async def test_business_metrics_count_what_committed(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(cid)
    for person in ("wecom:a", "wecom:b"):
        await h.join(cid, person)
    await h.join(cid, "wecom:c")
    await h.pay(cid, "wecom:a", plan["id"], 100_000, payment_id="p-a")
    await h.pay(cid, "wecom:b", plan["id"], 100_000)
    await h.deliver(h.refund(cid, "p-a", 100_000))
    await h.run_scheduler()

    text = (await h.client.get("/metrics")).text

    assert "qunzhu_membership_paid_conversions_total 2.0" in text
    assert 'qunzhu_membership_revenue_fen_total{currency="CNY"} 200000.0' in text
    assert 'qunzhu_membership_refunds_fen_total{currency="CNY"} 100000.0' in text
    assert 'qunzhu_membership_removals_total{reason="refunded"} 1.0' in text
    assert 'qunzhu_membership_members{status="pending_payment"} 1.0' in text
    assert 'qunzhu_membership_members{status="active"} 2.0' in text  # the owner and b
    assert "qunzhu_membership_applications_pending 0.0" in text


def test_the_removal_recommended_mirror_is_used_only_until_engagement_registers_it():
    without = EventRegistry([s for s in ALL_SPECS if s.type != "removal.recommended"])
    assert "removal.recommended" not in {s.type for s in without.specs()}
    registry = membership_registry()
    spec = registry.spec_for("removal.recommended", 1)
    if any(s.type == "removal.recommended" for s in ALL_SPECS):
        assert spec is not REMOVAL_RECOMMENDED  # engagement's own contract wins
    else:
        assert spec is REMOVAL_RECOMMENDED
    # The fields membership reads exist in whichever definition is in force.
    assert {"member_id", "reason", "detail"} <= set(spec.payload.model_fields)


async def test_the_platform_operator_creates_communities_for_an_owner_but_is_no_member(h):
    created = await h.ok("POST", "/communities", "platform-operator",
                         json={"name": "n", "positioning": "p", "owner_id": "telegram:42"}, status=201)
    without_owner = await h.call("POST", "/communities", "platform-operator", json={"name": "n", "positioning": "p"})
    acting = await h.call("PATCH", f"/communities/{created['id']}", "platform-operator", json={"name": "x"})

    assert created["owner_id"] == "telegram:42"
    assert (await h.member(created["id"], "telegram:42"))["role"] == "owner"
    assert (without_owner.status_code, acting.status_code) == (403, 403)
