"""What simulated people write: a growth-experiment community (每天一个增长实验), in Chinese.

Effective texts carry a random detail so that nobody repeats themself on one day (a repeat is a 群规
strike); noise is what the default noise patterns catch; ads what the default ad patterns catch.
"""

from __future__ import annotations

import random

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红"
_TOPICS = ("落地页转化", "拉新渠道", "留存曲线", "裂变海报", "社群打卡", "定价测试", "邮件召回", "短视频投放",
           "搜索优化", "用户访谈", "新手引导", "推荐奖励")
_EFFECTIVE = (
    "今天把{t}的对照组跑完了，转化率提升了{n}%，明天继续看留存",
    "关于{t}，我觉得关键是先定义清楚北极星指标，再拆到每周的实验",
    "分享一下我们{t}的复盘：样本量{n}00，结果不显著，下周加大流量",
    "{t}这个方向我做过，核心是找到第一批种子用户，别一上来就投广告",
    "请大家帮忙看看我的{t}方案，假设是用户卡在第{n}步",
    "刚读完一本讲{t}的书，最受启发的是先做小实验再放大",
)
_REPLIES = (
    "同意，{t}我们也遇到过，后来改成分批灰度就好了（第{n}批）",
    "这个思路很好，我补充一点：{t}要先看分渠道的数据，我们第{n}周才发现",
    "学到了，{t}的样本量你们是怎么算的？我们现在用{n}00",
    "赞同楼上，{t}不要只看点击率，要看后面第{n}天的留存",
)
_ANSWERS = (
    "可以先用最小样本跑{t}，每组至少{n}00人，跑满一周再看结论",
    "{t}建议先做用户访谈，找{n}个典型用户聊完再设计实验",
    "我们的做法是{t}拆成三步，每步单独埋点，第{n}步流失最多就先改那里",
)
_QUESTIONS = (
    "？{t}的实验一般跑多久才能下结论（第{n}个问题）",
    "？请教大家，{t}应该先看哪个指标，我卡在第{n}步了",
    "？有没有人做过{t}，样本只有{n}00人够吗",
)
_NOISE = ("收到", "好的", "1", "哈哈哈", "早安", "晚安", "谢谢", "赞")
_NOISE_ENDINGS = ("", "！", "~", "~~", "。", "!!", "！！")
_ADS = ("加微信 sim{n} 日赚500，免费领取增长资料", "代理招募，兼职刷单日赚300，私聊加v{n}",
        "免费领取课程，加微信 kk{n}")
_SHARE_INTROS = (
    "推荐一篇讲{t}的文章，作者把第{n}个实验的数据都公开了，值得一读：",
    "这个{t}的案例拆得很细，尤其是定价那部分（第{n}页），分享给大家：",
)
_ASSIGNMENTS = ("设计你的第一个增长实验", "复盘一次失败的实验", "写一份用户访谈提纲")


def name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _fill(rng: random.Random, template: str) -> str:
    return template.format(t=rng.choice(_TOPICS), n=rng.randrange(2, 1000))


def effective(rng: random.Random) -> str:
    return _fill(rng, rng.choice(_EFFECTIVE))


def reply(rng: random.Random, mention_name: str | None = None) -> str:
    text = _fill(rng, rng.choice(_REPLIES))
    return f"@{mention_name} {text}" if mention_name else text


def answer(rng: random.Random) -> str:
    return _fill(rng, rng.choice(_ANSWERS))


def question(rng: random.Random) -> str:
    return _fill(rng, rng.choice(_QUESTIONS))


def noise(rng: random.Random) -> str:
    return rng.choice(_NOISE) + rng.choice(_NOISE_ENDINGS)


def ad(rng: random.Random) -> str:
    return rng.choice(_ADS).format(n=rng.randrange(100, 10_000))


def share(rng: random.Random, *, intro: bool) -> str:
    link = f"https://example.com/growth/{rng.randrange(10**6)}"
    return _fill(rng, rng.choice(_SHARE_INTROS)) + " " + link if intro else link


def checkin(day: int) -> str:
    return f"打卡 第{day}天"


def homework(rng: random.Random, code: str) -> str:
    return f"作业 {code} " + _fill(rng, rng.choice(_EFFECTIVE))


def assignment_title(week: int) -> str:
    return f"第{week + 1}周：{_ASSIGNMENTS[week % len(_ASSIGNMENTS)]}"


def is_command(text: str) -> bool:
    """Mirrors what the gateway reads as a command (打卡, 作业, a leading ？)."""
    return text.startswith(("打卡", "作业", "？", "?"))
