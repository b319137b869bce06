"""IVR: the menu as data and its runner, the prompt catalogue and builder, spoken dates and numbers; speech capture
(`ivr.speech`) and the transcript triage that pre-fills the ticket (`ivr.triage`)."""
