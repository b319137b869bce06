"""Speech pre-fill: a recognised transcript becomes a ticket draft (type, category, unit, address, emergency,
call-back number, due date). Pure and synchronous; the only I/O is loading the packaged data files once.

vosk's Chinese models put spaces between words ("我 要 投诉 赤坎区 ..."): matching runs on the transcript with
those spaces removed; the summary keeps a space only between two Latin words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from ivr.address import find_address
from ivr.callback_number import find_callback_number
from ivr.deadline import DEFAULT_CALENDAR, WorkingDayCalendar, due_date
from ivr.units import UnitCatalogue, load_units
from linkage.emergency_list import EmergencyList, load_emergency_list

REQUEST_TYPES = ("consultation", "help", "complaint", "report", "suggestion")
SUMMARY_CHARS = 120

# Article 7's five request types. A caller usually names the request up front ("我要投诉..."), so an explicit verb
# decides by position (the first one said); "我想咨询一下怎么投诉" is a consultation. Without one, cue words
# decide by precedence: an offence reported (偷排) outranks a nuisance (太吵), which outranks a plea for help,
# a wish (希望 also closes many complaints, hence below them) and a question.
_EXPLICIT = (
    ("report", ("举报", "检举", "揭发")),
    ("complaint", ("投诉", "头诉", "投述")),
    ("help", ("求助", "求救")),
    ("suggestion", ("建议", "提个意见", "提意见", "提议")),
    ("consultation", ("咨询", "资讯一下")),
)
_CUES = (
    ("report", ("违法", "偷排", "非法", "违规", "私自", "偷偷", "无证", "黑作坊", "违章建筑", "违建", "赌博", "传销",
                "偷倒", "乱排")),
    ("complaint", ("不满", "太吵", "很吵", "吵得", "扰民", "乱收费", "态度差", "态度很差", "态度恶劣", "不作为",
                   "不管", "没人管", "拖欠", "欠薪", "不给退", "不退", "太差", "受不了", "推诿", "敷衍", "坑人")),
    ("help", ("帮帮", "帮忙", "救助", "困难", "救命", "怎么办", "走投无路", "没钱", "急需", "快来", "赶紧来",
              "马上来", "快点来", "快派人")),
    ("suggestion", ("希望", "能不能增加", "能否增加", "能不能增设", "能否增设", "可不可以增加", "增加一条",
                    "增设", "应该增加", "最好能", "呼吁")),
    ("consultation", ("请问", "想了解", "怎么办理", "如何办理", "问一下", "问问", "需要什么材料", "要什么材料",
                      "什么时候", "在哪里", "在哪", "多少钱", "能不能办", "可以办", "怎么申请", "如何申请",
                      "有没有", "是不是", "流程", "条件")),
)
_NEGATED = ("不是投诉", "不是要投诉", "不是举报", "不用投诉")
_WHITESPACE_RUN = re.compile(r"\s+")
_LATIN_WORDS = re.compile(r"(?<=[A-Za-z0-9])\s+(?=[A-Za-z])|(?<=[A-Za-z])\s+(?=[0-9])")


@dataclass(frozen=True)
class Triage:
    type: str | None
    category: str | None
    unit: str | None
    address: str | None
    emergency: str | None
    emergency_situation: str | None
    callback_number: str | None
    due: date | None
    summary: str

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.type,
            "category": self.category,
            "unit": self.unit,
            "address": self.address,
            "emergency": self.emergency,
            "emergency_situation": self.emergency_situation,
            "callback_number": self.callback_number,
            "due": self.due.isoformat() if self.due else None,
            "summary": self.summary,
        }


def normalise(transcript: str) -> str:
    """vosk spacing removed ('我 要 投诉' -> '我要投诉'); a space stays only between two Latin words."""
    text = _WHITESPACE_RUN.sub(" ", transcript.strip())
    kept = _LATIN_WORDS.sub("\x00", text)
    return kept.replace(" ", "").replace("\x00", " ")


def request_type(text: str) -> str | None:
    """The article 7 type a normalised transcript asks for, or None when the wording does not say."""
    for phrase in _NEGATED:
        text = text.replace(phrase, "")
    first: tuple[int, str] | None = None
    for kind, verbs in _EXPLICIT:
        for verb in verbs:
            at = text.find(verb)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, kind)
    if first is not None:
        return first[1]
    for kind, cues in _CUES:
        if any(cue in text for cue in cues):
            return kind
    return None


def summarise(text: str, limit: int = SUMMARY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@lru_cache(maxsize=1)
def default_units() -> UnitCatalogue:
    return load_units()


@lru_cache(maxsize=1)
def default_emergencies() -> EmergencyList:
    return load_emergency_list()


def triage(transcript: str, *, dtmf_type: str | None = None, received: datetime,
           units: UnitCatalogue | None = None, emergencies: EmergencyList | None = None,
           calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> Triage:
    """A ticket draft from a transcript. A DTMF type choice (one of the five) overrides the spoken type."""
    units = units if units is not None else default_units()
    emergencies = emergencies if emergencies is not None else default_emergencies()
    text = normalise(transcript)
    match = emergencies.match(text)
    kind = dtmf_type if dtmf_type in REQUEST_TYPES else request_type(text)
    if kind is None and match is not None:
        kind = "help"               # the IVR emergency menu files emergencies as help requests too
    category = units.classify(text)
    return Triage(
        type=kind,
        category=category.name if category else None,
        unit=category.unit if category else None,
        address=find_address(text),
        emergency=match.centre if match else None,
        emergency_situation=match.situation if match else None,
        callback_number=find_callback_number(text),
        due=due_date(kind, received, calendar),
        summary=summarise(text),
    )
