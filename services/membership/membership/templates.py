"""Community templates (part 12): a kind of community presets the entry policy, rules, ritual and, through
`community.template_applied`, the default scoring rules (engagement) and content rhythm (content).

Every preset is only a starting point: all of it stays editable afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qunzhu_common.events.contracts.membership import ContentSlotPreset, ScoringRulePreset

WHO_NEED_OFFER = ["我是谁", "我需要", "我能提供"]


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    entry_policies: list[str]
    rules: str
    ritual_enabled: bool
    intro_fields: list[str]
    nickname_pattern: str
    settings: dict = field(default_factory=dict)
    scoring_rules: list[ScoringRulePreset] = field(default_factory=list)
    content_rhythm: list[ContentSlotPreset] = field(default_factory=list)


def _s(action: str, points: int, cap: int | None = None) -> ScoringRulePreset:
    return ScoringRulePreset(action=action, points=points, daily_cap=cap)


def _c(title: str, kind: str, at: str, weekdays: list[int] | None = None, minutes: int | None = None):
    return ContentSlotPreset(title=title, kind=kind, local_time=at, weekdays=weekdays or [], duration_minutes=minutes)


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            key="learning", title="学习打卡群", entry_policies=["paid"],
            rules="1. 每天打卡，连续三天未打卡会被提醒。\n2. 只讨论与学习主题相关的内容。\n3. 禁止广告和无关链接。",
            ritual_enabled=True, intro_fields=WHO_NEED_OFFER, nickname_pattern="城市-职业-名字",
            scoring_rules=[_s("checkin", 10, 10), _s("homework", 20), _s("message", 1, 10), _s("reply", 2, 20)],
            content_rhythm=[
                _c("早起打卡", "checkin_prompt", "07:30"),
                _c("今日复盘", "topic", "21:00"),
                _c("周日嘉宾分享", "sharing_session", "20:30", [7], 90),
            ],
        ),
        Template(
            key="resource_sharing", title="资源分享群", entry_policies=["paid"],
            rules="1. 只分享资源，并注明来源。\n2. 每条消息一个资源，写清楚用途。\n3. 禁止广告和拉人。",
            ritual_enabled=True, intro_fields=["我是谁", "我有什么资源", "我需要什么资源"],
            nickname_pattern="城市-行业-名字",
            scoring_rules=[_s("link", 5, 25), _s("reaction", 1, 10), _s("message", 1, 10)],
            content_rhythm=[_c("每日资源精选", "post", "11:00"), _c("福利夜", "welfare_night", "21:00", [5], 60)],
        ),
        Template(
            key="skills_course", title="技能课程群", entry_policies=["paid"],
            rules="1. 按时完成作业，作业前三名有奖学金。\n2. 提问请用“?”开头。\n3. 禁止分享课程资料给群外。",
            ritual_enabled=True, intro_fields=WHO_NEED_OFFER, nickname_pattern="城市-职业-名字",
            settings={"reading_limit_days": None},
            scoring_rules=[_s("homework", 30), _s("checkin", 5, 5), _s("question", 2, 10)],
            content_rhythm=[
                _c("课程直播", "lesson", "20:00", [2, 4], 60),
                _c("周日嘉宾分享", "sharing_session", "20:30", [7], 90),
            ],
        ),
        Template(
            key="networking", title="人脉交流群", entry_policies=["application", "paid"],
            rules="1. 入群先按格式自我介绍并修改群昵称。\n2. 对接资源请私下沟通，勿刷屏。\n3. 禁止挖人和广告。",
            ritual_enabled=True, intro_fields=WHO_NEED_OFFER, nickname_pattern="城市-行业-名字",
            settings={"member_list_visible": True, "contact_visible": False},
            scoring_rules=[_s("intro", 10, 10), _s("reply", 2, 20), _s("red_packet", 5, 5)],
            content_rhythm=[
                _c("资源对接", "topic", "20:00", [3]),
                _c("周日嘉宾分享", "sharing_session", "20:30", [7], 90),
            ],
        ),
        Template(
            key="product_sales", title="产品/销售群", entry_policies=["free"],
            rules="1. 只讨论产品使用和相关话题。\n2. 不发早安、表情包刷屏，一段话说完一件事。\n3. 福利夜每周五 21:00。",
            ritual_enabled=False, intro_fields=WHO_NEED_OFFER, nickname_pattern="城市-名字",
            scoring_rules=[_s("message", 1, 10), _s("reaction", 1, 10), _s("red_packet", 5, 5)],
            content_rhythm=[
                _c("每日思维导图", "post", "11:00"),
                _c("下午话题", "topic", "15:00"),
                _c("嘉宾分享", "sharing_session", "20:30", [7], 90),
                _c("福利夜（倒计时）", "welfare_night", "21:00", [5], 60),
            ],
        ),
    )
}


def template_document() -> list[dict]:
    return [
        {
            "key": t.key, "title": t.title, "entry_policies": t.entry_policies, "rules": t.rules,
            "ritual_enabled": t.ritual_enabled, "intro_fields": t.intro_fields,
            "nickname_pattern": t.nickname_pattern, "settings": t.settings,
            "scoring_rules": [r.model_dump() for r in t.scoring_rules],
            "content_rhythm": [c.model_dump() for c in t.content_rhythm],
        }
        for t in TEMPLATES.values()
    ]
