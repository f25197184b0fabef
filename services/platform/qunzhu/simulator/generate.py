"""The community model: who is in it, what they say, when, and what they pay.

One community, `groups` chat groups of `members_per_group` people each. Everything comes from one
`random.Random(seed)`, so a seed and a start time give the same community every time.

- Chatter follows Zipf's law: the speaker of rank r gets a share ∝ 1 / r^s of the messages.
- Planted opinion leaders (the most active speakers of each group) are who the others reply to,
  mention, react to and get answers from; planted connectors sit in two groups and talk across them.
- Daily 打卡 check-ins (the more active, the more regular), weekly homework (作业 W1, W2 …) graded 1–5,
  questions (？…) and their answers, shares with and without an introduction, red packets, spammers'
  ads, lurkers who join and never speak.
- Everyone pays the entry price; a few are refunded.

Times run forward from `start` (default: now) over `days` days; the engagement jobs are then asked
"as of" the end of that period, so a lurker really has been silent for the whole of it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from qunzhu.simulator import texts

PLATFORM = "wechat"  # identity platform of the simulator's generic (Standard Webhooks) connector
DAY = timedelta(days=1)


@dataclass(frozen=True)
class SimConfig:
    groups: int = 3
    members_per_group: int = 200
    days: int = 14
    messages: int = 1500  # chat messages over the period; check-ins, homework, reactions, joins come on top
    seed: int = 7
    zipf_s: float = 1.0
    leaders_per_group: int = 2
    lurker_share: float = 0.25
    spammers: int = 3
    refund_share: float = 0.03
    price_fen: int = 19900
    start: datetime | None = None  # default: now, to the minute
    tag: str = ""  # makes chat ids and payment ids unique per run (default: from the seed and start)


@dataclass(frozen=True)
class Person:
    uid: str  # the platform's user id, as the bridge sends it
    name: str
    kind: str  # leader | connector | member | lurker | spammer
    groups: tuple[int, ...]
    weight: float  # share of the chatter (0 for lurkers and spammers)
    rank: int = 0  # Zipf rank among the speakers (1 = most active; 0 = not a speaker)

    @property
    def person_id(self) -> str:
        return f"{PLATFORM}:{self.uid}"


@dataclass(frozen=True)
class Payment:
    payer: Person
    payment_id: str
    amount_fen: int
    refund_id: str | None = None  # refunded in full when set


@dataclass(frozen=True)
class Assignment:
    code: str
    title: str
    first_day: int


@dataclass
class Community:
    config: SimConfig
    start: datetime
    tag: str
    chats: list[str]  # chat ids of the groups, as the platform names them
    people: list[Person]
    items: list[dict[str, Any]] = field(default_factory=list)  # generic webhook events, oldest first
    payments: list[Payment] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    grades: dict[tuple[str, str], int] = field(default_factory=dict)  # (person id, code) → grade 1–5

    @property
    def end(self) -> datetime:
        return self.start + self.config.days * DAY

    def of_kind(self, kind: str) -> list[Person]:
        return [p for p in self.people if p.kind == kind]

    @property
    def planted_leaders(self) -> set[str]:
        return {p.person_id for p in self.of_kind("leader")}

    @property
    def planted_connectors(self) -> set[str]:
        return {p.person_id for p in self.of_kind("connector")}

    @property
    def refunds(self) -> list[Payment]:
        return [p for p in self.payments if p.refund_id]

    @property
    def revenue_fen(self) -> int:
        """Captured minus refunded: what the owner's ledger must show when everything was applied."""
        return sum(p.amount_fen for p in self.payments) - sum(p.amount_fen for p in self.refunds)

    def counts(self) -> Counter[str]:
        """Chat items by kind (message, command, reaction, red_packet, member_joined)."""
        return Counter(_item_kind(i) for i in self.items)

    def messages_by_speaker(self) -> Counter[str]:
        return Counter(i["sender_id"] for i in self.items if i["type"] == "message")


def _item_kind(item: dict[str, Any]) -> str:
    if item["type"] == "message" and texts.is_command(item["text"]):
        return "command"
    return str(item["type"])


def _people(cfg: SimConfig, rng: random.Random) -> list[Person]:
    """Roles per group, then Zipf weights over the speakers (connectors first, then leaders)."""
    raw: list[tuple[str, str, tuple[int, ...]]] = []
    for g in range(cfg.groups):
        kinds = ["leader"] * cfg.leaders_per_group
        if cfg.groups > 1:
            kinds.append("connector")  # the bridge from this group to the next one
        kinds += ["spammer"] * (cfg.spammers // cfg.groups + (1 if g < cfg.spammers % cfg.groups else 0))
        lurkers = round(cfg.lurker_share * cfg.members_per_group)
        kinds += ["lurker"] * lurkers
        kinds += ["member"] * max(0, cfg.members_per_group - len(kinds))
        for i, kind in enumerate(kinds[: max(cfg.members_per_group, cfg.leaders_per_group)]):
            groups = (g, (g + 1) % cfg.groups) if kind == "connector" else (g,)
            raw.append((f"g{g}-{i:03d}", kind, groups))
    speakers = [r for r in raw if r[1] in ("leader", "connector", "member")]
    rng.shuffle(speakers)
    order = {"connector": 0, "leader": 1, "member": 2}
    speakers.sort(key=lambda r: order[r[1]])  # stable: members keep their shuffled order
    rank_of = {uid: r for r, (uid, _, _) in enumerate(speakers, start=1)}
    norm = sum(1 / r**cfg.zipf_s for r in rank_of.values()) or 1.0
    people = []
    for uid, kind, groups in raw:
        rank = rank_of.get(uid, 0)
        weight = (1 / rank**cfg.zipf_s) / norm if rank else 0.0
        people.append(Person(uid=uid, name=texts.name(rng), kind=kind, groups=groups, weight=weight, rank=rank))
    return people


class _Chat:
    """Builds the items in time order, remembering what each group said (for replies and answers)."""

    def __init__(self, community: Community, rng: random.Random) -> None:
        self.c, self.rng = community, rng
        self.recent: dict[int, list[tuple[str, Person]]] = {g: [] for g in range(len(community.chats))}
        self.questions: dict[int, list[tuple[str, Person, int]]] = {g: [] for g in range(len(community.chats))}
        self.leaders = {g: [p for p in community.people if p.kind == "leader" and p.groups[0] == g]
                        for g in range(len(community.chats))}
        self.bare_links: set[str] = set()
        self.seq = 0

    def _id(self) -> str:
        self.seq += 1
        return f"m{self.seq}"

    def message(self, at: datetime, g: int, who: Person, text: str, **extra: Any) -> dict[str, Any]:
        item = {"type": "message", "group_id": self.c.chats[g], "message_id": self._id(), "sender_id": who.uid,
                "sender_name": who.name, "text": text, "timestamp": at.isoformat(), **extra}
        self.c.items.append(item)
        self.recent[g].append((item["message_id"], who))
        del self.recent[g][:-60]
        return item

    def _target(self, g: int, who: Person, leader_bias: float) -> Person | None:
        """Whom a reply turns to: one of the group's leaders, else someone who spoke lately."""
        if self.leaders[g] and self.rng.random() < leader_bias:
            return self.rng.choice(self.leaders[g])
        others = [p for _, p in self.recent[g] if p.uid != who.uid]
        return self.rng.choice(others) if others else None

    def _last_of(self, g: int, person: Person) -> str | None:
        return next((m for m, p in reversed(self.recent[g]) if p.uid == person.uid), None)

    def speak(self, at: datetime, who: Person) -> None:
        rng = self.rng
        g = rng.choice(who.groups)
        roll = rng.random()
        if who.kind == "leader":
            if roll < 0.3 and self.questions[g]:
                return self.answer(at, g, who)
            if roll < 0.85:
                return self._plain(at, g, who)
            return self._share(at, g, who, intro=True)
        if who.kind == "connector":
            if roll < 0.85:
                return self._reply(at, g, who, leader_bias=0.0, mention=rng.random() < 0.5)
            if roll < 0.85:
                return self._plain(at, g, who)
            return self._share(at, g, who, intro=True)
        # an ordinary member
        if roll < 0.30:
            return self._plain(at, g, who)
        if roll < 0.62:
            return self._reply(at, g, who, leader_bias=0.35, mention=rng.random() < 0.2)
        if roll < 0.72:
            self.message(at, g, who, texts.noise(rng))
            return None
        if roll < 0.80:
            item = self.message(at, g, who, texts.question(rng))
            self.questions[g].append((item["message_id"], who, 0))
            return None
        if roll < 0.86 and self.questions[g]:
            return self.answer(at, g, who)
        intro = who.uid in self.bare_links or rng.random() < 0.85  # one bare link each at most: no strikes out
        if not intro:
            self.bare_links.add(who.uid)
        return self._share(at, g, who, intro=intro)

    def _plain(self, at: datetime, g: int, who: Person) -> None:
        self.message(at, g, who, texts.effective(self.rng))

    def _reply(self, at: datetime, g: int, who: Person, *, leader_bias: float, mention: bool) -> None:
        target = self._target(g, who, leader_bias)
        if target is None:
            return self._plain(at, g, who)
        extra: dict[str, Any] = {}
        replied = self._last_of(g, target)
        if replied is not None:
            extra["reply_to"] = {"message_id": replied, "sender_id": target.uid}
        if mention or replied is None:
            extra["mentions"] = [target.uid]
        self.message(at, g, who, texts.reply(self.rng, target.name if "mentions" in extra else None), **extra)
        return None

    def answer(self, at: datetime, g: int, who: Person) -> None:
        candidates = [q for q in self.questions[g] if q[1].uid != who.uid]
        if not candidates:
            return self._plain(at, g, who)
        message_id, asker, answers = self.rng.choice(candidates)
        self.questions[g].remove((message_id, asker, answers))
        if answers < 1:
            self.questions[g].append((message_id, asker, answers + 1))
        self.message(at, g, who, texts.answer(self.rng),
                     reply_to={"message_id": message_id, "sender_id": asker.uid})
        return None

    def _share(self, at: datetime, g: int, who: Person, *, intro: bool) -> None:
        self.message(at, g, who, texts.share(self.rng, intro=intro))

    def react(self, at: datetime, who: Person) -> None:
        g = self.rng.choice(who.groups)
        leaders_said = [(m, p) for m, p in self.recent[g] if p.kind == "leader" and p.uid != who.uid]
        pool = leaders_said if leaders_said and self.rng.random() < 0.6 else \
            [(m, p) for m, p in self.recent[g] if p.uid != who.uid]
        if not pool:
            return
        message_id, author = self.rng.choice(pool)
        self.c.items.append({"type": "reaction", "group_id": self.c.chats[g], "message_id": message_id,
                             "reactor_id": who.uid, "target_sender_id": author.uid,
                             "emoji": self.rng.choice("👍🔥👏💯"), "timestamp": at.isoformat()})


def _moments(rng: random.Random, start: datetime, days: int, n: int) -> list[tuple[int, datetime]]:
    """n instants spread over the period, mostly in waking hours (08:00–24:00 of each simulated day)."""
    out = []
    for _ in range(n):
        day = rng.randrange(days)
        out.append((day, start + day * DAY + timedelta(seconds=rng.uniform(8 * 3600, 24 * 3600 - 1))))
    return out


def generate(config: SimConfig | None = None) -> Community:
    """The whole community, deterministic for a given config (seed and start)."""
    cfg = config or SimConfig()
    if cfg.groups < 1 or cfg.members_per_group < cfg.leaders_per_group + 2 or cfg.days < 1:
        raise ValueError("need at least one group, one day and more members than leaders")
    rng = random.Random(cfg.seed)
    start = (cfg.start or datetime.now(UTC)).replace(second=0, microsecond=0)
    tag = cfg.tag or f"{cfg.seed}-{int(start.timestamp()) // 60:x}"
    community = Community(config=cfg, start=start, tag=tag,
                          chats=[f"sim-{tag}-g{g}" for g in range(cfg.groups)], people=_people(cfg, rng))
    people, chat = community.people, _Chat(community, rng)
    speakers = [p for p in people if p.weight > 0]
    weights = [p.weight for p in speakers]

    # Joining: everyone pays first, then enters their groups in the first minutes.
    for i, person in enumerate(people):
        payment = Payment(payer=person, payment_id=f"pi_{tag}_{person.uid}", amount_fen=cfg.price_fen)
        community.payments.append(payment)
        for g in person.groups:
            community.items.append({"type": "member_joined", "group_id": community.chats[g], "member_id": person.uid,
                                    "display_name": person.name,
                                    "timestamp": (start + timedelta(seconds=i % 600)).isoformat()})
    refundable = [p for p in community.payments if p.payer.kind in ("member", "lurker")]
    for payment in rng.sample(refundable, min(len(refundable), round(cfg.refund_share * len(community.payments)))):
        index = community.payments.index(payment)
        community.payments[index] = Payment(payer=payment.payer, payment_id=payment.payment_id,
                                            amount_fen=payment.amount_fen, refund_id=f"re_{payment.payment_id}")

    community.assignments = [Assignment(code=f"W{w + 1}", title=texts.assignment_title(w), first_day=7 * w)
                             for w in range((cfg.days + 6) // 7)]

    # What happens during the days, generated as (time, action) and played in time order.
    plan: list[tuple[datetime, int, str, Person]] = []
    for seq, (_, at) in enumerate(_moments(rng, start, cfg.days, cfg.messages)):
        plan.append((at, seq, "speak", rng.choices(speakers, weights)[0]))
    for _, at in _moments(rng, start, cfg.days, cfg.messages // 4):
        plan.append((at, len(plan), "react", rng.choices(speakers, weights)[0]))
    for person in speakers:
        regular = min(0.9, 30 * person.weight)  # the more someone talks, the more regularly they check in
        for day in range(cfg.days):
            if rng.random() < regular:
                plan.append((start + day * DAY + timedelta(seconds=rng.uniform(6 * 3600, 10 * 3600)), len(plan),
                             f"checkin:{day}", person))
        for a in community.assignments:
            if person.kind == "leader" or rng.random() < min(0.9, 40 * person.weight):
                day = min(cfg.days - 1, a.first_day + rng.randrange(7))
                plan.append((start + day * DAY + timedelta(seconds=rng.uniform(12 * 3600, 23 * 3600)), len(plan),
                             f"homework:{a.code}", person))
                grade = rng.choice((4, 5)) if person.kind == "leader" else rng.choices((1, 2, 3, 4, 5),
                                                                                     (1, 2, 4, 3, 2))[0]
                community.grades[(person.person_id, a.code)] = grade
    for person in community.of_kind("spammer"):
        for _, at in _moments(rng, start, cfg.days, 4):  # three ads and a bare link: past the strike limit
            plan.append((at, len(plan), "spam", person))
    for leader in community.of_kind("leader"):
        for week in range((cfg.days + 6) // 7):
            day = min(cfg.days - 1, 7 * week + 5)
            plan.append((start + day * DAY + timedelta(hours=20), len(plan), "red_packet", leader))

    plan.sort(key=lambda entry: (entry[0], entry[1]))
    spam_count: Counter[str] = Counter()
    for at, _, action, who in plan:
        g = who.groups[0]
        if action == "speak":
            chat.speak(at, who)
        elif action == "react":
            chat.react(at, who)
        elif action.startswith("checkin:"):
            chat.message(at, g, who, texts.checkin(int(action.split(":")[1]) + 1))
        elif action.startswith("homework:"):
            chat.message(at, g, who, texts.homework(rng, action.split(":")[1]))
        elif action == "spam":
            spam_count[who.uid] += 1
            chat.message(at, g, who, texts.ad(rng) if spam_count[who.uid] < 4 else texts.share(rng, intro=False))
        elif action == "red_packet":
            community.items.append({"type": "red_packet", "group_id": community.chats[g], "sender_id": who.uid,
                                    "amount_fen": 2000, "count": 20, "timestamp": at.isoformat()})
    return community
