"""What each of the hotline office's figures counts, written once: the report prints the definition beside the value.

The rates follow GB/T 33358-2016 (政务服务热线 service requirements) as the Zhanjiang 12345 rules (art. 5) ask the
office to analyse and report the work; where the standard leaves a choice, the choice is written here.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

__all__ = ["DEFINITIONS", "Definition", "REQUEST_TYPE_LABELS", "RATING_LEVEL_LABELS", "KIND_LABELS"]


@dataclass(frozen=True)
class Definition:
    label: str          # the Chinese name the office uses
    unit: str           # "calls", "%", "s", "tickets", ...
    text: str           # what is counted, in full


DEFINITIONS: Mapping[str, Definition] = MappingProxyType({
    "offered": Definition("呼入总量", "calls",
                          "Calls that reached the gateway and started in the day (local civil time), whatever became of "
                          "them; a call belongs to the day it started in."),
    "refused": Definition("限制呼入", "calls",
                          "Calls refused at entry under art. 9 (number under a 30-day restriction) that did not go on "
                          "to an agent; a refused caller who reached emergency help counts as answered instead."),
    "system_faults": Definition("系统故障损失", "calls",
                                "Calls lost to a fault of the gateway or the PBX: the gateway failed the call and no "
                                "queue event followed (outcome failed). Counted apart, outside every rate."),
    "untracked": Definition("结果未记录", "calls",
                            "Calls whose end was never reported (handed to the queue, then no queue event reached "
                            "the gateway, e.g. while its AMI link was down, or still in progress). Outside every rate."),
    "answered": Definition("人工接听", "calls", "Calls an agent answered (AgentConnect)."),
    "abandoned_ivr": Definition("菜单内放弃", "calls",
                                "Callers who hung up in the menu, before joining the agent queue."),
    "abandoned_queue": Definition("排队放弃", "calls", "Callers who hung up while waiting in the agent queue."),
    "connection_rate": Definition("人工接通率", "%",
                                  "answered ÷ (offered − refused − system faults − untracked): the share of the calls "
                                  "that wanted human service and got it."),
    "timely_rate": Definition("15秒应答及时率", "%",
                              "Answered within the timely-answer time (15 s by default, [office] timely_answer_s) of "
                              "joining the queue, at exactly 15 s included ÷ answered calls whose queue join is known."),
    "answered_wait_unknown": Definition("等待时长未知", "calls",
                                        "Answered calls without a recorded queue join (left out of the waits and the "
                                        "timely-answer rate)."),
    "wait_avg": Definition("平均等待时长", "s", "Mean of (answered − joined the queue) over answered calls."),
    "wait_p90": Definition("90%等待时长", "s",
                           "90th percentile of the same waits, nearest rank: the smallest wait that at least 90% of "
                           "answered calls did not exceed."),
    "abandon_wait_avg": Definition("放弃前平均等待", "s",
                                   "Mean of (hung up − joined the queue) over the callers who abandoned in the queue."),
    "satisfaction_rate": Definition("满意率", "%",
                                    "(非常满意 + 满意 + 基本满意) ÷ surveys rated; a survey without a valid key is "
                                    "'not rated' and left out."),
    "callbacks_in_time": Definition("回访按时完成率", "%",
                                    "Call-back tasks due on the day that were done on or before their due date ÷ "
                                    "call-back tasks due on the day."),
    "prefill_coverage": Definition("语音预填覆盖率", "%",
                                   "Tickets of the day whose draft got at least one field from the speech pre-fill ÷ "
                                   "tickets of the day."),
    "prefill_accuracy": Definition("语音预填准确率(使用中)", "%",
                                   "Over the tickets agents saved: pre-filled fields the agent kept unchanged ÷ "
                                   "pre-filled fields."),
    "handoff_answer_s": Definition("联动接通时长", "s",
                                   "Per centre: mean time from the hand-off request to the centre answering."),
    "announcement_answered": Definition("公告解答来电", "calls",
                                        "Callers who heard an incident announcement and hung up in the menu afterwards "
                                        "without joining the queue: calls the announcement answered (art. 18)."),
})

REQUEST_TYPE_LABELS: Mapping[str, str] = MappingProxyType({
    "consultation": "咨询", "help": "求助", "complaint": "投诉", "report": "举报", "suggestion": "建议",
    "unspecified": "未分类"})
RATING_LEVEL_LABELS: Mapping[int, str] = MappingProxyType({
    1: "非常满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "非常不满意"})
KIND_LABELS: Mapping[str, str] = MappingProxyType({"intake": "受理满意度", "handling": "办理满意度"})
