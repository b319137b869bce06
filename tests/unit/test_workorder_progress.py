"""What the progress query announces of a ticket: the unit's prompt only when one was built for it."""
from __future__ import annotations

from datetime import date

from gateway.workorder.progress import progress_lookup
from ivr.prompts import catalogue_units, unit_prompt_name, unit_prompts


def test_every_unit_of_the_catalogue_gets_one_prompt_with_a_stable_file_name():
    units = catalogue_units()
    prompts = unit_prompts(units + units[:3])
    assert len(prompts) == len(set(units)) >= 10
    assert all(name.startswith("unit_") and name.isascii() and len(name) == 17 for name in prompts)
    assert prompts[unit_prompt_name(units[0])] == units[0]
    assert unit_prompt_name("市公安局") == unit_prompt_name("市公安局") != unit_prompt_name("市医疗保障局")


async def test_the_lookup_adds_the_unit_prompt_for_a_spoken_unit_only():
    records = {"1": {"status": "transferred", "unit": "市公安局", "due": date(2026, 12, 22)},
               "2": {"status": "transferred", "unit": "某个新单位", "due": None}}

    async def ticket_status(ticket_no):
        return records.get(ticket_no)

    lookup = progress_lookup(ticket_status, ["市公安局"])
    assert (await lookup("1"))["unit_prompt"] == unit_prompt_name("市公安局")
    assert (await lookup("2"))["unit_prompt"] is None
    assert await lookup("3") is None
